import Foundation
import Testing

/// `webhook-channel rotate ID` and `revoke ID` against a running server (SPEC 7): the old
/// secret stays valid for 24 h after a rotation (grace period, checked from the outside by
/// moving `previous_expires_at` into the past), a revoked source is refused at once.
@Suite struct RotationTests {
    static func rotate(_ id: String, _ dir: TempStateDir) async throws -> String {
        let run = try await runCLI(["rotate", id], stateDir: dir)
        guard run.exitCode == 0 else { throw HarnessError("rotate failed: \(run)") }
        guard let match = run.stdout.firstMatch(of: #/New secret: (whsec_\S+)/#) else {
            throw HarnessError("rotate printed no `New secret: whsec_…`: \(run)")
        }
        return String(match.output.1)
    }

    @Test(arguments: [ProviderScheme.github, .stripe, .standard, .slack, .webhook])
    func afterRotateBothTheOldAndTheNewSecretAreAcceptedWithoutARestart(_ scheme: ProviderScheme) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("rot-\(scheme)", scheme: scheme, secret: scheme.sampleSecret,
                                                    stateDir: channel.stateDir)
        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http).response)
        _ = try await channel.mcp.channelEvent()

        let newSecret = try await Self.rotate(source.sourceID, channel.stateDir)

        #expect(newSecret != source.secret)
        if scheme == .standard {
            #expect(ProviderCrypto.base64Decode(String(newSecret.dropFirst(6)))?.count ?? 0 >= 24, "\(newSecret)")
        } else {
            #expect(newSecret.wholeMatch(of: Formats.secret) != nil, "\(newSecret)")
        }
        let withOld = try await ProviderFixtures.post(source, on: channel.http, secret: source.secret)
        let withNew = try await ProviderFixtures.post(source, on: channel.http, secret: newSecret)
        expectProviderAccepted(withOld.response)
        expectProviderAccepted(withNew.response)
        _ = try await channel.mcp.channelEvent()
        _ = try await channel.mcp.channelEvent()
        let stranger = try await ProviderFixtures.post(source, on: channel.http, secret: scheme == .standard
            ? "whsec_" + ProviderCrypto.base64(Array("a third key nobody issued".utf8)) : "a-third-secret")
        expectJSONError(stranger.response, status: 401)
    }

    @Test func rotateRecordsThePreviousSecretFor24Hours() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("gh", scheme: .github, secret: "before-rotation", stateDir: channel.stateDir)
        let rotating = Date()

        let run = try await runCLI(["rotate", source.sourceID], stateDir: channel.stateDir)
        let rotated = Date()

        #expect(run.exitCode == 0, "\(run)")
        #expect(run.stdout.split(separator: "\n").filter { $0.contains("whsec_") }.count == 1, "\(run)")
        #expect(!run.stdout.contains("before-rotation"), "rotate must not print the old secret: \(run)")
        let entry = try #require(try ProviderFixtures.sourcesFile(channel.stateDir)["sources"]?[source.sourceID])
        #expect(entry["previous_secret"] == "before-rotation", "\(entry)")
        #expect(entry["hmac_secret"]?.stringValue?.hasPrefix("whsec_") == true, "\(entry)")
        let expires = try #require(entry["previous_expires_at"]?.stringValue.flatMap(ProviderFixtures.parseISO), "\(entry)")
        // 24 h after the rotation, which happened between these two readings (give or take a
        // second for rounding): a margin around the time of the check could be outrun by a
        // slow CLI run on a loaded machine.
        #expect(expires >= rotating.addingTimeInterval(86_400 - 1) && expires <= rotated.addingTimeInterval(86_400 + 1),
                "previous_expires_at \(expires) is not 24 h after the rotation (between \(rotating) and \(rotated))")
        #expect(entry["name"] == "gh")
        #expect(entry["scheme"] == "github")
    }

    @Test(arguments: [ProviderScheme.github, .stripe, .webhook])
    func onceTheGracePeriodHasPassedOnlyTheNewSecretIsAccepted(_ scheme: ProviderScheme) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("grace-\(scheme)", scheme: scheme, secret: scheme.sampleSecret,
                                                    stateDir: channel.stateDir)
        let newSecret = try await Self.rotate(source.sourceID, channel.stateDir)
        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http, secret: source.secret).response)
        _ = try await channel.mcp.channelEvent()

        // The injected clock, from the outside: the grace period ended a minute ago.
        try ProviderFixtures.editSource(channel.stateDir, id: source.sourceID) { entry in
            entry["previous_expires_at"] = .string(ProviderFixtures.isoString(Date().addingTimeInterval(-60)))
        }

        let withOld = try await ProviderFixtures.post(source, on: channel.http, secret: source.secret)
        let withNew = try await ProviderFixtures.post(source, on: channel.http, secret: newSecret)
        expectJSONError(withOld.response, status: 401)
        expectProviderAccepted(withNew.response)
        let events = [try await channel.mcp.channelEvent()] + (try await channel.mcp.channelEventsUntilQuiet())
        #expect(events.count == 1, "only the new secret's delivery is delivered: \(events)")
        #expect(events.first?["meta"]?["delivery_id"] == scheme.expectedDeliveryID(withNew.deliveryID).map(JSON.string))
    }

    @Test func aGracePeriodStillRunningKeepsTheOldSecretAfterAnEdit() async throws {
        // Control for the test above: an edit that leaves the expiry in the future changes nothing.
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("grace", scheme: .github, secret: "old", stateDir: channel.stateDir)
        _ = try await Self.rotate(source.sourceID, channel.stateDir)
        try ProviderFixtures.editSource(channel.stateDir, id: source.sourceID) { entry in
            entry["previous_expires_at"] = .string(ProviderFixtures.isoString(Date().addingTimeInterval(3_600)))
        }

        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http, secret: "old").response)
    }

    /// The first rotate promised the original secret 24 h; a second rotate must not cut that
    /// short. Each replaced secret keeps its own end; one past its end is refused.
    @Test func rotatingTwiceKeepsEachReplacedSecretUntilItsOwnExpiry() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("twice", scheme: .github, secret: "original", stateDir: channel.stateDir)

        let first = try await runCLI(["rotate", source.sourceID], stateDir: channel.stateDir)
        let second = try await runCLI(["rotate", source.sourceID], stateDir: channel.stateDir)

        let promised = try #require(first.stdout.firstMatch(of: #/The old secret is accepted until (\S+)\./#).map { String($0.output.1) },
                                    "\(first)")
        #expect(second.stdout.contains("A secret replaced earlier is still accepted until \(promised)."),
                "the second rotate should repeat the first one's promise: \(second)")
        let middle = try #require(first.stdout.firstMatch(of: #/New secret: (whsec_\S+)/#).map { String($0.output.1) }, "\(first)")
        let newest = try #require(second.stdout.firstMatch(of: #/New secret: (whsec_\S+)/#).map { String($0.output.1) }, "\(second)")
        for secret in ["original", middle, newest] {
            expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http, secret: secret).response)
            _ = try await channel.mcp.channelEvent()
        }
        let entry = try #require(try ProviderFixtures.sourcesFile(channel.stateDir)["sources"]?[source.sourceID])
        #expect(entry["previous_secret"] == .string(middle), "\(entry)")
        #expect(entry["earlier_secrets"]?[0]?["secret"] == "original", "\(entry)")
        #expect(entry["earlier_secrets"]?[0]?["expires_at"] == .string(promised), "\(entry)")

        // The original's 24 h are over (written into the file, as time passing would make it).
        try ProviderFixtures.editSource(channel.stateDir, id: source.sourceID) { entry in
            entry["earlier_secrets"] = [["secret": "original", "expires_at": .string(ProviderFixtures.isoString(Date().addingTimeInterval(-1)))]]
        }

        expectJSONError(try await ProviderFixtures.post(source, on: channel.http, secret: "original").response, status: 401)
        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http, secret: middle).response)
        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http, secret: newest).response)
    }

    @Test func rotatingOnAPairedSeedSourceKeepsBothSecretsOnPostWebhook() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "seed")

        let newSecret = try await Self.rotate(credentials.sourceID, channel.stateDir)

        let old = try await channel.http.postWebhook(#"{"event":"old"}"#, as: credentials)
        let new = try await channel.http.postWebhook(#"{"event":"new"}"#, as: SourceCredentials(sourceID: credentials.sourceID, secret: newSecret))
        expectProviderAccepted(old)
        expectProviderAccepted(new)
    }

    @Test func revokeRefusesTheNextDeliveryAndRemovesTheSource() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("gone", scheme: .github, secret: "soon-revoked", stateDir: channel.stateDir)
        let keep = try await ProviderFixtures.add("kept", scheme: .github, secret: "kept", stateDir: channel.stateDir)
        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http).response)
        _ = try await channel.mcp.channelEvent()

        let run = try await runCLI(["revoke", source.sourceID], stateDir: channel.stateDir)

        #expect(run.exitCode == 0, "\(run)")
        let refused = try await ProviderFixtures.post(source, on: channel.http)
        expectJSONError(refused.response, status: 401)
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty)
        expectProviderAccepted(try await ProviderFixtures.post(keep, on: channel.http).response)
        let file = try ProviderFixtures.sourcesFile(channel.stateDir)
        #expect(file["sources"]?[source.sourceID] == nil, "\(file)")
        #expect(file["sources"]?[keep.sourceID] != nil, "\(file)")
        let listing = try await runCLI(["sources"], stateDir: channel.stateDir)
        #expect(!listing.stdout.contains(source.sourceID), "\(listing)")
        let health = try await channel.http.get("/health").json()
        #expect(health["sources"] == 1, "\(health)")

        let again = try await runCLI(["revoke", source.sourceID], stateDir: channel.stateDir)
        #expect(again.exitCode == 1, "revoking an unknown id: \(again)")
    }

    @Test func revokeOfAPairedSeedSourceRefusesPostWebhook() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "seed")

        let run = try await runCLI(["revoke", credentials.sourceID], stateDir: channel.stateDir)

        #expect(run.exitCode == 0, "\(run)")
        expectJSONError(try await channel.http.postWebhook(#"{"event":"after"}"#, as: credentials), status: 401)
    }

    @Test func rotateAndRevokeOfAnUnknownIDExitOne() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let before = try channel.stateDir.readSourcesFileIfPresent()

        for command in ["rotate", "revoke"] {
            let run = try await runCLI([command, "src_ffffffffffffffffffffffffffffffff"], stateDir: channel.stateDir)
            #expect(run.exitCode == 1, "\(command): \(run)")
            #expect(!run.stderr.isEmpty, "\(command) should say why: \(run)")
            #expect(run.stdout.firstMatch(of: #/whsec_/#) == nil, "\(run)")
        }
        #expect(try channel.stateDir.readSourcesFileIfPresent() == before)
    }
}

extension TempStateDir {
    /// `sources.json` parsed, or nil when it does not exist yet.
    func readSourcesFileIfPresent() throws -> JSON? {
        guard FileManager.default.fileExists(atPath: sourcesFile.path) else { return nil }
        return try JSON.parse(readSourcesFile())
    }
}
