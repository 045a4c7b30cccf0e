import Foundation
import Testing
import Synchronization
@testable import HTTP
@testable import Platform
@testable import Socket
@testable import WebhookChannel

/// An answer the server owes (here `/pair`, waiting for another process's lock on the state
/// dir) holds back the requests a client pipelines behind it: at most one request's worth is
/// read and kept; the rest waits in the kernel until the answer is out. Once it is out, what
/// was kept is answered in order, in work proportional to it.
@Suite struct PendingAnswerTests {
    /// The answer must stay pending until the test releases the lock, however long a loaded
    /// machine takes to get there: not the 5 s after which the server gives up (`state_busy`).
    static let waitsForTheLock = ["WEBHOOK_LOCK_WAIT": "3600"]

    @Test func bytesPipelinedBehindAPendingAnswerAreNotReadPastOneRequestsWorth() async throws {
        let channel = try await TestChannel.start(environment: Self.waitsForTheLock)
        defer { channel.stop() }
        let pid = channel.server.pid
        // Hold the state dir's lock as a CLI command in progress would: /pair's change waits.
        let lock = try HeldStateLock(channel.stateDir)
        defer { lock.release() }
        let baseline = try Durability.residentBytes(of: pid)

        let port = channel.server.port
        let socket = try await offloaded { try RawSocket.connectBlocking(port: port, timeout: .seconds(1)) }
        defer { socket.close() }
        let body = #"{"name":"held"}"#
        let pair = "POST /pair HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let junk = Data(String(repeating: "GET /health HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n", count: 20_000).utf8)
        let sentMiB = try await offloaded { () -> Int in
            guard socket.sendBlocking(Data(pair.utf8)) == nil else { return -1 }
            // About 1 MiB a round; a server that kept reading would take all 64.
            for round in 0..<64 where socket.sendBlocking(junk) != nil { return round }
            return 64
        }
        #expect(sentMiB >= 0 && sentMiB < 64, "the server kept reading \(sentMiB) MiB pipelined behind a pending answer")
        let grown = try Durability.residentBytes(of: pid) - baseline
        #expect(grown < 16 << 20, "resident memory grew \(grown >> 20) MiB while an answer was pending")

        lock.release()
        let answer = try await lock.expectAnswer(on: socket, from: channel)
        #expect(answer.status == 200, "\(answer)")
        // The server first answers the ~2 MiB of requests it kept (tens of thousands): a
        // generous guard, no bound on how fast.
        #expect(try await channel.http.request("GET", "/health", timeout: .seconds(60)).status == 200)
    }

    /// Answers that are already there when the route returns them (a status poll, a
    /// refusal) are written in the same pass. Behind a pending answer a connection holds up
    /// to ~2 MiB of such requests, tens of thousands; the server used to run its request loop
    /// once more, nested, for each of them, and a thousand or so overflowed the event loop's
    /// stack (SIGSEGV; no pending answer needed: one read holds that many).
    @Test func pollsPipelinedBehindAPendingAnswerAreAllAnsweredInOrder() async throws {
        let channel = try await TestChannel.start(environment: Self.waitsForTheLock)
        defer { channel.stop() }
        let lock = try HeldStateLock(channel.stateDir)
        defer { lock.release() }

        let port = channel.server.port
        let socket = try await RawSocket.connect(port: port)
        defer { socket.close() }
        let body = #"{"name":"held"}"#
        let pair = "POST /pair HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let polls = 5_000  // ~300 KB: under one request's worth, so the server may keep all of it
        try await socket.send(pair + String(
            repeating: "GET /pair/status?code=NO-SUCH-CODE HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n", count: polls))

        lock.release()
        let answer = try await lock.expectAnswer(on: socket, from: channel)
        #expect(answer.status == 200, "\(answer)")
        let statuses: [String: Int]
        do {
            statuses = try await offloaded { () -> [String: Int] in
                var seen: [String: Int] = [:]
                for _ in 0..<polls {
                    let poll = try socket.readResponseBlocking(timeout: .seconds(60))
                    seen["\(poll.status) \(poll.bodyText)", default: 0] += 1
                }
                return seen
            }
        } catch {
            throw HarnessError("\(error); \(await channel.serverState())")
        }
        #expect(statuses == [#"200 {"status":"unknown"}"#: polls], "\(statuses)")
        #expect(try await channel.http.get("/health").status == 200)
    }

    // MARK: One connection, driven by hand

