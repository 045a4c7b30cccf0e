import Foundation
import Testing
@testable import Platform
@testable import MCP
@testable import HTTP
@testable import Signing
import JSON
@testable import WebhookChannel

/// What a follower re-attaching to a new hub missed (SPEC 11, README "Several sessions"): the
/// index answers when it can; past it (a follower far behind), the log itself is read, so no
/// acknowledged event is left out however many there are.
struct FollowerCatchUpTests {
    static func record(_ n: Int, source: String = "src_a", filtered: Bool = false) -> EventRecord {
        EventRecord(id: "evt_\(n)", sourceID: source, sourceName: "a", deliveryID: "d-\(n)", type: "push",
                    receivedAt: 1_700_000_000, contentType: "application/json", headers: [:],
                    body: Array(#"{"n":\#(n)}"#.utf8), replayKeys: [], filtered: filtered)
    }

    /// Writes `older` to `events.log.1` and `current` to `events.log`, as rotation leaves them.
    static func writeLog(_ dir: TempStateDir, older: [EventRecord], current: [EventRecord]) throws {
        try dir.createStateDir()
        for (name, records) in [("events.log.1", older), ("events.log", current)] {
            var bytes: [UInt8] = []
            for record in records { EventLog.appendLine(record, into: &bytes) }
            try Data(bytes).write(to: dir.url.appendingPathComponent(name))
        }
    }

    static func ids(_ records: [EventRecord]) -> [String] { records.map(\.id) }

    /// What `FollowerCatchUp.forEachRecord` visits, in order.
    static func records(after: String, through: String, directory: StateDirectory) -> [EventRecord] {
        var records: [EventRecord] = []
        FollowerCatchUp.forEachRecord(after: after, through: through, directory: directory) { record in
            records.append(record)
            return true
        }
        return records
    }

    @Test func theLogGivesEveryEventAfterTheFollowersLastThroughTheLastReleasedAcrossBothGenerations() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try Self.writeLog(dir, older: (0..<3000).map { Self.record($0) }, current: (3000..<9000).map { Self.record($0) })
        let directory = StateDirectory(path: dir.path)

        let missed = Self.records(after: "evt_100", through: "evt_8500", directory: directory)
        #expect(Self.ids(missed) == (101...8500).map { "evt_\($0)" }, "\(missed.count) records")
    }

    @Test func aFollowerWhoseLastEventWasRotatedAwayMissedEverythingThroughTheLastReleased() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try Self.writeLog(dir, older: (10..<20).map { Self.record($0) }, current: (20..<30).map { Self.record($0) })
        let missed = Self.records(after: "evt_3", through: "evt_25", directory: StateDirectory(path: dir.path))
        #expect(Self.ids(missed) == (10...25).map { "evt_\($0)" })
    }

