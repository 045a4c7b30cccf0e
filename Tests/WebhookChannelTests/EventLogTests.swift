import Foundation
import Testing

/// The event log (SPEC 7, README "Tools" and "CLI reference"): `webhook_events`,
/// `webhook_event`, `<state>/events.log`, `webhook-channel events` and `replay`.
@Suite struct EventLogTests {
    /// Three accepted events: github A, stripe B, github A again (in that order).
    struct Logged {
        let a: AddedSource
        let b: AddedSource
        /// (event id, delivery id) in arrival order: A1, B1, A2.
        let events: [(eventID: String, deliveryID: String, source: AddedSource, body: Data)]
    }

    static func logThree(on channel: TestChannel) async throws -> Logged {
        let a = try await ProviderFixtures.add("repo-a", scheme: .github, secret: "secret-a", stateDir: channel.stateDir)
        let b = try await ProviderFixtures.add("stripe-b", scheme: .stripe, secret: "whsec_stripe_b", stateDir: channel.stateDir)
        var events: [(String, String, AddedSource, Data)] = []
        for source in [a, b, a] {
            let posted = try await ProviderFixtures.post(source, on: channel.http)
            guard let eventID = expectProviderAccepted(posted.response) else {
                throw HarnessError("not accepted: \(posted.response)")
            }
            _ = try await channel.mcp.channelEvent()
            events.append((eventID, posted.deliveryID, source, posted.body))
        }
        return Logged(a: a, b: b, events: events)
    }

    static func eventsTool(_ channel: TestChannel, _ arguments: JSON) async throws -> [JSON] {
        let response = try await channel.mcp.callTool("webhook_events", arguments: arguments)
        let result = try #require(response["result"], "\(response)")
        #expect(result["isError"] != true, "\(result)")
        return try ProviderFixtures.list(from: ProviderFixtures.text(ofToolResult: result), key: "events")
    }

    // MARK: webhook_events

    @Test func webhookEventsListsEveryEventNewestFirstWithItsMetadata() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let logged = try await Self.logThree(on: channel)

        let listed = try await Self.eventsTool(channel, [:])