    /// What was kept behind the pending answer is answered in order once it is out, and the
    /// work of taking the answered requests off the buffer stays proportional to the bytes.
    @Test func requestsAnsweredInOnePassAreCutOffTheBufferOnceNotOneByOne() throws {
        let first = Pending<HTTPResponse>()
        let pipe = try ConnectionUnderTest { request in
            request.target == "/0" ? .later(first) : .now(HTTPResponse(status: 200, body: Array(request.target.utf8)))
        }
        defer { pipe.close() }
        let count = 5_000
        let bytes = Array((0..<count).map { "GET /\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined().utf8)
        pipe.receive(bytes)
        #expect(try pipe.answers().isEmpty, "answered past a pending answer")

        first.fulfil(HTTPResponse(status: 200, body: Array("/0".utf8)))
        let answers = try pipe.answers()
        #expect(answers.count == count)
        #expect(answers.map(\.bodyText) == (0..<count).map { "/\($0)" }, "answers out of order")
        // Cutting each answered request off the front would move what is behind it, every
        // time: ~count²/2 requests' worth (380 MB here) instead of at most what arrived.
        #expect(pipe.http.bytesMoved <= bytes.count, "moved \(pipe.http.bytesMoved) bytes for \(bytes.count) received")
    }

    /// A client that pipelines requests and does not read its answers gets no more answered
    /// than about `maxUnsentAnswerBytes` past what its socket takes; the rest wait, unread,
    /// until it reads. (Every request it had pipelined used to be answered into memory: 60
    /// such clients took a server to 100 MiB.) Once it reads, it gets every answer, in order.
    @Test func aClientThatDoesNotReadIsNotAnsweredPastWhatItHasTaken() throws {
        let answered = Mutex(0)
        let pipe = try ConnectionUnderTest { request in
            answered.withLock { $0 += 1 }
            return .now(HTTPResponse(status: 200, body: Array(request.target.utf8) + [UInt8](repeating: 0x2E, count: 1000)))
        }
        defer { pipe.close() }
        var small: Int32 = 4096
        _ = setsockopt(pipe.tcp.fd, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(pipe.peer, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let count = 3_000  // about 3 MB of answers
        pipe.receive(Array((0..<count).map { "GET /\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined().utf8))
        while pipe.loop.hasWaitingTurns { pipe.loop.runWaitingTurns() }
        let unread = answered.withLock { $0 }
        #expect(unread < count / 4, "\(unread) of \(count) answered for a client that reads nothing")
        #expect(pipe.tcp.pendingOutputBytes <= HTTPServerConnection.maxUnsentAnswerBytes + 80 << 10,
                "\(pipe.tcp.pendingOutputBytes) bytes of answers held")

        let answers = try pipe.answers()
        #expect(answers.map(\.bodyText) == (0..<count).map { "/\($0)" + String(repeating: ".", count: 1000) }, "answers missing or out of order")
    }

    @Test func answersAlreadyThereDoNotNestTheRequestLoop() async throws {
        // On a thread with a deep stack, so that the nesting this test looks for shows as a
        // failure, not as a crash of the test process.
        let (answers, stackSpread) = try await onDeepStack { () throws -> ([String], Int) in
            var lowest = UInt.max
            var highest = UInt.min
            let pipe = try ConnectionUnderTest { request in
                var marker = 0
                let depth = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
                lowest = min(lowest, depth)
                highest = max(highest, depth)
                let ready = Pending<HTTPResponse>()
                ready.fulfil(HTTPResponse(status: 200, body: Array(request.target.utf8)))
                return .later(ready)
            }
            defer { pipe.close() }
            pipe.receive(Array((0..<4_000).map { "GET /\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined().utf8))
            return (try pipe.answers().map(\.bodyText), Int(highest - lowest))
        }
        #expect(answers == (0..<4_000).map { "/\($0)" }, "answers missing or out of order")
        #expect(stackSpread < 64 << 10, "the request loop nested once per answer already there: the stack grew by \(stackSpread) bytes over 4000 pipelined requests")
    }
}

/// One `HTTPServerConnection` on one end of a socket pair, driven by hand on the calling
/// thread as the event loop would drive it: `receive` hands it bytes as reads would, and
/// `answers` reads what it wrote from the other end. The loop is made but never started
/// (the connection reads its clock and tells it what to watch, which nothing waits on).
final class ConnectionUnderTest {
    let http: HTTPServerConnection
    let loop: EventLoop
    let tcp: TCPConnection
    let peer: Int32
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)

    init(respond: @escaping (HTTPRequest) -> HTTPReply) throws {
        loop = try EventLoop()
        var ends: [Int32] = [-1, -1]
        #if canImport(Glibc)
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let type = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, type, 0, &ends) == 0 else {
            scratch.deallocate()
            throw HarnessError("socketpair: \(String(cString: strerror(errno)))")
        }
        _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
        peer = ends[1]
        tcp = TCPConnection(fd: ends[0], peer: nil, loop: loop, scratch: scratch) { _ in }
        http = HTTPServerConnection(limits: .standard, clock: loop.clock, startedAt: loop.clock.monotonicNanoseconds()) { request, _ in
            respond(request)
        }
        tcp.delegate = http
    }

    /// Hands `bytes` to the connection in reads of at most 64 KiB.
    func receive(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { all in
            for start in stride(from: 0, to: all.count, by: scratch.count) {
                http.connection(tcp, didReceive: UnsafeRawBufferPointer(rebasing: all[start..<min(start + scratch.count, all.count)]))
            }
        }
    }

    /// Every answer written so far, in order (output the socket could not take yet is sent
    /// as the loop would once it is writable, and requests left for the loop's next pass are
    /// answered as it would answer them).
    func answers() throws -> [WireResponse] {
        var received = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(peer, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                received.append(contentsOf: chunk[0..<count])
            } else if tcp.hasPendingOutput {
                tcp.writable()
            } else if loop.hasWaitingTurns {
                loop.runWaitingTurns()
            } else {
                break
            }
        }
        var answers: [WireResponse] = []
        var offset = received.startIndex
        while offset < received.endIndex {
            guard let (answer, length) = try WireResponse.parse(received[offset...]) else {
                throw HarnessError("an incomplete answer after \(answers.count): \(String(decoding: received[offset...].prefix(200), as: UTF8.self))")
            }
            answers.append(answer)
            offset += length
        }
        return answers
    }

    func close() {
        tcp.closeNow()
        Foundation.close(peer)
        scratch.deallocate()
    }
}

/// Runs `work` on a thread of its own with a 64 MiB stack.
func onDeepStack<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DetachedThread.start(name: "deep-stack", stackSize: 64 << 20) {
            continuation.resume(with: Result { try work() })
        }
    }
}