    @Test func aFollowerAheadOfTheNewHubOrAnUnknownLastReleasedMissedNothing() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try Self.writeLog(dir, older: [], current: (0..<10).map { Self.record($0) })
        let directory = StateDirectory(path: dir.path)
        #expect(Self.records(after: "evt_8", through: "evt_5", directory: directory).isEmpty)
        #expect(Self.records(after: "evt_2", through: "evt_404", directory: directory).isEmpty)
    }

    /// Read from the log, the lines follow the sources as the hub saw them: a filtered event,
    /// one of a source no longer paired, and one pinned to another project are left out (the
    /// indexed case goes through the same choice).
    @Test func linesFromTheLogSkipFilteredUnpairedAndElsewhereRoutedEvents() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let records = [Self.record(0), Self.record(1), Self.record(2, filtered: true), Self.record(3, source: "src_gone"),
                       Self.record(4, source: "src_pinned"), Self.record(5)]
        try Self.writeLog(dir, older: [], current: records)
        var pinned = SourceRecord(id: "src_pinned", name: "p", hmacSecret: "whsec_p", callbackURL: nil, pairedAt: "2026-01-01T00:00:00Z")
        pinned.route = "/elsewhere"
        let sources = ["src_a": SourceRecord(id: "src_a", name: "a", hmacSecret: "whsec_a", callbackURL: nil, pairedAt: "2026-01-01T00:00:00Z"),
                       "src_pinned": pinned]
        let catchUp = FollowerCatchUp(missed: .logRange(after: "evt_0", through: "evt_5"), sources: sources,
                                      inside: { $0 == "/work/b" })
        var chunks: [[UInt8]] = []
        let count = catchUp.lines(directory: StateDirectory(path: dir.path), chunkBytes: 1) { chunk in
            chunks.append(chunk)
            return true
        }
        #expect(chunks.count == 2, "one chunk a line at a one-byte chunk size")
        let lines = String(decoding: Array(chunks.joined()), as: UTF8.self).split(separator: "\n")
        #expect(count == 2 && lines.count == 2)
        #expect(lines.first?.contains(#""event_id":"evt_1""#) == true, "\(lines)")
        #expect(lines.last?.contains(#""event_id":"evt_5""#) == true, "\(lines)")
        #expect(lines.allSatisfy { $0.contains("notifications/claude/channel") })
    }

    /// The hub warns when a follower's last event was rotated away (what came before the
    /// oldest logged event cannot be sent): the read says whether it found it.
    @Test func theReadSaysWhetherTheFollowersLastEventIsStillInTheLog() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try Self.writeLog(dir, older: (10..<20).map { Self.record($0) }, current: (20..<30).map { Self.record($0) })
        let directory = StateDirectory(path: dir.path)
        #expect(FollowerCatchUp.forEachRecord(after: "evt_12", through: "evt_25", directory: directory) { _ in true })
        #expect(!FollowerCatchUp.forEachRecord(after: "evt_3", through: "evt_25", directory: directory) { _ in true })
        var warned = 0
        let source = SourceRecord(id: "src_a", name: "a", hmacSecret: "whsec_a", callbackURL: nil, pairedAt: "2026-01-01T00:00:00Z")
        let catchUp = FollowerCatchUp(missed: .logRange(after: "evt_3", through: "evt_25"), sources: ["src_a": source],
                                      inside: { _ in true })
        let count = catchUp.lines(directory: directory, rotatedAway: { warned += 1 }) { _ in true }
        #expect(count == 16 && warned == 1, "\(count) lines, warned \(warned) times")
    }

    /// A follower that goes away in the middle of its catch-up: the log is not read further.
    @Test func linesStopWhenTheTakerWantsNoMore() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try Self.writeLog(dir, older: (0..<50).map { Self.record($0) }, current: (50..<100).map { Self.record($0) })
        let source = SourceRecord(id: "src_a", name: "a", hmacSecret: "whsec_a", callbackURL: nil, pairedAt: "2026-01-01T00:00:00Z")
        let catchUp = FollowerCatchUp(missed: .logRange(after: "evt_0", through: "evt_99"), sources: ["src_a": source],
                                      inside: { _ in true })
        var taken = 0
        let count = catchUp.lines(directory: StateDirectory(path: dir.path), chunkBytes: 1) { _ in
            taken += 1
            return taken < 3
        }
        #expect(taken == 3 && count == 3, "taken \(taken), counted \(count)")
    }

    /// The index hands out what lies between only when it holds all of it; otherwise the
    /// caller reads the log (it used to hand out the first 4,096 and drop the rest).
    @Test func theIndexAnswersOnlyWhenItHoldsEveryMissedEvent() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        let harness = try LoopHarness()
        defer { harness.stop() }
        let eventLog = LoopConfined(EventLog(directory: StateDirectory(path: dir.path), background: SerialWorker(name: "test-log-sync"),
                                             log: Logger(enabled: false)))
        let answers = await harness.run { [eventLog] () -> [Int?] in
            eventLog.value.open()
            for n in 0..<10 { eventLog.value.append(Self.record(n)) }
            _ = eventLog.value.writePending()
            return [eventLog.value.entries(after: "evt_1", through: "evt_9", limit: 100)?.count,
                    eventLog.value.entries(after: "evt_1", through: "evt_9", limit: 3)?.count,
                    eventLog.value.entries(after: "evt_404", through: "evt_9")?.count,
                    eventLog.value.entries(after: "evt_8", through: "evt_5")?.count]
        }
        #expect(answers == [8, nil, nil, nil])
    }

    /// The index keeps each pass's entries as one batch and drops whole batches from the front
    /// past twice its capacity: across thousands of passes of every size it must still list the
    /// newest first, find the recent ones, hand out what lies between across batches, and keep
    /// at least its capacity.
    @Test func theIndexInBatchesAnswersAsOneList() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        let harness = try LoopHarness()
        defer { harness.stop() }
        let eventLog = LoopConfined(EventLog(directory: StateDirectory(path: dir.path), maxFileBytes: 64 << 20,
                                             background: SerialWorker(name: "test-log-sync"), log: Logger(enabled: false)))
        let total = 3 * EventLog.indexCapacity + 17
        let answers = await harness.run { [eventLog] () -> (recent: [String], between: Int?, newest: Bool, oldest: Bool, kept: Int) in
            eventLog.value.open()
            var n = 0, size = 1
            while n < total {
                for _ in 0..<min(size, total - n) {
                    eventLog.value.append(Self.record(n))
                    n += 1
                }
                _ = eventLog.value.writePending()
                size = size % 37 + 1
            }
            let recent = eventLog.value.recent(sourceID: nil, limit: 3).map(\.id)
            let between = eventLog.value.entries(after: "evt_\(total - 1000)", through: "evt_\(total - 1)", limit: 2000)?.count
            var kept = 0
            while kept < total, eventLog.value.location(of: "evt_\(total - 1 - kept)") != nil { kept += 1 }
            return (recent, between, eventLog.value.location(of: "evt_\(total - 1)") != nil,
                    eventLog.value.location(of: "evt_0") != nil, kept)
        }
        #expect(answers.recent == ["evt_\(total - 1)", "evt_\(total - 2)", "evt_\(total - 3)"])
        #expect(answers.between == 999)
        #expect(answers.newest && !answers.oldest)
        #expect(answers.kept >= EventLog.indexCapacity && answers.kept < 2 * EventLog.indexCapacity, "kept \(answers.kept)")
    }
}

