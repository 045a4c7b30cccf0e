import Foundation
import Testing

/// Hostile signature headers on every scheme (issue 4: "no 500 for client input, no
/// crash"; SPEC sections 4 and 6): extreme and malformed timestamps, empty, huge and
/// long repeated signature lists (kept under the 16 KiB header limit), odd source ids. Every one is the same `401` — byte for
/// byte, so the answer tells nothing — and afterwards correctly signed deliveries on the seed
/// route and a provider route still arrive.
@Suite struct HardeningSignatureInputTests {
    @Test func hostileSignatureHeadersAreTheSame401OnEveryScheme() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let github = try await addSource(server, scheme: "github", secret: "gh-hardening-\(UUID().uuidString)")
        let stripe = try await addSource(server, scheme: "stripe", secret: "whsec_stripe\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))")
        let standard = try await addSource(server, scheme: "standard", secret: "whsec_" + Data((0..<24).map { UInt8($0 * 7 & 0xFF) }).base64EncodedString())
        let slack = try await addSource(server, scheme: "slack", secret: "slack-hardening-\(UUID().uuidString)")

        let body = #"{"event":"forged","type":"forged","id":"evt_forged"}"#
        let now = String(unixNow())
        let zeros = String(repeating: "0", count: 64)
        let extremes = ["9223372036854775807", "-9223372036854775808", "99999999999999999999999999", "-1", "+\(now)",
                        "\(now).5", "1e9", "0x10", "١٧٠٠٠٠٠٠٠٠", "０", "", "0", now + "\u{00A0}"]
        let longList = Array(repeating: "v1=\(zeros)", count: 200).joined(separator: ",")

        var requests: [(String, String, [String])] = []  // (label, path, header lines)
        let seed = server.credentials.sourceID
        for ts in extremes {
            requests.append(("seed X-Timestamp \(ts.debugDescription)", "/webhook",
                             ["X-Source-Id: \(seed)", "X-Timestamp: \(ts)", "X-Signature: v1=\(zeros)"]))
        }
        for signature in ["", "sha256=", "v1=", "v1=zz", "v1=\(String(repeating: "a", count: 10_000))", "sha256=\(zeros),v1=\(zeros)",
                          longList, "v1=\(zeros.uppercased())", "md5=\(zeros)", "=,=,=", ",,,,"] {
            requests.append(("seed X-Signature \(signature.prefix(40).debugDescription)", "/webhook",
                             ["X-Source-Id: \(seed)", "X-Timestamp: \(now)", "X-Signature: \(signature)"]))
        }
        for id in ["", "../../etc/passwd", String(repeating: "s", count: 10_000), seed.uppercased(), "src_\(zeros.prefix(32))",
                   "\(seed)\u{0}", "\(seed) x"] where !id.contains("\u{0}") {
            requests.append(("seed X-Source-Id \(id.prefix(40).debugDescription)", "/webhook",
                             ["X-Source-Id: \(id)", "X-Timestamp: \(now)", "X-Signature: v1=\(zeros)"]))
        }
        for signature in ["", "sha256=", "sha1=\(zeros.prefix(40))", "sha256=\(String(repeating: "f", count: 10_000))",
                          "sha256=\(zeros)", "sha256=xyz"] {
            requests.append(("github \(signature.prefix(30).debugDescription)", "/webhook/\(github.id)",
                             ["X-Hub-Signature-256: \(signature)", "X-GitHub-Event: push", "X-GitHub-Delivery: forged"]))
        }
        for signature in ["t=9223372036854775807,v1=\(zeros)", "t=-9223372036854775808,v1=\(zeros)", "t=,v1=", "v1=\(zeros)",
                          "t=\(now)", "t=\(now),\(Array(repeating: "v1=\(zeros)", count: 200).joined(separator: ","))",
                          String(repeating: "t=\(now),", count: 1000), "t=\(now),v1=\(String(repeating: "a", count: 10_000))", ",,,"] {
            requests.append(("stripe \(signature.prefix(40).debugDescription)", "/webhook/\(stripe.id)", ["Stripe-Signature: \(signature)"]))
        }
        for (ts, signature) in [(now, "v1,@@@@"), (now, "v1,"), (now, "v2,\(Data(count: 32).base64EncodedString())"),
                                (now, Array(repeating: "v1,\(Data(count: 32).base64EncodedString())", count: 250).joined(separator: " ")),
                                ("9223372036854775807", "v1,\(Data(count: 32).base64EncodedString())"),
                                ("-1", "v1,\(Data(count: 32).base64EncodedString())"),
                                (now, "v1,\(String(repeating: "A", count: 12_000))"), (now, "v1,====")] {
            requests.append(("standard \(ts) \(signature.prefix(30).debugDescription)", "/webhook/\(standard.id)",
                             ["webhook-id: msg_\(String(repeating: "x", count: 1000))", "webhook-timestamp: \(ts)", "webhook-signature: \(signature)"]))
        }
        for (ts, signature) in [("9223372036854775807", "v0=\(zeros)"), ("", "v0=\(zeros)"), (now, "v0="), (now, "v1=\(zeros)"),
                                (now, "v0=\(String(repeating: "b", count: 10_000))")] {
            requests.append(("slack \(ts.debugDescription) \(signature.prefix(30).debugDescription)", "/webhook/\(slack.id)",
                             ["X-Slack-Request-Timestamp: \(ts)", "X-Slack-Signature: \(signature)"]))
        }
        requests.append(("unknown provider source", "/webhook/src_\(zeros.prefix(32))", ["X-Hub-Signature-256: sha256=\(zeros)"]))
        requests.append(("a source id with dots", "/webhook/..", ["X-Hub-Signature-256: sha256=\(zeros)"]))

