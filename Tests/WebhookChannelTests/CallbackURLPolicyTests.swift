import Foundation
import Testing
@testable import Platform
@testable import WebhookChannel

struct CallbackURLPolicyTests {
    @Test(arguments: [
        "http://127.0.0.1:9000/hook", "http://localhost/x", "http://[::1]:8080/", "https://example.com/hooks?a=1",
        "https://93.184.216.34/", "http://[64:ff9b::5db8:d822]/", "http://[2002:5db8:d822::1]/", "http://[2001:db8:1::1]/",
    ])
    func allowsPublicAndLoopbackURLs(_ url: String) {
        #expect(throws: Never.self) { try CallbackURLPolicy().check(url) }
    }

    @Test(arguments: [
        ("ftp://example.com/", "http or https"),
        ("https://user:pw@example.com/", "user name"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://metadata.google.internal/", "metadata"),
        ("http://169.254.10.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://10.0.0.5/", "private"),
        ("http://172.16.3.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fd12::1]/", "private"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        // IPv4 inside IPv6 that a NAT64 or 6to4 router would deliver to that IPv4 address.
        ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),
        ("http://[64:ff9b::a00:1]/", "private"),
        ("http://[64:ff9b:1::a00:1]/", "private"),
        ("http://[2002:a9fe:a9fe::]/", "metadata"),
        ("http://[2002:c0a8:101::1]/", "private"),
        ("http://[::a9fe:a9fe]/", "metadata"),
        ("http://[::a00:1]/", "private"),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "private"),
        ("not a url", "http or https"),
    ])
    func refusesEachDangerousClassWithItsReason(_ url: String, _ reasonFragment: String) {
        do {
            _ = try CallbackURLPolicy().check(url)
            Issue.record("\(url) was allowed")
        } catch {
            #expect(error.reason.contains(reasonFragment), "\(url): \(error.reason)")
        }
    }

    @Test func theServersOwnPortIsRefusedOnLocalAddressesOnly() {
        let policy = CallbackURLPolicy(ownPort: CallbackURLPolicy.OwnPort(8788))
        for url in ["http://127.0.0.1:8788/pair/complete", "http://localhost:8788/webhook", "http://[::1]:8788/",
                    "http://127.0.0.2:8788/", "http://app.localhost:8788/"] {
            #expect(throws: CallbackURLPolicy.Refusal(reason: "the callback URL points at this server itself"), "\(url)") {
                try policy.check(url)
            }
        }
        for url in ["http://127.0.0.1:8789/", "https://example.com:8788/", "http://localhost/"] {
            #expect(throws: Never.self, "\(url)") { try policy.check(url) }
        }
        // After DNS: a name that resolves to loopback on the own port.
        #expect(throws: CallbackURLPolicy.Refusal.self) { try policy.checkResolved(["127.0.0.1"], port: 8788) }
        #expect(throws: Never.self) { try policy.checkResolved(["127.0.0.1"], port: 9000) }
        #expect(throws: Never.self) { try policy.checkResolved(["93.184.216.34"], port: 8788) }
        // Not serving (the CLI's own sends to the server): no own port.
        #expect(throws: Never.self) { try CallbackURLPolicy().check("http://127.0.0.1:8788/webhook") }
    }

    @Test func privateNetworksAreAllowedWhenTheOperatorOptsIn() {
        #expect(throws: Never.self) { try CallbackURLPolicy(allowPrivate: true).check("http://10.1.2.3:8080/") }
        #expect(throws: CallbackURLPolicy.Refusal.self) { try CallbackURLPolicy(allowPrivate: true).check("http://169.254.169.254/") }
    }

    @Test func resolvedAddressesAreCheckedAgain() {
        #expect(throws: CallbackURLPolicy.Refusal.self) { try CallbackURLPolicy().checkResolved(["93.184.216.34", "10.0.0.1"]) }
        #expect(throws: Never.self) { try CallbackURLPolicy().checkResolved(["127.0.0.1"]) }
    }
}

/// `add --callback URL --allow-private`: one source's replies may go to a private network
/// address, as `WEBHOOK_ALLOW_PRIVATE_CALLBACKS=1` allows for all; the flag is kept in
/// `sources.json` and read by the reply sender (it was accepted by `add` and then forgotten,
/// so every reply was refused).
struct PrivateCallbackSourceTests {
    @Test func addWithAllowPrivateKeepsTheFlagInSourcesJSON() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        let added = try await runCLI(["add", "lan", "--scheme", "webhook", "--callback", "http://10.255.255.1:9/x", "--allow-private"],
                                     stateDir: dir)
        #expect(added.exitCode == 0, "\(added)")
        let plain = try await runCLI(["add", "plain", "--scheme", "webhook", "--callback", "http://10.255.255.1:9/x"], stateDir: dir)
        #expect(plain.exitCode == 1, "without the flag a private callback is refused: \(plain)")
        let file = try SourcesFile.decode(Array(try Data(contentsOf: dir.url.appendingPathComponent("sources.json"))))
        #expect(file.sources.map(\.allowsPrivateCallback) == [true])
        let listed = try await runCLI(["sources"], stateDir: dir)
        #expect(listed.stdout.contains("private-callback"), "\(listed)")
    }

    @Test func aReplyToASourceAllowedAPrivateCallbackIsAttemptedAndToAnotherIsRefused() async {
        let sender = ReplySender(policy: CallbackURLPolicy(allowPrivate: false), clock: SystemClock(), log: Logger(enabled: false),
                                 timeout: 0.3, delays: [])
        var source = SourceRecord(id: "src_private", name: "lan", hmacSecret: "whsec_x", callbackURL: "http://10.255.255.1:9/x",
                                  pairedAt: "2026-01-01T00:00:00Z")
        let refused = await sender.send(source: source, payload: ["n": 1], eventID: nil)
        #expect(refused.isError && refused.text.contains("private network"), "\(refused.text)")
        source.allowsPrivateCallback = true
        let attempted = await sender.send(source: source, payload: ["n": 2], eventID: nil)
        #expect(!attempted.text.contains("private network"), "the flag was not honoured: \(attempted.text)")
    }
}