/// A follower that becomes the hub itself notifies its own session of what the old hub
/// acknowledged after the last event it passed on (README "Several sessions"), from the log, a
/// chunk at a time as the session takes them.
struct OwnSessionCatchUpTests {
    static let secret = "whsec_" + String(repeating: "ab", count: 32)

    /// A state dir whose log holds `older` and `current`, a state on a stdout pipe nobody reads
    /// yet, and the last event its session was passed as a follower: `followed`.
    static func takingOver(followed: String, older: [EventRecord], current: [EventRecord],
                           maxWaitingBytes: Int = ChannelNotifier.maxWaitingBytes) throws -> (TempStateDir, StateOnStdoutPipe)
    {
        let dir = try TempStateDir()
        try FollowerCatchUpTests.writeLog(dir, older: older, current: current)
        let source = SourceRecord(id: "src_a", name: "a", hmacSecret: secret, callbackURL: nil, pairedAt: "2026-01-02T03:04:05.678Z")
        try SourceDirectoryTests.writeSources([source], to: dir)
        let onPipe = try StateOnStdoutPipe(stateDir: dir, maxWaitingBytes: maxWaitingBytes)
        onPipe.state.lastFollowedEventID.withLock { $0 = followed }
        return (dir, onPipe)
    }

    /// The event ids read from the pipe until `count` whole lines came (or 20 s passed). It
    /// waits with `Task.sleep`: a blocking wait would hold one of the test run's few
    /// cooperative threads (two on two cores) and stall every other test meanwhile.
    static func readIDs(_ pipe: ProtocolOutputTests.Pipe, count: Int) async -> [String] {
        var text = ""
        var lines = 0
        let deadline = Date().addingTimeInterval(20)
        while lines < count && Date() < deadline {
            let more = pipe.readAvailable()
            if more.isEmpty { try? await Task.sleep(for: .milliseconds(5)) }
            text += more
            lines += more.utf8.count { $0 == 0x0A }
        }
        return text.split(separator: "\n").compactMap { line in
            try? JSONParser.parse(Array(line.utf8))["params"]?["meta"]?["event_id"]?.stringValue
        }
    }

