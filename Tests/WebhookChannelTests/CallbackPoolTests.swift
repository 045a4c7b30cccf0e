import Foundation
import Synchronization
import Testing
@testable import Platform
@testable import WebhookChannel

/// Where outbound POSTs and the waits between retries run: on the `callback` pool (four
/// threads the process owns, one FIFO) and the process's timer thread, never a thread per POST
/// and never libdispatch. The real binary is measured through `/proc/<pid>`; nothing bounds
/// wall-clock time from above.
@Suite struct CallbackPoolTests {
    /// A callback receiver that accepts every connection and answers none of them until
    /// `answerAll()`; from then on it answers each (200) as it comes. Counts the connections
    /// it was offered, the most it held open at once (the client still connected), and the
    /// distinct `X-Webhook-Id`s it answered.
    final class StallingReceiver: @unchecked Sendable {
        private let listener: LoopbackListener
        private let lock = NSLock()
        private var held: [Int32] = []
        private var connections = 0
        private var mostOpen = 0
        private var answering = false
        private var answeredIDs: Set<String> = []

        init() throws {
            listener = try LoopbackListener()
            let thread = Thread { [self] in listener.acceptUntilStopped(take) }
            thread.name = "e2e-stalling-receiver"
            thread.start()
        }

        deinit { stop() }

        func url() -> String { "http://127.0.0.1:\(listener.port)/callback" }

        var connectionCount: Int { lock.withLock { connections } }
        var heldCount: Int { lock.withLock { held.count } }
        /// The most connections held at once whose client had not given up (closed) when
        /// the next one arrived: what the process had open at once.
        var mostOpenAtOnce: Int { lock.withLock { mostOpen } }
        var answeredDeliveries: Set<String> { lock.withLock { answeredIDs } }

        /// Answers the held connections (on a thread of its own) and every later one.
        func answerAll() {
            let fds: [Int32] = lock.withLock {
                answering = true
                defer { held = [] }
                return held
            }
            let thread = Thread { [self] in for fd in fds { answer(fd) } }
            thread.name = "e2e-stalling-answers"
            thread.start()
        }

        func stop() {
            listener.stop()
            let fds: [Int32] = lock.withLock {
                defer { held = [] }
                return held
            }
            for fd in fds { Foundation.close(fd) }
        }

        private func take(_ fd: Int32) {
            let now: Bool = lock.withLock {
                connections += 1
                if !answering {
                    held.append(fd)
                    mostOpen = max(mostOpen, held.filter { !Self.peerClosed($0) }.count)
                }
                return answering
            }
            if now { answer(fd) }
        }

        /// Whether the client closed its end (its request may still be unread).
        private static func peerClosed(_ fd: Int32) -> Bool {
            let readHangUp: Int16 = 0x2000  // POLLRDHUP (Linux), which the Glibc module does not export
            var state = pollfd(fd: fd, events: readHangUp, revents: 0)
            guard poll(&state, 1, 0) > 0 else { return false }
            return state.revents & (readHangUp | Int16(POLLHUP) | Int16(POLLERR)) != 0
        }

        private func answer(_ fd: Int32) {
            let connection = HTTPConnection(fd: fd)
            defer { connection.close() }
            guard let request = try? connection.readRequestBlocking(timeout: .seconds(5)) else { return }
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            // The client may have given up (its 10 s deadline) while the connection was held.
            guard (try? connection.sendBlocking(Data(head.utf8), timeout: .seconds(5))) != nil else { return }
            if let id = request.header("X-Webhook-Id") { _ = lock.withLock { answeredIDs.insert(id) } }
        }
    }

