import Foundation
import Synchronization
import Testing
@testable import HTTP
@testable import Platform
@testable import Socket

/// The HTTP server's timeouts on a `ManualClock`: a head that does not complete is answered
/// `408` once the clock passes the header timeout and not before, a silent keep-alive
/// connection is closed once it passes the idle timeout, and activity restarts the idle
/// clock. The server runs in-process on its own event loop; the clock moves by hand, so no
/// assertion depends on how fast the machine is.
@Suite struct HTTPTimeoutClockTests {
    /// A server whose loop reads `clock`, with a probe that counts the loop's timeout ticks.
    final class Harness: @unchecked Sendable {
        let clock = ManualClock()
        let loop: EventLoop
        let port: Int
        private let probe: TickProbe
        private var server: HTTPServer?

        init(timeouts: HTTPServer.Timeouts) async throws {
            loop = try EventLoop(clock: clock)
            probe = try TickProbe()
            loop.start()
            let (loop, probe) = (self.loop, self.probe)
            let server = try await loop.startTestServer(timeouts: timeouts, alsoOnLoop: { () throws(SocketError) in
                try loop.register(fd: probe.fd, handler: probe)
            }) { _, _ in .now(HTTPResponse(status: 200, body: Array("ok".utf8))) }
            self.server = server
            self.port = Int(server.address.port)
        }

        /// Moves the clock and returns once the loop has run its timeout checks at the new time
        /// (and finished that pass).
        func advance(bySeconds seconds: Double) async throws {
            let before = probe.ticks
            clock.advance(bySeconds: seconds)
            _ = try await poll("the event loop to tick") { self.probe.ticks > before ? true : nil }
            await settle()
        }

        /// Returns after a full pass of the loop: what was already in the kernel (a connection
        /// to accept, bytes to read) has been handled, at the clock's current time.
        func settle() async {
            await withCheckedContinuation { continuation in loop.execute { continuation.resume() } }
        }

        /// Returns once the server has accepted `count` connections: a connection's timeouts
        /// count from its accept, which the kernel may hand the loop a moment after `connect`.
        /// Bounded by real time (generously), not by a number of tries whose length depends
        /// on the machine's load.
        func waitForConnections(_ count: Int) async throws {
            let server = self.server!
            let deadline = ContinuousClock.now.advanced(by: defaultTimeout)
            while ContinuousClock.now < deadline {
                let open = await withCheckedContinuation { continuation in
                    loop.execute { continuation.resume(returning: server.connectionCount) }
                }
                if open >= count { return }
                try await Task.sleep(for: .milliseconds(5))
            }
            throw HarnessError("the server never accepted \(count) connection(s)")
        }

        func stop() {
            let server = self.server
            loop.execute { server?.stop() }
            loop.stop()
        }
    }

    /// Registered on a pipe that never becomes readable, only to count ticks.
    final class TickProbe: EventLoopHandler, @unchecked Sendable {
        let fd: Int32
        private let writeEnd: Int32
        private let count = Atomic<Int>(0)
        var ticks: Int { count.load(ordering: .acquiring) }

        init() throws {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw HarnessError("pipe: \(errno)") }
            fd = fds[0]
            writeEnd = fds[1]
        }

        deinit { close(writeEnd) }
        func readable() {}
        func writable() {}
        func tick(now: UInt64) { count.add(1, ordering: .releasing) }
    }

    static let oneSecond: UInt64 = 1_000_000_000

    @Test func anIncompleteHeadIsAnswered408WhenTheClockPassesTheHeaderTimeout() async throws {
        let harness = try await Harness(timeouts: .init(headNanoseconds: Self.oneSecond))
        defer { harness.stop() }
        let slow = try await RawSocket.connect(port: harness.port)
        defer { slow.close() }
        try await harness.waitForConnections(1)
        try await slow.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: sss")

        try await harness.advance(bySeconds: 0.75)
        #expect(slow.unread.isEmpty, "answered before the header timeout: \(String(decoding: slow.unread, as: UTF8.self))")
        #expect(await slow.waitForEnd(timeout: .milliseconds(20)) == nil, "closed before the header timeout")

        // More of the head does not restart the header timeout.
        try await slow.send("ssss")
        try await harness.advance(bySeconds: 0.5)
        let response = try await slow.readResponse()
        #expect(response.status == 408, "\(response)")
        #expect(response.header("Connection")?.lowercased() == "close", "\(response)")
    }

    @Test func aSilentKeepAliveConnectionIsClosedWhenTheClockPassesTheIdleTimeout() async throws {
        let harness = try await Harness(timeouts: .init(idleNanoseconds: 2 * Self.oneSecond))
        defer { harness.stop() }
        let idle = try await RawSocket.connect(port: harness.port)
        defer { idle.close() }
        try await idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await idle.readResponse().status == 200)

        // Used again within the timeout: the idle clock starts over.
        try await harness.advance(bySeconds: 1.5)
        try await idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try await idle.readResponse().status == 200, "closed while in use")
        await harness.settle()
        try await harness.advance(bySeconds: 1.5)
        #expect(await idle.waitForEnd(timeout: .milliseconds(20)) == nil, "closed 1.5 s after its last request (idle timeout 2 s)")

        try await harness.advance(bySeconds: 1)
        #expect(await idle.waitForEnd(timeout: defaultTimeout) == .closed, "still open 2.5 s after its last request")
        #expect(idle.unread.isEmpty, "bytes on an idle close: \(String(decoding: idle.unread, as: UTF8.self))")
    }
}
