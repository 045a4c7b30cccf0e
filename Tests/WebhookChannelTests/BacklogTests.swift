import Foundation
import Testing

/// Claude Code can stop reading stdout (SPEC 9): notifications not yet written are bounded
/// (4096 events or 8 MiB); past that `POST /webhook` answers `503 {"error":"backlog"}` with
/// `Retry-After: 1`, resident memory stays under 64 MiB, and once the reader resumes every
/// acknowledged event is written exactly once, in order.
@Suite(.serialized) struct BacklogTests {
    @Test func afterAStallEveryAcknowledgedEventIsNotifiedOnceInOrderAndWebhooksAreAcceptedAgain() async throws {
        let server = try await ServerProcess.start(holdStdout: true)
        defer { server.stop() }
        let http = RawHTTPClient(port: server.port)
        let credentials = try await http.pairSource(name: "slow-reader")
        try await Durability.initializeWithoutReading(server)

        // 12 KB bodies on one connection, one at a time: the 8 MiB bound is reached first,
        // and acknowledgement order is sending order.
        let acks = Acknowledgements()
        let deadline = Date().addingTimeInterval(90)
        try await offloaded {
            acks.sendLoop(port: server.port, limit: 3_000, deadline: deadline) { index in
                Durability.webhookRequest(http, credentials, body: Durability.body(tag: "ordered", index: index, padding: 12_000))
            }
        }
        let acknowledged = acks.acknowledged
        let refusal = try #require(acks.otherAnswers.first,
                                   "no 503 after \(acknowledged.count) acknowledged; \(acks.connectionFailures)")
        expectJSONError(refusal, status: 503, error: "backlog")
        #expect(refusal.header("Retry-After") == "1", "\(refusal)")
        #expect(acks.connectionFailures.isEmpty, "\(acks.connectionFailures)")
        // About 8 MiB of 12 KB notifications, plus what the pipe holds; far below 4096.
        #expect(acknowledged.count >= (ChannelBounds.maxWaitingBytes / 13_000), "only \(acknowledged.count) acknowledged")
        #expect(acknowledged.count < 1_000, "\(acknowledged.count) acknowledged: the 8 MiB bound did not hold")
        let resident = try Durability.residentBytes(of: server.pid)
        #expect(resident < 64 << 20, "VmRSS \(resident >> 20) MiB while stalled")
        // Still stalled: an event of the same size is still refused (a much smaller one may
        // still fit in the 8 MiB).
        let stillStalled = try await http.send(raw: Durability.webhookRequest(
            http, credentials, body: Durability.body(tag: "ordered", index: 99_999, padding: 12_000)))
        expectJSONError(stillStalled, status: 503, error: "backlog")

        server.child.resumeStdout()
        let mcp = MCPTestClient(server)
        let initialized = try await mcp.response(to: "stalled-initialize")
        #expect(initialized["result"] != nil, "\(initialized)")
        try await Durability.expectNotifiedOnceInOrder(acknowledged, by: mcp)

        let after = try await http.postWebhook(#"{"event":"after-resume"}"#, as: credentials)
        let afterID = try #require(expectProviderAccepted(after))
        #expect(try await mcp.channelEvent()["meta"]?["event_id"] == .string(afterID))
    }