    /// The replies `webhook_deliveries` lists (up to 200).
    static func recordedReplies(_ channel: TestChannel) async throws -> [JSON] {
        let response = try await channel.mcp.callTool("webhook_deliveries", arguments: ["limit": 200])
        let text = ProviderFixtures.text(ofToolResult: try #require(response["result"], "\(response)"))
        if text.lowercased().hasPrefix("no ") { return [] }
        return try ProviderFixtures.list(from: text, key: "deliveries")
    }

    // MARK: In process

    /// A POST that waits in the pool's FIFO is not charged for the wait: its deadline starts
    /// when a thread takes it. (Were it taken at the call, a minute in the queue would leave
    /// nothing of the 10 s.)
    @Test func aQueuedPostGetsItsWholeDeadlineOnceAThreadTakesIt() async throws {
        let receiver = try CallbackReceiver(statuses: [200])
        defer { receiver.stop() }
        let clock = ManualClock()
        let pool = WorkerPool(name: "cp-deadline", size: 1)
        let gate = DispatchSemaphore(value: 0)
        let holding = Mutex(false)
        pool.async {
            holding.withLock { $0 = true }
            gate.wait()
        }
        _ = try await poll("the pool's one thread to be busy") { holding.withLock { $0 } ? true : nil }

        let url = receiver.url()
        let post = Task {
            await CallbackClient.post(url: url, headers: [], body: Array(#"{"n":1}"#.utf8),
                                      policy: CallbackURLPolicy(allowPrivate: true), timeout: 10, clock: clock, pool: pool)
        }
        _ = try await poll("the POST to wait in the FIFO") { pool.queuedCount == 1 ? true : nil }
        clock.advance(bySeconds: 60)
        gate.signal()

        let result = await post.value
        #expect(result.map(\.status) == .success(200), "\(result)")
        #expect(receiver.deliveries.count == 1)
    }

    // MARK: The real binary

    /// Twenty `webhook_reply` calls to a receiver that holds every connection: four POSTs are
    /// under way (four `callback-N` threads, four connections), sixteen wait in the FIFO, and
    /// the process has at most five threads more than before (the pool, and the timer should a
    /// deadline pass meanwhile and a retry wait). Once the receiver answers, all twenty arrive.
    @Test(.enabled(if: canListThreads))
    func twentyRepliesToAStallingReceiverHoldFourCallbackThreadsAndAllArriveWhenItAnswers() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let receiver = try StallingReceiver()
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "stalling", callbackURL: receiver.url())
        #expect(try await Self.recordedReplies(channel).isEmpty)
        let pid = channel.server.pid
        let before = threadNames(of: pid)

        var ids: [JSON] = []
        for index in 0..<20 {
            let id = channel.mcp.makeID()
            ids.append(id)
            let arguments: JSON = ["source_id": .string(credentials.sourceID), "payload": ["n": .number(Double(index))]]
            channel.mcp.send(["jsonrpc": "2.0", "id": id, "method": "tools/call",
                              "params": ["name": "webhook_reply", "arguments": arguments]])
        }
        // A reply is recorded just before its first POST is handed to the pool.
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(30))
        while try await Self.recordedReplies(channel).count < 20 {
            guard clock.now < deadline else { throw HarnessError("twenty replies were never recorded") }
            try await Task.sleep(for: .milliseconds(20))
        }
        _ = try await poll(timeout: .seconds(30), "four connections held (\(receiver.heldCount))") {
            receiver.heldCount >= 4 ? true : nil
        }
        // A fifth connection, were there one, has time to arrive (this can only hide a failure).
        try await Task.sleep(for: .milliseconds(300))

