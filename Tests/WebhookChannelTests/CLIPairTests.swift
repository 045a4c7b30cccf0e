import Foundation
import Testing

/// `webhook-channel pair [CODE]`, the operator's side of pairing, against a running server
/// sharing its state directory (SPEC 7).
@Suite struct CLIPairTests {
    @Test func pairWithoutCodeListsPendingCodesWithTheirAge() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let first = try await channel.http.requestPairing(name: "ci-first")
        let second = try await channel.http.requestPairing(name: "ci-second")

        let run = try await runCLI(["pair"], stateDir: channel.stateDir)

        #expect(run.exitCode == 0, "\(run)")
        for (ticket, name) in [(first, "ci-first"), (second, "ci-second")] {
            let line = try #require(run.stdout.split(separator: "\n").first { $0.contains(ticket.code) },
                                    "\(ticket.code) not listed:\n\(run)")
            #expect(line.contains(name), "line for \(ticket.code) lacks the name: \(line)")
            let afterCode = line[line.range(of: ticket.code)!.upperBound...]
            #expect(afterCode.contains { $0.isNumber }, "line for \(ticket.code) shows no age: \(line)")
        }
        #expect(run.stdout.firstMatch(of: Formats.secretInText) == nil, "listing must not print a secret")
    }

    @Test func pairWithLowercaseCodeApprovesAndTheRunningServerAcceptsTheSecret() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let ticket = try await channel.http.requestPairing(name: "from-cli")

        let run = try await runCLI(["pair", ticket.code.lowercased()], stateDir: channel.stateDir)

        #expect(run.exitCode == 0, "\(run)")
        let sourceID = try #require(run.stdout.firstMatch(of: Formats.sourceIDInText).map { String($0.output) }, "\(run)")
        let secret = try #require(run.stdout.firstMatch(of: Formats.secretInText).map { String($0.output) }, "\(run)")
        let credentials = SourceCredentials(sourceID: sourceID, secret: secret)

        let webhook = try await channel.http.postWebhook(#"{"event":"cli-paired"}"#, as: credentials)
        #expect(webhook.status == 200, "the server did not see the CLI's pairing: \(webhook)")
        let meta = try await channel.mcp.channelEvent()["meta"]
        #expect(meta?["source_id"] == .string(sourceID))
        #expect(meta?["source_name"] == "from-cli")

        // The sender polling with its token gets the credentials once.
        let bearer = [("Authorization", "Bearer \(ticket.pollToken)")]
        let handed = try await channel.http.get("/pair/status?code=\(ticket.code)", headers: bearer).json()
        #expect(handed["status"] == "paired", "\(handed)")
        #expect(handed["source_id"] == .string(sourceID), "\(handed)")
        #expect(handed["hmac_secret"] == .string(secret), "\(handed)")
        let again = try await channel.http.get("/pair/status?code=\(ticket.code)", headers: bearer).json()
        #expect(again["status"] == "paired", "\(again)")
        #expect(again["hmac_secret"] == nil, "\(again)")
    }

    @Test func pairWithUnknownCodeExitsOneAndPairsNothing() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        _ = try await channel.http.requestPairing(name: "ci")

        let run = try await runCLI(["pair", "BADCOD"], stateDir: channel.stateDir)

        #expect(run.exitCode == 1, "\(run)")
        #expect(run.stdout.firstMatch(of: Formats.secretInText) == nil, "\(run)")
        let health = try await channel.http.get("/health").json()
        #expect(health["sources"] == 0, "\(health)")
        #expect(health["pending"] == 1, "\(health)")
    }

    @Test func pairWithUnknownCodeAndJSONPrintsAJSONErrorWithThePendingCodes() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let ticket = try await channel.http.requestPairing(name: "waiting")

        let run = try await runCLI(["pair", "BADCODE", "--json"], stateDir: channel.stateDir)

        #expect(run.exitCode == 1, "\(run)")
        let answer = try JSON.parse(run.stdout)
        #expect(answer["error"] == "unknown_code", "\(run)")
        #expect(answer["message"]?.stringValue?.contains("BADCODE") == true, "\(run)")
        #expect(answer["pending"]?.arrayValue?.compactMap { $0["code"]?.stringValue } == [ticket.code], "\(run)")
        #expect(!run.stderr.isEmpty, "the person still reads why on stderr: \(run)")
    }

    /// As the seed's skill does (seeds/004 step 3): an expired code is reported and removed.
    @Test(arguments: [false, true])
    func pairWithAnExpiredCodeRemovesItFromPendingPairings(json: Bool) async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let legacy = SourceCredentials(sourceID: "src_00112233445566778899aabbccddeeff", secret: "whsec_" + String(repeating: "7e", count: 32))
        try dir.writeSourcesFile(seedFile(source: legacy, name: "legacy", pendingCode: "K7M2QX",
                                          createdAt: nodeISOString(Date().addingTimeInterval(-301))))

        let run = try await runCLI(["pair", "k7m2qx"] + (json ? ["--json"] : []), stateDir: dir)

        #expect(run.exitCode == 1, "\(run)")
        #expect(run.stderr.lowercased().contains("expired"), "\(run)")
        if json {
            #expect(try JSON.parse(run.stdout)["error"] == "expired_code", "\(run)")
        } else {
            #expect(run.stdout.firstMatch(of: Formats.secretInText) == nil, "\(run)")
        }
        let file = try JSON.parse(dir.readSourcesFile())
        #expect(file["pending_pairings"]?.objectValue?.isEmpty == true, "the expired code stayed: \(file)")
        #expect(file["sources"]?.objectValue?.keys.sorted() == [legacy.sourceID], "nothing was paired: \(file)")
        #expect(file["sources"]?[legacy.sourceID]?["hmac_secret"] == .string(legacy.secret), "\(file)")
    }

    @Test func pairWithUnknownOptionIsAUsageErrorExitingTwo() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }

        let run = try await runCLI(["pair", "--no-such-option"], stateDir: dir)

        #expect(run.exitCode == 2, "\(run)")
        #expect(!run.stderr.isEmpty, "a usage error should say what is wrong on stderr")
    }

    @Test func pairHelpExplainsTheCommandAndExitsZero() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }

        let run = try await runCLI(["pair", "--help"], stateDir: dir)

        #expect(run.exitCode == 0, "\(run)")
        #expect((run.stdout + run.stderr).lowercased().contains("pair"), "\(run)")
    }
}