    /// Replies are bounded too: a client that keeps sending tool calls while it does not read
    /// stdout is no longer read once about 8 MiB of answers wait (its own pipe fills), instead
    /// of having every answer built in memory; once it reads again, every call is answered
    /// exactly once.
    @Test func toolCallsSentWhileStdoutIsNotReadWaitInTheClientsPipeAndAreAllAnsweredAfter() async throws {
        let server = try await ServerProcess.start(holdStdout: true)
        defer { server.stop() }
        let eventID = try await Self.oneEventUnread(on: server, padding: 25_000)
        let http = RawHTTPClient(port: server.port)

        // 3,500 answers of 25 KB each, 88 MB if they were all answered into memory. The calls
        // (520 KB) are several times what the pipe, the reader and 8 MiB of answers take in.
        let calls = 3_500
        for n in 0..<calls {
            server.writeLine(Self.webhookEventCall(id: "call-\(n)", eventID: eventID))
        }
        // Settled: what the server leaves unread stops changing for a second (bounded).
        var waiting = server.child.stdinChunksWaiting
        var unchangedSince = ContinuousClock.now
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while ContinuousClock.now < deadline, ContinuousClock.now - unchangedSince < .seconds(1) {
            try await Task.sleep(for: .milliseconds(100))
            let now = server.child.stdinChunksWaiting
            if now != waiting { waiting = now; unchangedSince = .now }
        }
        #expect(waiting > 0, "every call was read while stdout was not: nothing held the client back")
        let peak = try Durability.peakResidentBytes(of: server.pid)
        #expect(peak < 64 << 20, "VmHWM \(peak >> 20) MiB while stdout was not read")
        #expect(try await http.get("/health").status == 200, "HTTP stops answering while stdin is held back")
        let threads = threadNames(of: server.pid)
        #expect(!threads.contains { $0.contains("qos") }, "holding back started a libdispatch thread: \(threads.sorted())")

        server.child.resumeStdout()
        var answered = Set<String>()
        var duplicates = 0
        var errors: [String] = []
        var seen = 0
        let readDeadline = ContinuousClock.now.advanced(by: .seconds(120))
        while answered.count < calls, ContinuousClock.now < readDeadline {
            let lines = server.child.stdout.lines(from: seen)
            seen += lines.count
            for line in lines {
                guard let id = Self.callID(in: line) else { continue }
                if line.range(of: Data(#""result""#.utf8)) == nil { errors.append(String(decoding: line.prefix(300), as: UTF8.self)) }
                if !answered.insert(id).inserted { duplicates += 1 }
            }
            if lines.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(answered.count == calls, "\(answered.count) of \(calls) calls answered")
        #expect(duplicates == 0)
        #expect(errors.isEmpty, "\(errors.prefix(3))")
    }

    /// Large answers are built one at a time, and only while there is room for them: 60 calls
    /// for a 0.9 MB event, all read at once (they are small), sent while stdout is not read,
    /// must not all be built into memory (120 of them took 165 MiB), and are all answered after.
    @Test func largeToolAnswersAreBuiltOnlyWhileTheirOutputHasRoom() async throws {
        let server = try await ServerProcess.start(holdStdout: true)
        defer { server.stop() }
        let eventID = try await Self.oneEventUnread(on: server, padding: 900_000)
        let calls = 60
        var lines = ""
        for n in 0..<calls { lines += Self.webhookEventCall(id: "call-\(n)", eventID: eventID) + "\n" }
        server.write(Data(lines.utf8))
        _ = try await poll(timeout: .seconds(60), "the calls to be read") { server.child.stdinChunksWaiting == 0 ? true : nil }
        // Time for whatever would be built to be built (bounded; this can only hide a failure).
        try await Task.sleep(for: .seconds(2))
        let peak = try Durability.peakResidentBytes(of: server.pid)
        #expect(peak < 64 << 20, "VmHWM \(peak >> 20) MiB with \(calls) large answers unread")

        server.child.resumeStdout()
        var answered = Set<String>()
        var seen = 0
        let readDeadline = ContinuousClock.now.advanced(by: .seconds(120))
        while answered.count < calls, ContinuousClock.now < readDeadline {
            let read = server.child.stdout.lines(from: seen)
            seen += read.count
            for line in read {
                if let id = Self.callID(in: line), line.range(of: Data(#""result""#.utf8)) != nil { answered.insert(id) }
            }
            if read.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(answered.count == calls, "\(answered.count) of \(calls) calls answered")
    }

    /// Held back (its answers unread), the session reads no further; the end of input must
    /// still end it at once. The reader, waiting for room, watches for the client hanging up.
    @Test func closingStdinWhileTheSessionIsHeldBackStillEndsIt() async throws {
        let server = try await ServerProcess.start(holdStdout: true)
        defer { server.stop() }
        let eventID = try await Self.oneEventUnread(on: server, padding: 100_000)
        // 600 calls (90 KB, all in the pipe and the reader's buffer), answers of 100 KB: the
        // session is held back after about 84 of them.
        var calls = ""
        for n in 0..<600 {
            calls += Self.webhookEventCall(id: "held-\(n)", eventID: eventID) + "\n"
        }
        server.write(Data(calls.utf8))
        _ = try await poll(timeout: .seconds(60), "the calls to be in the pipe") { server.child.stdinChunksWaiting == 0 ? true : nil }
        server.closeStdin()

        let termination = try await server.child.waitForExit()
        #expect(termination == .exited(0), "\(termination); stderr:\n\(server.stderr.tail())")
    }

    /// Pairs a source, initialises without reading stdout and sends one event with a body of
    /// about `padding` bytes, so each `webhook_event` call for it has an answer that large.
    private static func oneEventUnread(on server: ServerProcess, padding: Int) async throws -> String {
        let http = RawHTTPClient(port: server.port)
        let credentials = try await http.pairSource(name: "big-answers")
        try await Durability.initializeWithoutReading(server)
        let accepted = try await http.send(raw: Durability.webhookRequest(
            http, credentials, body: Durability.body(tag: "big", index: 0, padding: padding)))
        return try #require(expectProviderAccepted(accepted))
    }

    /// A `tools/call` of `webhook_event` for `eventID`, as one line without its newline.
    private static func webhookEventCall(id: String, eventID: String) -> String {
        #"{"jsonrpc":"2.0","id":"\#(id)","method":"tools/call","params":{"name":"webhook_event","arguments":{"event_id":"\#(eventID)"}}}"#
    }

    /// `call-N` from a line answering one of the calls above.
    private static func callID(in line: Data) -> String? {
        guard let start = line.range(of: Data(#""id":"call-"#.utf8)) else { return nil }
        let digits = line[start.upperBound...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return "call-" + String(decoding: digits, as: UTF8.self)
    }

    /// The webhook whose notification finds Claude Code gone (stdout closed) is not
    /// acknowledged: nothing could deliver it. It is answered `503`, and the server exits.
    @Test func theWebhookThatFindsStdoutClosedIsRefusedNotAcknowledged() async throws {
        let server = try await ServerProcess.start(holdStdout: true)
        defer { server.stop() }
        let http = RawHTTPClient(port: server.port)
        let credentials = try await http.pairSource(name: "gone-reader")
        try await Durability.initializeWithoutReading(server)
        try await Durability.closeStdoutOnceInitializeIsAnswered(server)

        let answer = try await http.postWebhook(#"{"event":"nobody-reads"}"#, as: credentials)
        expectJSONError(answer, status: 503, error: "session_closed")
        #expect(answer.header("Retry-After") == "1", "\(answer)")
        let termination = try await server.child.waitForExit()
        #expect(termination == .exited(0), "\(termination); stderr:\n\(server.stderr.tail())")
    }

    @Test func beforeInitializedAFullWaitingRoomAnswers503NotReady() async throws {
        // No handshake at all: events wait for notifications/initialized, up to the bound.
        let server = try await ServerProcess.start()
        defer { server.stop() }
        let http = RawHTTPClient(port: server.port)
        let credentials = try await http.pairSource(name: "early")
        let acks = Acknowledgements()
        let deadline = Date().addingTimeInterval(60)
        try await offloaded {
            acks.sendLoop(port: server.port, limit: 3_000, deadline: deadline) { index in
                Durability.webhookRequest(http, credentials, body: Durability.body(tag: "early", index: index, padding: 12_000))
            }
        }
        let refusal = try #require(acks.otherAnswers.first, "no 503 after \(acks.acknowledged.count)")
        expectJSONError(refusal, status: 503, error: "not_ready")

        let mcp = MCPTestClient(server)
        try await mcp.handshake()
        var delivered: [String] = []
        for _ in acks.acknowledged {
            delivered.append(try await mcp.channelEvent()["meta"]?["event_id"]?.stringValue ?? "(none)")
        }
        #expect(delivered == acks.acknowledged)
        expectProviderAccepted(try await http.postWebhook(#"{"event":"after-initialized"}"#, as: credentials))
    }
}