        let during = threadNames(of: pid)
        // Counted when each connection arrives, among those whose POST has not given up: on a
        // loaded machine the 10 s deadline of the first four can pass before this check, and
        // the threads then rightly take the next POSTs (a new connection each), so the total
        // offered may exceed four while no more than four are ever open at once.
        #expect(receiver.mostOpenAtOnce == 4,
                "connections open at once: \(receiver.mostOpenAtOnce) (\(receiver.connectionCount) offered)")
        #expect(during.filter { $0.hasPrefix("callback") }.sorted() == ["callback-1", "callback-2", "callback-3", "callback-4"],
                "\(during.sorted())")
        #expect(during.count <= before.count + 5, "before: \(before.sorted()); during: \(during.sorted())")
        #expect(!during.contains { $0.contains("qos") }, "a libdispatch thread: \(during.sorted())")

        receiver.answerAll()
        for id in ids {
            let response = try await channel.mcp.response(to: id, timeout: .seconds(120))
            let result = try #require(response["result"], "\(response)")
            #expect(result["isError"] != true, "\(result)")
        }
        _ = try await poll(timeout: .seconds(60), "twenty distinct replies answered (\(receiver.answeredDeliveries.count))") {
            receiver.answeredDeliveries.count >= 20 ? true : nil
        }
        let after = threadNames(of: pid)
        #expect(after.filter { $0.hasPrefix("callback") }.count == 4, "\(after.sorted())")
    }

    /// A permission prompt, which a person is waiting on, does not queue behind replies to a
    /// receiver that stalls: with all four `callback` threads held and two more replies
    /// waiting for one, the prompt still reaches the approver, before any held reply gives up
    /// (one that did would free a thread and a waiting reply would open a fifth connection).
    @Test func aPermissionPromptReachesTheApproverWhileRepliesToAStalledReceiverHoldEveryCallbackThread() async throws {
        let relay = try await PermissionRelayTests.startRelay()
        defer { relay.stop() }
        let receiver = try StallingReceiver()
        defer { receiver.stop() }
        let stalled = try await relay.channel.http.pairSource(name: "stalling", callbackURL: receiver.url())
        for index in 0..<6 {
            let arguments: JSON = ["source_id": .string(stalled.sourceID), "payload": ["n": .number(Double(index))]]
            relay.channel.mcp.send(["jsonrpc": "2.0", "id": relay.channel.mcp.makeID(), "method": "tools/call",
                                    "params": ["name": "webhook_reply", "arguments": arguments]])
        }
        _ = try await poll(timeout: .seconds(30), "four connections held (\(receiver.heldCount))") {
            receiver.heldCount >= 4 ? true : nil
        }

        let prompt = try await PermissionRelayTests.ask(relay, "pqrst")
        #expect(String(decoding: prompt.body, as: UTF8.self).contains(#""request_id":"pqrst""#))
        #expect(receiver.connectionCount == 4,
                "the prompt came after a held reply gave up: \(receiver.connectionCount) connections offered")
        receiver.answerAll()
    }

    /// With `WEBHOOK_EVENT_LOOP=poll` the process holds no epoll descriptor, and that stays so
    /// after a reply that had to wait for a retry and a permission prompt sent in the
    /// background: the wait is the timer thread's, the tasks run on the `mcp` executor, and
    /// nothing starts libdispatch (whose threads bring an epoll set and a timerfd).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/fdinfo")))
    func aRetriedReplyAndAPermissionPromptLeaveThePollBackendWithoutEpoll() async throws {
        let channel = try await TestChannel.start(
            environment: ["WEBHOOK_EVENT_LOOP": "poll", "WEBHOOK_RETRY_DELAYS": "0.2,0.2,0.2"], handshake: false)
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [500, 200])
        defer { receiver.stop() }
        let approver = try await channel.http.pairSource(name: "phone", callbackURL: receiver.url())
        let run = try await runCLI(["approver", approver.sourceID, "on"], stateDir: channel.stateDir)
        #expect(run.exitCode == 0, "\(run)")
        try await channel.mcp.handshake()

        let reply = try await channel.mcp.callTool(
            "webhook_reply", arguments: ["source_id": .string(approver.sourceID), "payload": ["n": 1]])
        #expect(ProviderFixtures.text(ofToolResult: try #require(reply["result"])).contains("retrying"), "\(reply)")
        _ = try await ReplyDeliveryTests.waitForDeliveryState("delivered", in: channel)
        channel.mcp.notify(PermissionRelayTests.requestMethod, params: PermissionRelayTests.requestParams("abcde"))
        _ = try await receiver.waitForDeliveries(3)

        let fds = EventLoopBackendTests.descriptors(of: channel.server.pid)
        #expect(!fds.values.contains("anon_inode:[eventpoll]"), "an epoll descriptor in poll mode: \(fds)")
        #expect(!fds.values.contains("anon_inode:[timerfd]"), "a timerfd: \(fds)")
        let threads = threadNames(of: channel.server.pid)
        #expect(threads.contains("timer"), "the retry waited on the process's timer thread: \(threads.sorted())")
        // libdispatch's workers are named after their queues (`com.apple.root.default-qos`…).
        #expect(!threads.contains { $0.contains("qos") }, "a libdispatch thread: \(threads.sorted())")
    }
}