        let expected = logged.events.reversed()
        #expect(listed.map { $0["event_id"] } == expected.map { .string($0.eventID) }, "\(listed)")
        for (entry, event) in zip(listed, expected) {
            #expect(entry["source_id"] == .string(event.source.sourceID), "\(entry)")
            #expect(entry["delivery_id"] == .string(event.deliveryID), "\(entry)")
            #expect(entry["event_type"] == .string(event.source.scheme.expectedEventType), "\(entry)")
            #expect(entry["body"] == nil, "webhook_events is metadata only: \(entry)")
        }
    }

    @Test func webhookEventsFiltersBySourceAndLimits() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let logged = try await Self.logThree(on: channel)
        let (a1, b1, a2) = (logged.events[0], logged.events[1], logged.events[2])

        let onlyA = try await Self.eventsTool(channel, ["source_id": .string(logged.a.sourceID)])
        let newestA = try await Self.eventsTool(channel, ["source_id": .string(logged.a.sourceID), "limit": 1])
        let onlyB = try await Self.eventsTool(channel, ["source_id": .string(logged.b.sourceID), "limit": 5])
        let newestTwo = try await Self.eventsTool(channel, ["limit": 2])

        #expect(onlyA.map { $0["event_id"] } == [.string(a2.eventID), .string(a1.eventID)], "\(onlyA)")
        #expect(newestA.map { $0["event_id"] } == [.string(a2.eventID)], "\(newestA)")
        #expect(onlyB.map { $0["event_id"] } == [.string(b1.eventID)], "\(onlyB)")
        #expect(onlyB.first?["delivery_id"] == .string(b1.deliveryID), "Stripe's body id: \(onlyB)")
        #expect(newestTwo.map { $0["event_id"] } == [.string(a2.eventID), .string(b1.eventID)], "\(newestTwo)")
    }

    @Test func webhookEventsForASourceThatNeitherExistsNorLoggedIsAnErrorButAPairedQuietOneIsNot() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let quiet = try await channel.http.pairSource(name: "quiet")

        let unknown = try await channel.mcp.callTool("webhook_events", arguments: ["source_id": "src_nope"])
        #expect(unknown["result"]?["isError"] == true, "\(unknown)")
        #expect(unknown["result"]?["content"]?[0]?["text"]?.stringValue?.contains("src_nope") == true, "\(unknown)")

        let paired = try await channel.mcp.callTool("webhook_events", arguments: ["source_id": .string(quiet.sourceID)])
        #expect(paired["result"]?["isError"] != true, "\(paired)")
        #expect(paired["result"]?["content"]?[0]?["text"] == "No events logged.", "\(paired)")
    }

    @Test func webhookEventsRefusesABadLimit() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        for bad: JSON in [0, -3, "ten"] {
            let response = try await channel.mcp.callTool("webhook_events", arguments: ["limit": bad])
            let refused = response["error"]?["code"] == -32602 || response["result"]?["isError"] == true
            #expect(refused, "limit \(bad): \(response)")
        }
    }

    // MARK: webhook_event

    @Test func webhookEventReturnsTheWholeBodyWhenTheNotificationWasTruncated() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("big", scheme: .github, secret: "big-secret", stateDir: channel.stateDir)
        // SPEC 14: a GitHub source starts in auto (a digest above 2 KB); the cut is full mode's.
        #expect(try await runCLI(["content", source.sourceID, "full"], stateDir: channel.stateDir).exitCode == 0)
        let filler = String(repeating: "0123456789abcdef", count: 1_500)  // 24 000 bytes
        let text = #"{"action":"big","filler":""# + filler + #"","end":"TAIL-MARKER"}"#
        let body = Data(text.utf8)

        let posted = try await ProviderFixtures.post(source, on: channel.http, body: body)

        let eventID = try #require(expectProviderAccepted(posted.response))
        let event = try await channel.mcp.channelEvent()
        let content = try #require(event["content"]?.stringValue)
        #expect(content.utf8.count == 16_384, "cut at 16 KiB with nothing appended: \(content.utf8.count) bytes")
        #expect(text.hasPrefix(content), "the notification's content is not the start of the body")
        #expect(event["meta"]?["truncated"] == "true", "\(event)")

        let response = try await channel.mcp.callTool("webhook_event", arguments: ["event_id": .string(eventID)])
        let result = try #require(response["result"], "\(response)")
        #expect(result["isError"] != true, "\(result)")
        let full = try JSON.parse(ProviderFixtures.text(ofToolResult: result))
        #expect(full["event_id"] == .string(eventID), "\(full)")
        #expect(full["source_id"] == .string(source.sourceID))
        #expect(full["delivery_id"] == .string(posted.deliveryID))
        #expect(full["body"] == .string(text), "webhook_event must return the whole body (\(body.count) bytes)")
        let shown = ProviderFixtures.text(ofToolResult: result)
        #expect(!shown.contains(ProviderSigner.github(secret: "big-secret", body: body).dropFirst(7)), "a signature is shown")
    }

    @Test func aTruncatedNotificationIsCutAtAUTF8Boundary() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("utf8", scheme: .github, secret: "u", stateDir: channel.stateDir)
        #expect(try await runCLI(["content", source.sourceID, "full"], stateDir: channel.stateDir).exitCode == 0)
        // 16 383 ASCII bytes, then two-byte characters: byte 16 384 is the middle of one.
        let text = String(repeating: "a", count: 16_383) + String(repeating: "é", count: 100)
        let body = Data(text.utf8)

        let posted = try await ProviderFixtures.post(source, on: channel.http, body: body, contentType: "text/plain; charset=utf-8")

        let eventID = try #require(expectProviderAccepted(posted.response))
        let event = try await channel.mcp.channelEvent()
        let content = try #require(event["content"]?.stringValue)
        #expect(content == String(repeating: "a", count: 16_383), "expected the cut before the split character")
        #expect(event["meta"]?["truncated"] == "true")
        let full = try JSON.parse(ProviderFixtures.text(ofToolResult: try #require(
            try await channel.mcp.callTool("webhook_event", arguments: ["event_id": .string(eventID)])["result"])))
        #expect(full["body"] == .string(text))
    }

    @Test func aBinaryBodyIsDeliveredAsANoteAndKeptWhole() async throws {
        // SPEC 4: a body that is not UTF-8 is delivered as a one-line note with its size and
        // content type; webhook_event still has every byte.
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("bin", scheme: .github, secret: "b", stateDir: channel.stateDir)
        let bytes: [UInt8] = [0xFF, 0xFE, 0x00, 0x80, 0xC3, 0x28] + Array(repeating: 0xA0, count: 1_000)
        let body = Data(bytes)

        let posted = try await ProviderFixtures.post(source, on: channel.http, body: body, contentType: "application/octet-stream")

        let eventID = try #require(expectProviderAccepted(posted.response))
        let event = try await channel.mcp.channelEvent()
        let content = try #require(event["content"]?.stringValue, "\(event)")
        #expect(!content.contains("\n"), "a one-line note: \(content)")
        #expect(content.contains("1006"), "the note gives the size (1006 bytes): \(content)")
        #expect(content.contains("application/octet-stream"), "the note gives the content type: \(content)")
        #expect(!content.contains("\u{FFFD}"), "binary bytes were decoded into the content: \(content)")
        #expect(event["meta"]?["content_type"] == "application/octet-stream")
        let shown = ProviderFixtures.text(ofToolResult: try #require(
            try await channel.mcp.callTool("webhook_event", arguments: ["event_id": .string(eventID)])["result"]))
        #expect(shown.contains(ProviderCrypto.base64(bytes)) || shown.contains(ProviderCrypto.base64(bytes).replacingOccurrences(of: "/", with: "\\/")),
                "webhook_event should return every byte (base64): \(shown.prefix(400))")
    }

    @Test func webhookEventForAnUnknownIDIsAnError() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let response = try await channel.mcp.callTool("webhook_event", arguments: ["event_id": "evt_doesnotexist"])
        let missing = try await channel.mcp.callTool("webhook_event", arguments: [:])

        #expect(response["result"]?["isError"] == true, "\(response)")
        let refused = missing["error"]?["code"] == -32602 || missing["result"]?["isError"] == true
        #expect(refused, "webhook_event without event_id: \(missing)")
    }

    // MARK: events.log

    @Test func eventsLogIsMode0600AndNeverHoldsASecretOrASignature() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        var needles: [(String, String)] = []
        for scheme in ProviderScheme.allCases {
            let source = try await ProviderFixtures.add("log-\(scheme)", scheme: scheme, secret: scheme.sampleSecret,
                                                        stateDir: channel.stateDir)
            let deliveryID = scheme.makeDeliveryID()
            let body = scheme.sampleBody(deliveryID: deliveryID, marker: "log-\(scheme)")
            let headers = scheme.headers(secret: source.secret, sourceID: source.sourceID, body: body, deliveryID: deliveryID)
            expectProviderAccepted(try await channel.http.request("POST", source.path, headers: headers, body: body))
            _ = try await channel.mcp.channelEvent()
            needles.append(("\(scheme) secret", scheme.sampleSecret))
            for (name, value) in headers where name.lowercased().contains("signature") {
                needles.append(("\(scheme) header name \(name)", name.lowercased()))
                // The digest part of the value (after `sha256=`, `t=…,v1=`, `v1,`, `v0=`).
                let digest = String(value.split(whereSeparator: { "=,".contains($0) }).last ?? "")
                needles.append(("\(scheme) signature", digest))
                needles.append(("\(scheme) signature, JSON-escaped", digest.replacingOccurrences(of: "/", with: "\\/")))
            }
        }

        let logPath = channel.stateDir.url.appendingPathComponent("events.log").path
        #expect(channel.stateDir.mode(of: logPath) == 0o600, "events.log mode \(String(channel.stateDir.mode(of: logPath) ?? -1, radix: 8))")
        #expect(channel.stateDir.mode(of: channel.stateDir.path) == 0o700)
        let log = try String(contentsOfFile: logPath, encoding: .utf8)
        #expect(log.contains("log-github"), "the body is logged (it can be replayed)")
        let lowered = log.lowercased()
        for (what, needle) in needles where !needle.isEmpty {
            #expect(!lowered.contains(needle.lowercased()), "events.log contains the \(what)")
        }
        for name in channel.stateDir.entries() where name.hasPrefix("events.log") {
            let path = channel.stateDir.url.appendingPathComponent(name).path
            #expect(channel.stateDir.mode(of: path) == 0o600, "\(name)")
        }
    }

    @Test func loggedEventsSurviveARestart() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let eventID: String
        let source: AddedSource
        do {
            let channel = try await TestChannel.start(stateDir: dir)
            defer { channel.stop() }
            source = try await ProviderFixtures.add("keep", scheme: .standard, secret: ProviderScheme.standard.sampleSecret, stateDir: dir)
            eventID = try #require(expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http).response))
            _ = try await channel.mcp.channelEvent()
            channel.server.closeStdin()
            _ = try await channel.server.child.waitForExit()
        }

        let restarted = try await TestChannel.start(stateDir: dir)
        defer { restarted.stop() }
        let listed = try await Self.eventsTool(restarted, [:])

        #expect(listed.map { $0["event_id"] } == [.string(eventID)], "\(listed)")
        #expect(listed.first?["source_id"] == .string(source.sourceID))
    }

    // MARK: CLI events

    @Test func cliEventsListsNewestFirstAndFiltersAsJSON() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let logged = try await Self.logThree(on: channel)
        let (a1, b1, a2) = (logged.events[0], logged.events[1], logged.events[2])

        let all = try await runCLI(["events"], stateDir: channel.stateDir)
        #expect(all.exitCode == 0, "\(all)")
        let positions = [a2, b1, a1].map { event in
            all.stdout.split(separator: "\n").firstIndex { $0.contains(event.eventID) }
        }
        #expect(positions.allSatisfy { $0 != nil }, "every event is listed: \(all)")
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "newest first: \(all)")
        #expect(!all.stdout.contains("secret-a"), "\(all)")

        let filtered = try await runCLI(["events", "--source", logged.a.sourceID, "--limit", "1", "--json"], stateDir: channel.stateDir)
        #expect(filtered.exitCode == 0, "\(filtered)")
        let list = try ProviderFixtures.list(from: filtered.stdout, key: "events")
        #expect(list.count == 1, "\(filtered)")
        #expect(list.first?["event_id"] == .string(a2.eventID), "\(filtered)")
        #expect(list.first?["source_id"] == .string(logged.a.sourceID))
        #expect(list.first?["delivery_id"] == .string(a2.deliveryID))
        #expect(list.first?["event_type"] == "push")

        let onlyB = try await runCLI(["events", "--source", logged.b.sourceID, "--json"], stateDir: channel.stateDir)
        #expect(try ProviderFixtures.list(from: onlyB.stdout, key: "events").map { $0["event_id"] } == [.string(b1.eventID)], "\(onlyB)")
    }

    @Test func cliEventsForAnUnknownSourceExitsOneAndForAPairedSourceWithoutEventsZero() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        let unknown = try await runCLI(["events", "--source", "src_nope"], stateDir: dir)
        #expect(unknown.exitCode == 1, "\(unknown)")
        #expect(unknown.stderr.contains("No source has id src_nope"), "\(unknown)")

        let added = try await runCLI(["add", "quiet", "--scheme", "github"], stateDir: dir)
        #expect(added.exitCode == 0, "\(added)")
        let idLine = try #require(added.stdout.split(separator: "\n").first { $0.hasPrefix("Source ID: ") }, "\(added)")
        let id = String(idLine.dropFirst("Source ID: ".count))
        let quiet = try await runCLI(["events", "--source", id], stateDir: dir)
        #expect(quiet.exitCode == 0, "\(quiet)")
        #expect(quiet.stdout.contains("No events logged."), "\(quiet)")
    }

    @Test func cliEventsUsageErrorsExitTwo() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        for arguments in [["events", "--bogus"], ["events", "--limit"], ["events", "--limit", "zero"], ["events", "extra"]] {
            let run = try await runCLI(arguments, stateDir: dir)
            #expect(run.exitCode == 2, "\(arguments): \(run)")
        }
        let help = try await runCLI(["events", "--help"], stateDir: dir)
        #expect(help.exitCode == 0, "\(help)")
        #expect(help.stdout.contains("events"), "\(help)")
    }

    // MARK: CLI replay

    @Test func cliReplayDeliversTheEventAgainMarkedReplay() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let logged = try await Self.logThree(on: channel)
        let original = logged.events[0]

        let run = try await runCLI(["replay", original.eventID], stateDir: channel.stateDir)

        #expect(run.exitCode == 0, "\(run)")
        let event = try await channel.mcp.channelEvent()
        let meta = try #require(event["meta"]?.objectValue, "\(event)")
        #expect(meta["replay"] == "true", "\(meta)")
        #expect(meta["event_id"] == .string(original.eventID), "\(meta)")
        #expect(meta["source_id"] == .string(logged.a.sourceID), "\(meta)")
        #expect(meta["source_name"] == "repo-a", "\(meta)")
        #expect(meta["delivery_id"] == .string(original.deliveryID), "\(meta)")
        #expect(meta["event_type"] == "push", "\(meta)")
        #expect(event["content"] == .string(String(decoding: original.body, as: UTF8.self)))
        for (key, value) in meta {
            #expect(value.stringValue != nil, "meta[\(key)] is not a string: \(value)")
        }
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty, "one replay, one notification")
    }

    @Test func cliReplayOfAnUnknownEventExitsOneAndDeliversNothing() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        _ = try await Self.logThree(on: channel)

        let run = try await runCLI(["replay", "evt_0000000000000000"], stateDir: channel.stateDir)

        #expect(run.exitCode == 1, "\(run)")
        #expect(!run.stderr.isEmpty, "say why: \(run)")
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty)
    }

    @Test func cliReplayWithoutARunningServerExitsOne() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let eventID: String
        do {
            let channel = try await TestChannel.start(stateDir: dir)
            defer { channel.stop() }
            let logged = try await Self.logThree(on: channel)
            eventID = logged.events[0].eventID
            channel.server.closeStdin()
            _ = try await channel.server.child.waitForExit()
        }

        let run = try await runCLI(["replay", eventID], stateDir: dir)

        #expect(run.exitCode == 1, "\(run)")
    }

    @Test func cliReplayUsage() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        #expect(try await runCLI(["replay"], stateDir: dir).exitCode == 2)
        #expect(try await runCLI(["replay", "--nope", "evt_x"], stateDir: dir).exitCode == 2)
        #expect(try await runCLI(["replay", "--help"], stateDir: dir).exitCode == 0)
    }
}