        var bodies: [String: Data] = [:]
        for (label, path, fields) in requests {
            let head = (["POST \(path) HTTP/1.1", "Host: \(server.host)", "Content-Type: application/json",
                         "Content-Length: \(body.utf8.count)", "Connection: close"] + fields).joined(separator: "\r\n")
            if let response = await server.expectRefusal(label, Data((head + "\r\n\r\n" + body).utf8), statuses: [401], error: "unauthorized") {
                bodies[label] = response.body
            }
        }
        #expect(Set(bodies.values).count == 1, "401 bodies differ: \(Set(bodies.values.map { String(decoding: $0, as: UTF8.self) }))")
        try await server.expectAlive("after forged signatures:")
        let delivered = try await server.mcp.channelEventsUntilQuiet()
        #expect(!delivered.contains { $0["content"]?.stringValue?.contains("evt_forged") == true }, "a forged webhook was delivered: \(delivered)")

        // A correctly signed provider delivery still arrives.
        let marker = server.marker("github-ok")
        let good = #"{"zen":"\#(marker)"}"#
        let signature = "sha256=" + TestSigner.hmacSHA256Hex(key: github.secret, message: Data(good.utf8))
        server.forbid(signature, String(signature.dropFirst(7)))
        let response = try await server.http.postJSON("/webhook/\(github.id)", body: Data(good.utf8), headers: [
            ("X-Hub-Signature-256", signature), ("X-GitHub-Event", "ping"), ("X-GitHub-Delivery", UUID().uuidString),
        ])
        #expect(response.status == 200, "\(response)")
        _ = try await server.mcp.message("the GitHub delivery") { $0["params"]?["content"]?.stringValue?.contains(marker) == true }
        try await server.expectSurvived()
    }

    private struct ProviderSource {
        let id: String
        let secret: String
    }

    /// `webhook-channel add` with the provider's secret on stdin; the secret is forbidden in
    /// the server's log.
    private func addSource(_ server: HardenedServer, scheme: String, secret: String) async throws -> ProviderSource {
        server.forbid(secret)
        let result = try await runCLI(["add", "hardening-\(scheme)", "--scheme", scheme, "--json"],
                                      stateDir: server.channel.stateDir, stdin: Data(secret.utf8))
        guard result.exitCode == 0,
              let line = result.stdout.split(separator: "\n").last,
              let id = (try? JSON.parse(String(line)))?["source_id"]?.stringValue
        else { throw HarnessError("add --scheme \(scheme) failed: \(result)") }
        return ProviderSource(id: id, secret: secret)
    }
}
