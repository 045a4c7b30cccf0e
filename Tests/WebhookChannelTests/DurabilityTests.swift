import Foundation
import Glibc
import Testing

/// What a 200 means (SPEC 9), against the real binary: an acknowledged event is in the event
/// log before its answer, so `kill -9` at any moment loses none; a torn last line is repaired
/// at start-up; the duplicate memory outlives the event log's rotation; `WEBHOOK_FSYNC=1`.
///
/// Serialized: the load tests keep both cores busy on purpose, and the suite's other tests
/// should not be timed beside two of them at once.
@Suite(.serialized) struct DurabilityTests {
    // MARK: kill -9

    @Test func everyEventAcknowledgedBeforeKillNineUnderLoadIsListedAfterRestart() async throws {
        // Three trials, killed after a different number of acknowledgements.
        for (trial, killAt) in [70, 150, 230].enumerated() {
            let dir = try TempStateDir()
            defer { dir.remove() }
            let channel = try await TestChannel.start(stateDir: dir)
            defer { channel.stop() }
            let credentials = try await channel.http.pairSource(name: "load-\(trial)")
            let acks = Acknowledgements()
            let server = channel.server
            let http = channel.http
            let total = 300
            let deadline = Date().addingTimeInterval(60)

            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        try await offloaded {
                            acks.sendLoop(port: server.port, limit: total, deadline: deadline, request: { index in
                                Durability.webhookRequest(http, credentials, body: Durability.body(tag: "t\(trial)", index: index))
                            }, afterAcknowledgement: { count in
                                if count == killAt { server.child.send(signal: SIGKILL) }
                            })
                        }
                    }
                }
                try await group.waitForAll()
            }

            let ended = try await server.child.waitForExit()
            #expect(ended == .signaled(SIGKILL), "trial \(trial): \(ended)")
            let acknowledged = acks.acknowledged
            #expect(acknowledged.count >= killAt, "trial \(trial): \(acknowledged.count) acknowledged")
            #expect(acknowledged.count < total, "trial \(trial): the kill came after every request was answered")
            #expect(Set(acknowledged).count == acknowledged.count, "trial \(trial): an event id was acknowledged twice")
            #expect(acks.otherAnswers.isEmpty, "trial \(trial): answers other than 200 before the kill: \(acks.otherAnswers)")

            // The restarted server's own listing (webhook_events), on the same state dir.
            let restarted = try await Durability.restart(afterKilling: server)
            defer { restarted.stop() }
            let mcp = MCPTestClient(restarted)
            try await mcp.handshake()
            let result = try await mcp.callTool("webhook_events", arguments: ["limit": 500])
            let listed = try ProviderFixtures.list(from: ProviderFixtures.text(ofToolResult: result["result"] ?? .null),
                                                   key: "events").compactMap { $0["event_id"]?.stringValue }
            let missing = acknowledged.filter { !listed.contains($0) }
            #expect(missing.isEmpty, "trial \(trial): \(missing.count) of \(acknowledged.count) acknowledged events are not listed after kill -9 + restart: \(missing.prefix(5))")
            #expect(Set(listed).count == listed.count, "trial \(trial): an event is listed twice")
            #expect(listed.count <= total)

            // And the restarted server takes the next event and lists it.
            let next = try await RawHTTPClient(port: restarted.port).postWebhook(#"{"event":"after-restart"}"#, as: credentials)
            let nextID = try #require(expectProviderAccepted(next))
            #expect(try await Durability.loggedEventIDs(dir).last == nextID)
        }
    }

    @Test func eventsAcknowledgedWhileStdoutIsStalledAreListedAfterKillNine() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let server = try await ServerProcess.start(stateDir: dir, holdStdout: true)
        defer { server.stop() }
        let http = RawHTTPClient(port: server.port)
        let credentials = try await http.pairSource(name: "stalled")
        try await Durability.initializeWithoutReading(server)
        let acks = Acknowledgements()
        let deadline = Date().addingTimeInterval(90)

        // Small bodies: the 4096-event bound is reached first.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await offloaded {
                        acks.sendLoop(port: server.port, limit: 6_000, deadline: deadline) { index in
                            Durability.webhookRequest(http, credentials, body: Durability.body(tag: "stall", index: index))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }

        let refusals = acks.otherAnswers
        let refusal = try #require(refusals.first, "no 503 after \(acks.acknowledged.count) acknowledged events; failures: \(acks.connectionFailures.prefix(3))")
        for answer in refusals {
            expectJSONError(answer, status: 503, error: "backlog")
            #expect(answer.header("Retry-After") == "1", "\(answer)")
        }
        #expect(acks.connectionFailures.isEmpty, "\(acks.connectionFailures.prefix(3))")
        let acknowledged = acks.acknowledged
        // 4096 waiting plus what the 64 KiB pipe and the writer hold; never unbounded.
        #expect(acknowledged.count >= ChannelBounds.maxWaitingEvents, "only \(acknowledged.count) before \(refusal)")
        #expect(acknowledged.count < 6_000)
        let resident = try Durability.residentBytes(of: server.pid)
        #expect(resident < 64 << 20, "VmRSS \(resident >> 20) MiB while stalled")

        let restarted = try await Durability.restart(afterKilling: server)
        defer { restarted.stop() }
        let logged = Set(try await Durability.loggedEventIDs(dir))
        let missing = acknowledged.filter { !logged.contains($0) }
        #expect(missing.isEmpty, "\(missing.count) of \(acknowledged.count) acknowledged events are not in the log after kill -9: \(missing.prefix(5))")
    }

    // MARK: Torn last line

    @Test func aTornLastLineIsCutWithOneWarningAndTheNextEventIsWrittenWhole() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let credentials: SourceCredentials
        var earlier: [String] = []
        do {
            let channel = try await TestChannel.start(stateDir: dir)
            defer { channel.stop() }
            credentials = try await channel.http.pairSource(name: "torn")
            for index in 0..<2 {
                let answer = try await channel.http.postWebhook(#"{"event":"before","n":\#(index)}"#, as: credentials,
                                                                extraHeaders: [("X-Webhook-Id", "torn-\(index)")])
                earlier.append(try #require(expectProviderAccepted(answer)))
            }
            channel.server.closeStdin()
            #expect(try await channel.server.child.waitForExit() == .exited(0))
        }
        let logURL = dir.url.appendingPathComponent("events.log")
        let whole = try Data(contentsOf: logURL)
        #expect(whole.last == UInt8(ascii: "\n"))
        // What a crash in the middle of the write leaves: half a line, no newline.
        let torn = Data(#"{"id":"evt_torn0000000000000000000000","source_id":"\#(credentials.sourceID)","body":"{\"event\":\"ha"#.utf8)
        let handle = try FileHandle(forWritingTo: logURL)
        try handle.seekToEnd()
        try handle.write(contentsOf: torn)
        try handle.close()

        let channel = try await TestChannel.start(stateDir: dir)
        defer { channel.stop() }
        let answer = try await channel.http.postWebhook(#"{"event":"after"}"#, as: credentials)
        let next = try #require(expectProviderAccepted(answer))
        _ = try await channel.mcp.channelEvent()

        let warnings = channel.server.stderr.textLines.filter { $0.lowercased().contains("warning") }
        #expect(warnings.count == 1, "stderr:\n\(channel.server.stderr.text)")
        #expect(warnings.first?.contains("events.log") == true, "\(warnings)")
        #expect(try await Durability.loggedEventIDs(dir) == earlier + [next])
        // The file is the two earlier lines unchanged plus one whole new line.
        let after = try Data(contentsOf: logURL)
        #expect(after.prefix(whole.count) == whole, "the earlier lines changed")
        let rest = after.dropFirst(whole.count)
        #expect(rest.last == UInt8(ascii: "\n") && rest.dropLast().firstIndex(of: UInt8(ascii: "\n")) == nil,
                "not one whole line after the repair: \(String(decoding: rest.prefix(300), as: UTF8.self))")
        #expect(try JSON.parse(Data(rest.dropLast()))["id"] == .string(next))
        // The earlier events are still remembered as delivered, and readable in full.
        let repeated = try await channel.http.postWebhook(#"{"event":"before","n":1}"#, as: credentials,
                                                          extraHeaders: [("X-Webhook-Id", "torn-1")])
        #expect(try repeated.json() == ["received": true, "duplicate": true], "\(repeated)")
        let shown = try await channel.mcp.callTool("webhook_event", arguments: ["event_id": .string(earlier[0])])
        #expect(shown["result"]?["isError"] != true, "\(shown)")
        #expect(ProviderFixtures.text(ofToolResult: shown["result"] ?? .null).contains(#"before"#), "\(shown)")
    }

    // MARK: Duplicate memory

    @Test func aDeliveryRotatedOutOfTheEventLogIsStillADuplicateAfterARestart() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let padding = String(repeating: "x", count: 600_000)
        func body(_ index: Int) -> String { #"{"event":"big","n":\#(index),"pad":"\#(padding)"}"# }
        let credentials: SourceCredentials
        var firstEventID = ""
        do {
            let channel = try await TestChannel.start(stateDir: dir)
            defer { channel.stop() }
            credentials = try await channel.http.pairSource(name: "big")
            for index in 0..<40 {
                let answer = try await channel.http.postWebhook(body(index), as: credentials,
                                                                extraHeaders: [("X-Webhook-Id", "big-delivery-\(index)")])
                let id = try #require(expectProviderAccepted(answer), "delivery \(index)")
                if index == 0 { firstEventID = id }
            }
            channel.server.closeStdin()
            #expect(try await channel.server.child.waitForExit() == .exited(0))
        }
        // 40 × 600 KB is more than events.log + events.log.1 keep: the first is gone from the log.
        let logged = try await Durability.loggedEventIDs(dir)
        #expect(!logged.contains(firstEventID), "events.log did not rotate the first event away (\(logged.count) listed)")
        #expect(logged.count < 40)

        let channel = try await TestChannel.start(stateDir: dir)
        defer { channel.stop() }
        let again = try await channel.http.postWebhook(body(0), as: credentials, timestamp: unixNow() + 1,
                                                       extraHeaders: [("X-Webhook-Id", "big-delivery-0")])

        #expect(again.status == 200, "\(again)")
        #expect(try again.json() == ["received": true, "duplicate": true], "\(again)")
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty, "the duplicate was delivered again")
        // A new delivery id is still accepted.
        expectProviderAccepted(try await channel.http.postWebhook(body(40), as: credentials,
                                                                  extraHeaders: [("X-Webhook-Id", "big-delivery-40")]))
    }

    /// Acknowledged, then `kill -9` at once: the key reached the journal with the answer's
    /// pass, so the sender's retry after the restart is still a duplicate.
    @Test func aDeliveryAcknowledgedJustBeforeKillNineIsADuplicateAfterTheRestart() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let credentials = try await Self.acknowledgeOne(#"{"event":"once"}"#, deliveryID: "acked-1", in: dir, thenKill: true)

        let channel = try await TestChannel.start(stateDir: dir)
        defer { channel.stop() }
        let retry = try await channel.http.postWebhook(#"{"event":"once"}"#, as: credentials,
                                                       extraHeaders: [("X-Webhook-Id", "acked-1")])
        #expect(try retry.json() == ["received": true, "duplicate": true], "\(retry)")
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty, "the duplicate was delivered again")
    }

    /// A `200` promises the duplicate key survives a restart: while `dedupe.log` cannot be
    /// written (here a link to itself in its place; a full disk in life) the event, logged and
    /// notified, is answered `503`, and so is its retry, never notified again; once the journal
    /// can be written the retry is a duplicate, and still one after a restart.
    @Test func aDeliveryWhoseKeyCannotBeJournaledIsNotAcknowledgedAndItsRetryIsNotNotifiedTwice() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let channel = try await TestChannel.start(stateDir: dir)
        let credentials = try await channel.http.pairSource(name: "journal")
        _ = try await channel.http.postWebhook(#"{"event":"first"}"#, as: credentials)
        _ = try await channel.mcp.channelEvent()
        let journal = dir.path + "/dedupe.log"
        try FileManager.default.removeItem(atPath: journal)
        try FileManager.default.createSymbolicLink(atPath: journal, withDestinationPath: "dedupe.log")

        let body = #"{"event":"unjournaled"}"#
        let delivery = [("X-Webhook-Id", "unjournaled-1")]
        let refused = try await channel.http.postWebhook(body, as: credentials, extraHeaders: delivery)
        expectJSONError(refused, status: 503, error: "storage_unavailable")
        #expect(try await channel.mcp.channelEvent()["content"]?.stringValue == body, "logged and notified once")
        let again = try await channel.http.postWebhook(body, as: credentials, extraHeaders: delivery)
        expectJSONError(again, status: 503, error: "storage_unavailable")

        try FileManager.default.removeItem(atPath: journal)
        let retry = try await channel.http.postWebhook(body, as: credentials, extraHeaders: delivery)
        #expect(try retry.json() == ["received": true, "duplicate": true], "\(retry)")
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty, "the retry was notified again")
        channel.server.closeStdin()
        #expect(try await channel.server.child.waitForExit() == .exited(0))
        channel.stop()

        let restarted = try await TestChannel.start(stateDir: dir)
        defer { restarted.stop() }
        let afterRestart = try await restarted.http.postWebhook(body, as: credentials, extraHeaders: delivery)
        #expect(try afterRestart.json() == ["received": true, "duplicate": true], "\(afterRestart)")
        #expect(try await restarted.mcp.channelEventsUntilQuiet().isEmpty)
    }

    /// The log's line is written before the answer; a process that dies in between leaves an
    /// event that was never acknowledged nor, perhaps, notified. On disk that is a line in
    /// `events.log` whose key `dedupe.log` lacks (the journal takes keys after the answers).
    /// The sender retries, and the retry must be delivered, not answered "duplicate".
    @Test func aDeliveryLoggedButNeverAcknowledgedIsDeliveredWhenItsSenderRetriesAfterARestart() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let credentials = try await Self.acknowledgeOne(#"{"event":"lost"}"#, deliveryID: "unanswered-1", in: dir, thenKill: false)
        // The state a crash between the log's write and the answer leaves: the journal exists
        // (so it is what restores the memory) but does not hold this delivery.
        let journal = dir.url.appendingPathComponent("dedupe.log")
        #expect(FileManager.default.fileExists(atPath: journal.path))
        try Data().write(to: journal)

        let channel = try await TestChannel.start(stateDir: dir)
        defer { channel.stop() }
        let retry = try await channel.http.postWebhook(#"{"event":"lost"}"#, as: credentials,
                                                       extraHeaders: [("X-Webhook-Id", "unanswered-1")])
        let eventID = try #require(expectProviderAccepted(retry), "\(retry)")
        #expect(try retry.json()["duplicate"] == nil, "\(retry)")
        let delivered = try await channel.mcp.channelEvent()
        #expect(delivered["meta"]?["event_id"]?.stringValue == eventID, "\(delivered)")
        // Delivered and acknowledged now: a further retry is a duplicate.
        let again = try await channel.http.postWebhook(#"{"event":"lost"}"#, as: credentials,
                                                       extraHeaders: [("X-Webhook-Id", "unanswered-1")])
        #expect(try again.json() == ["received": true, "duplicate": true], "\(again)")
    }

    /// Pairs a source on a server over `dir`, has one delivery acknowledged, then ends the
    /// server: `kill -9` at once, or an orderly exit (end of stdin).
    static func acknowledgeOne(_ body: String, deliveryID: String, in dir: TempStateDir, thenKill: Bool) async throws
        -> SourceCredentials
    {
        let channel = try await TestChannel.start(stateDir: dir)
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        expectProviderAccepted(try await channel.http.postWebhook(body, as: credentials,
                                                                  extraHeaders: [("X-Webhook-Id", deliveryID)]))
        if thenKill {
            channel.server.child.send(signal: SIGKILL)
            _ = try await channel.server.child.waitForExit()
            // The killed server's server.json would name its port to the harness.
            try? FileManager.default.removeItem(at: dir.serverFile)
        } else {
            channel.server.closeStdin()
            #expect(try await channel.server.child.waitForExit() == .exited(0))
        }
        return credentials
    }

    /// Someone deletes `events.log` while the server runs: the next event goes to a new file
    /// that the next start reads, not to the deleted one, where it would be lost.
    @Test func anEventLogRemovedWhileInUseIsStartedAgainAndTheNextEventIsKept() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        expectProviderAccepted(try await channel.http.postWebhook(#"{"event":"before"}"#, as: credentials))
        try FileManager.default.removeItem(at: channel.stateDir.url.appendingPathComponent("events.log"))

        let after = try #require(expectProviderAccepted(try await channel.http.postWebhook(#"{"event":"after"}"#, as: credentials)))
        #expect(try await Durability.loggedEventIDs(channel.stateDir).contains(after))
        _ = try await channel.server.stderr.waitForLine("a warning about the removed log", where: {
            $0.contains("events.log was removed")
        })
    }

    // MARK: WEBHOOK_FSYNC

    @Test func withFsyncOnAWebhookIsAcknowledgedDeliveredAndListed() async throws {
        let channel = try await TestChannel.start(environment: ["WEBHOOK_FSYNC": "1"])
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "fsync")
        var ids: [String] = []
        for index in 0..<3 {
            let answer = try await channel.http.postWebhook(#"{"event":"synced","n":\#(index)}"#, as: credentials)
            ids.append(try #require(expectProviderAccepted(answer)))
        }

        var delivered: [String] = []
        for _ in ids { delivered.append(try await channel.mcp.channelEvent()["meta"]?["event_id"]?.stringValue ?? "") }
        #expect(delivered == ids)
        #expect(try await Durability.loggedEventIDs(channel.stateDir) == ids)
    }
}

/// SPEC 9's bounds, as the tests expect them.
enum ChannelBounds {
    static let maxWaitingEvents = 4096
    static let maxWaitingBytes = 8 << 20
}