    /// The event ids a stalled follower's session is notified of when it becomes the hub, its
    /// last passed event being `followed`.
    static func notifiedOnTakingOver(followed: String, older: [EventRecord], current: [EventRecord], expecting: Int)
        async throws -> [String]
    {
        let (dir, onPipe) = try takingOver(followed: followed, older: older, current: current)
        defer { onPipe.stop(); dir.remove() }
        await onPipe.harness.run { onPipe.state.assumeIsolated { $0.openLogs() } }
        return await readIDs(onPipe.pipe, count: expecting)
    }

    /// An event whose body is `bytes` long, so that a few hundred of them outweigh a small bound.
    static func large(_ n: Int, bytes: Int = 4000) -> EventRecord {
        var record = FollowerCatchUpTests.record(n)
        record.body = Array(#"{"n":\#(n),"pad":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: bytes) + Array(#""}"#.utf8)
        return record
    }

    /// A signed webhook of source `src_a` handed to the state, and the end of its loop pass:
    /// `backlog` when it was refused so, else what became of it (`acknowledged`, or `backlog`
    /// when its pass could not be written), else the refusal.
    static func send(_ onPipe: StateOnStdoutPipe, delivery: String, padding: Int = 0) async -> String {
        let body = Array(#"{"type":"late","pad":"\#(String(repeating: "y", count: padding))"}"#.utf8)
        let headers = HTTPHeaders(
            [("Content-Type", "application/json"), ("X-Source-Id", "src_a")]
                + SignatureScheme.signingHeaders(scheme: .webhook, secret: secret, body: body,
                                                 timestamp: Int64(Date().timeIntervalSince1970), deliveryID: delivery))
        let state = onPipe.state
        return await onPipe.harness.answer {
            state.assumeIsolated { state -> Pending<String> in
                let answer = Pending<String>()
                switch state.receiveWebhook(pathSourceID: nil, headers: headers, body: body) {
                case .accepted(let written):
                    written.whenReady { commit in
                        if case .acknowledged = commit { answer.fulfil("acknowledged") } else { answer.fulfil("\(commit)") }
                    }
                case .backlog: answer.fulfil("backlog")
                case let other: answer.fulfil("\(other)")
                }
                state.commitAcceptedEvents()
                return answer
            }
        }
    }

    @Test func theEventsLoggedAfterTheLastOnePassedOnAreNotified() async throws {
        let notified = try await Self.notifiedOnTakingOver(
            followed: "evt_14", older: (10..<20).map { FollowerCatchUpTests.record($0) },
            current: (20..<30).map { FollowerCatchUpTests.record($0) }, expecting: 15)
        #expect(notified == (15..<30).map { "evt_\($0)" })
    }

    /// Its last event is no longer in the log (rotated away while it did not read): every
    /// event the log holds came after it. (It used to be notified of none of them.)
    @Test func whenTheLastOnePassedOnWasRotatedAwayEveryLoggedEventIsNotified() async throws {
        let notified = try await Self.notifiedOnTakingOver(
            followed: "evt_3", older: (10..<20).map { FollowerCatchUpTests.record($0) },
            current: (20..<30).map { FollowerCatchUpTests.record($0) }, expecting: 20)
        #expect(notified == (10..<30).map { "evt_\($0)" })
    }

    /// A session that still does not read holds at most the notification bound of its
    /// catch-up, not the whole log (1.6 MB here against a 512 KiB bound; two generations of a
    /// real log took a stalled follower that became the hub to 74 MiB); once it reads, it
    /// gets every event, in order, once.
    @Test func aSessionThatDoesNotReadIsCaughtUpWithinTheNotificationBound() async throws {
        let bound = 512 << 10
        let (dir, onPipe) = try Self.takingOver(followed: "evt_0", older: (0..<200).map { Self.large($0) },
                                                current: (200..<400).map { Self.large($0) }, maxWaitingBytes: bound)
        defer { onPipe.stop(); dir.remove() }
        let (notifier, state) = (onPipe.notifier, onPipe.state)
        await onPipe.harness.run { state.assumeIsolated { $0.openLogs() } }
        let deadline = Date().addingTimeInterval(20)
        while notifier.waiting.bytes < bound / 2 && Date() < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        try? await Task.sleep(for: .milliseconds(300))  // time for a catch-up that ignored the bound to queue the rest
        let waiting = notifier.waiting.bytes
        #expect(waiting >= bound / 2 && waiting <= bound, "\(waiting) bytes waiting against a bound of \(bound)")
        #expect(await Self.readIDs(onPipe.pipe, count: 399) == (1..<400).map { "evt_\($0)" })
    }

    /// A webhook for this session that arrives while its catch-up is still being taken would
    /// overtake it: it is refused `503 backlog` (the sender retries) until the catch-up is in,
    /// then accepted and notified after all of it.
    @Test func aWebhookForThisSessionWaitsUntilItsCatchUpIsTaken() async throws {
        // 1.2 MB of catch-up against a 1 MiB bound: three chunks of 256 KiB wait on the pipe,
        // the fourth waits for room, and a small event would still fit in what is left.
        let bound = 1 << 20
        let (dir, onPipe) = try Self.takingOver(followed: "evt_0", older: [], current: (0..<300).map { Self.large($0) },
                                                maxWaitingBytes: bound)
        defer { onPipe.stop(); dir.remove() }
        let (harness, notifier, state) = (onPipe.harness, onPipe.notifier, onPipe.state)
        await harness.run { state.assumeIsolated { $0.openLogs() } }
        let deadline = Date().addingTimeInterval(20)
        while notifier.waiting.bytes < bound / 2 && Date() < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        try? await Task.sleep(for: .milliseconds(100))
        #expect(notifier.waiting.bytes < bound - 64 << 10, "no room left for the test's event")

        #expect(await Self.send(onPipe, delivery: "late-1") == "backlog")
        var ids = await Self.readIDs(onPipe.pipe, count: 299)
        #expect(ids == (1..<300).map { "evt_\($0)" })
        var outcome = await Self.send(onPipe, delivery: "late-1")
        while outcome == "backlog" && Date() < deadline {
            try? await Task.sleep(for: .milliseconds(10))
            outcome = await Self.send(onPipe, delivery: "late-1")
        }
        #expect(outcome == "acknowledged")
        ids = await Self.readIDs(onPipe.pipe, count: 1)
        #expect(ids.count == 1 && ids.first?.hasPrefix("evt_") == true && !ids.contains("evt_299"))
    }
}

/// A follower that takes the port over starts its listener before its hub (and the wait for
/// the old hub's other followers) is installed. A webhook taken in between must not rotate a
/// full log: the old hub had held it at the boundary for a stalled follower that is about to
/// re-attach and read what it missed from `events.log.1`.
struct TakingOverRotationTests {
    @Test func aFullLogDoesNotRotateUntilTheNewHubIsSettled() async throws {
        // A log one webhook short of rotating.
        var records: [EventRecord] = []
        var bytes = 0
        for size in [30_000, 1_000, 50] {
            while true {
                let record = OwnSessionCatchUpTests.large(records.count, bytes: size)
                var line: [UInt8] = []
                EventLog.appendLine(record, into: &line)
                guard bytes + line.count <= (8 << 20) - 600 else { break }
                bytes += line.count
                records.append(record)
            }
        }
        let (dir, onPipe) = try OwnSessionCatchUpTests.takingOver(followed: records.last!.id, older: [], current: records)
        defer { onPipe.stop(); dir.remove() }
        let (harness, state) = (onPipe.harness, onPipe.state)
        let older = dir.url.appendingPathComponent("events.log.1").path
        func olderSize() -> Int { (try? FileManager.default.attributesOfItem(atPath: older)[.size] as? Int) ?? 0 }
        await harness.run { state.assumeIsolated { $0.beginTakingOver(); $0.openLogs() } }

        let whileTakingOver = await OwnSessionCatchUpTests.send(onPipe, delivery: "late-1", padding: 800)
        #expect(whileTakingOver == "backlog", "\(whileTakingOver)")
        #expect(olderSize() == 0, "the log rotated while the new hub was not settled")

        await harness.run { state.assumeIsolated { $0.becameHub(nil) } }
        let settled = await OwnSessionCatchUpTests.send(onPipe, delivery: "late-2", padding: 800)
        #expect(settled == "acknowledged", "\(settled)")
        #expect(olderSize() > 0, "the log did not rotate once the hub was settled")
    }
}
