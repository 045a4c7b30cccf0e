import Foundation
import Testing
@testable import HTTP
@testable import Platform
@testable import Socket

/// A connection's tick reads input that waited unread (a stopped process), and that read
/// stamps the connection's activity with a time later than the `now` the tick was given. The
/// timeout checks that follow must take that as "no time has passed", not subtract a larger
/// unsigned number from a smaller one: that trapped and killed the server (SIGILL) under
/// ordinary keep-alive traffic. Driven by hand on the loop thread with a `ManualClock`, so the
/// order of the stamps is fixed, not a matter of timing.
@Suite struct HTTPTickStampTests {
    @Test func aTickWhoseNowPrecedesTheConnectionsLastStampNeitherTrapsNorTimesOut() async throws {
        let clock = ManualClock()
        let harness = try LoopHarness(clock: clock)
        defer { harness.stop() }
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[1]) }
        let server = fds[0]
        let timeouts = HTTPServer.Timeouts(headNanoseconds: 1_000_000_000, requestNanoseconds: 2_000_000_000,
                                           idleNanoseconds: 3_000_000_000)

        let outcome = await harness.run { () -> [String] in
            var seen: [String] = []
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
            defer { scratch.deallocate() }
            let tcp = TCPConnection(fd: server, peer: nil, loop: harness.loop, scratch: scratch, onClose: { _ in })
            let start = clock.monotonicNanoseconds()
            // A request begun after the tick's `now` (the whole-request check).
            let http = HTTPServerConnection(limits: HTTPLimits(), timeouts: timeouts, clock: clock,
                                            startedAt: start + 5_000) { _, _ in .now(HTTPResponse(status: 200, body: [])) }
            tcp.delegate = http
            http.connectionTick(tcp, now: start)
            seen.append("head check: closed=\(tcp.isClosed)")

            // A request answered at once, then a tick whose `now` is before that activity (the
            // idle check).
            clock.advance(byNanoseconds: 10_000)
            let request = Array("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
            request.withUnsafeBytes { http.connection(tcp, didReceive: $0) }
            let answeredAt = clock.monotonicNanoseconds()
            http.connectionTick(tcp, now: answeredAt - 1)
            seen.append("idle check: closed=\(tcp.isClosed)")

            // The checks still work: past the idle timeout the connection is closed.
            http.connectionTick(tcp, now: answeredAt + timeouts.idleNanoseconds + 1)
            seen.append("after idle timeout: closed=\(tcp.isClosed)")
            return seen
        }
        #expect(outcome == ["head check: closed=false", "idle check: closed=false", "after idle timeout: closed=true"])
        // The one request was answered 200 and nothing else was written (no 408).
        var reply = [UInt8](repeating: 0, count: 4096)
        let count = recv(fds[1], &reply, reply.count, Int32(MSG_DONTWAIT))
        let text = String(decoding: reply.prefix(max(count, 0)), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
        #expect(!text.contains("408"), "\(text)")
    }

    /// The same from outside: two keep-alive clients asking `/health` as fast as they can for
    /// three seconds (the old binary died of it within 0.3 to 5 s) leave the server running.
    @Test func keepAliveClientsAskingHealthNonStopLeaveTheServerRunning() async throws {
        let server = try await ServerProcess.start()
        defer { server.stop() }
        let port = server.port
        let request = Data("GET /health HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n".utf8)
        let until = ContinuousClock.now.advanced(by: .seconds(3))
        let answered = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    let connection = try await HTTPConnection.open(port: port, sending: request)
                    defer { connection.close() }
                    var count = 0
                    while ContinuousClock.now < until, count < 200_000 {
                        if count > 0 { try await connection.send(request) }
                        guard try await connection.readResponse().status == 200 else { break }
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(answered > 0)
        #expect(server.child.exitInstant == nil, "the server exited; stderr:\n\(server.stderr.tail())")
        #expect(try await RawHTTPClient(port: port).get("/health").status == 200)
    }

    /// A request a tick reads (it arrived during the pass, after the wait) is answered by that
    /// same pass's end-of-pass actions, where the product commits webhooks. When the ticks ran
    /// after those actions, its answer waited for the next wait to end: with every client
    /// waiting for an answer that was a whole tick (250 ms), and keep-alive throughput fell
    /// to a third. The pass is the loop's `round`, so this is an order, not a timing.
    @Test func aRequestReadByATickIsAnsweredByTheSamePassesEndOfPassActions() async throws {
        let clock = ManualClock()
        let harness = try LoopHarness(clock: clock)
        defer { harness.stop() }
        let loop = harness.loop
        final class Answers: @unchecked Sendable {
            var held: [(Pending<HTTPResponse>, UInt64)] = []
            var rounds: [(seen: UInt64, answered: UInt64)] = []
        }
        let answers = LoopConfined(Answers())
        loop.addEndOfPassAction {
            let held = answers.value.held
            answers.value.held = []
            for (pending, seen) in held {
                answers.value.rounds.append((seen, loop.round))
                pending.fulfil(HTTPResponse(status: 200, body: Array("ok".utf8)))
            }
        }
        let server = try await loop.startTestServer { _, _ in
            let pending = Pending<HTTPResponse>()
            answers.value.held.append((pending, loop.round))
            return .later(pending)
        }
        defer { loop.execute { server.stop() } }
        let request = Data("GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        let connection = try await HTTPConnection.open(port: Int(server.address.port), sending: request)
        defer { connection.close() }
        #expect(try await connection.readResponse().status == 200)

        // Hold the loop inside a pass (after its wait), send the next request meanwhile and
        // move the clock past a tick: that pass's tick finds the request unread and reads it.
        let release = ConditionSignal()
        let holding = ConditionSignal()
        loop.execute {
            holding.signal()
            release.wait(timeoutMilliseconds: 60_000)
        }
        holding.wait(timeoutMilliseconds: 60_000)
        try await connection.send(request)
        try await Task.sleep(for: .milliseconds(50))  // into the kernel; the loop is held either way
        clock.advance(bySeconds: 0.3)
        release.signal()
        #expect(try await connection.readResponse().status == 200)

        let rounds = await harness.run { answers.value.rounds }
        #expect(rounds.count == 2)
        if let last = rounds.last {
            #expect(last.seen == last.answered, "read in round \(last.seen), answered in round \(last.answered)")
        }
    }
}
