import Foundation
import Synchronization
import Testing
@testable import Platform
@testable import Socket
@testable import WebhookChannel

/// The event loop's busy polling (`WEBHOOK_BUSY_POLL_US`, README "Configuration"): after a
/// pass that found work it keeps looking without blocking for a window measured on its own
/// clock, then sleeps; an idle loop, or one with the window at 0, sleeps at once; polls that
/// keep finding nothing stop the polling until input comes soon again. Driven on a
/// `ManualClock`, so the window is the test's to end, not the wall clock's.
struct EventLoopBusyPollTests {
    /// Reads what arrives on a pipe and counts it.
    final class Reader: EventLoopHandler, @unchecked Sendable {
        let fd: Int32
        let reads = Atomic<Int>(0)
        init(fd: Int32) { self.fd = fd }
        func readable() {
            var buffer = [UInt8](repeating: 0, count: 64)
            if read(fd, &buffer, buffer.count) > 0 { reads.add(1, ordering: .relaxed) }
        }
        func writable() {}
        func tick(now: UInt64) {}
    }

    /// A loop with one pipe registered; returns once the loop has registered it.
    static func loopReadingAPipe(clock: ManualClock, busyPollNanoseconds: UInt64)
        async throws -> (EventLoop, Reader, write: Int32, read: Int32)
    {
        let ends = try EventLoopBackendTests.makePipe()
        let loop = try EventLoop(clock: clock, busyPollNanoseconds: busyPollNanoseconds)
        let reader = Reader(fd: ends.read)
        loop.start()
        try await EventLoopBackendTests.onLoop(loop) { try loop.register(fd: ends.read, handler: reader) }
        return (loop, reader, ends.write, ends.read)
    }

    static func send(_ fd: Int32) {
        var byte: UInt8 = 1
        _ = write(fd, &byte, 1)
    }

    @Test func afterAPassThatFoundInputTheLoopPollsWithoutBlockingUntilItsWindowHasPassedOnItsClock() async throws {
        let clock = ManualClock()
        let (loop, reader, writeEnd, readEnd) = try await Self.loopReadingAPipe(clock: clock, busyPollNanoseconds: 50_000)
        defer { loop.stop(); close(writeEnd); close(readEnd) }

        Self.send(writeEnd)
        _ = try await poll("the loop read the pipe") { reader.reads.load(ordering: .relaxed) == 1 ? true : nil }
        // The clock stands still: the window never ends, so the loop keeps polling.
        let start = loop.busyPolls.load(ordering: .relaxed)
        _ = try await poll("the loop kept polling without blocking") {
            loop.busyPolls.load(ordering: .relaxed) > start + 100 ? true : nil
        }
        // Input that arrives while it polls is read at once.
        Self.send(writeEnd)
        _ = try await poll("the loop read the second byte") { reader.reads.load(ordering: .relaxed) == 2 ? true : nil }

        // Past the window the loop sleeps: the count stops moving.
        clock.advance(byNanoseconds: 1_000_000)
        let asleep = try await Self.asleep(loop)
        try await Task.sleep(for: .milliseconds(200))
        #expect(loop.busyPolls.load(ordering: .relaxed) == asleep, "a loop with nothing to do went on polling")
    }

    /// Waits until the loop has stopped polling and gone to sleep: its poll count stands still.
    static func asleep(_ loop: EventLoop) async throws -> UInt64 {
        var stillFor = 0
        var last = loop.busyPolls.load(ordering: .relaxed)
        for _ in 0..<400 where stillFor < 2 {
            try await Task.sleep(for: .milliseconds(50))
            let now = loop.busyPolls.load(ordering: .relaxed)
            stillFor = now == last ? stillFor + 1 : 0
            last = now
        }
        try #require(stillFor == 2, "the loop never went to sleep past its window")
        return last
    }

    /// Sends a byte and waits for the loop to read it and then poll: returns the poll count
    /// once it has grown past what it was before the byte.
    static func sendAndSeePolling(_ loop: EventLoop, _ reader: Reader, _ writeEnd: Int32, reads: Int) async throws {
        let before = loop.busyPolls.load(ordering: .relaxed)
        send(writeEnd)
        _ = try await poll("the loop read byte \(reads)") { reader.reads.load(ordering: .relaxed) == reads ? true : nil }
        _ = try await poll("the loop polled after byte \(reads)") {
            loop.busyPolls.load(ordering: .relaxed) > before + 10 ? true : nil
        }
    }

    @Test func threePollsInARowThatFindNothingStopThePollingUntilASleepEndsSoonAfterItBegan() async throws {
        let clock = ManualClock()
        let (loop, reader, writeEnd, readEnd) = try await Self.loopReadingAPipe(clock: clock, busyPollNanoseconds: 50_000)
        defer { loop.stop(); close(writeEnd); close(readEnd) }

        // Three inputs far apart, each followed by a poll that runs out its window: polling
        // goes on after the first and the second (a poll or two in vain change nothing).
        for byte in 1...3 {
            try await Self.sendAndSeePolling(loop, reader, writeEnd, reads: byte)
            clock.advance(byNanoseconds: 1_000_000)
            _ = try await Self.asleep(loop)
            clock.advance(byNanoseconds: 10_000_000)
        }
        // After the third, input that ends a long sleep is read, and the loop sleeps again
        // without polling. (The clock moves once more here: should the loop have read it for
        // its sleep only after the move above, on a machine that held the thread back, the
        // sleep still measures long.)
        _ = try await Self.asleep(loop)
        clock.advance(byNanoseconds: 10_000_000)
        let beforeFourth = loop.busyPolls.load(ordering: .relaxed)
        Self.send(writeEnd)
        _ = try await poll("the loop read byte 4") { reader.reads.load(ordering: .relaxed) == 4 ? true : nil }
        try await Task.sleep(for: .milliseconds(200))
        #expect(loop.busyPolls.load(ordering: .relaxed) == beforeFourth, "the loop polled after input that came seldom")

        // Input that ends a sleep soon after it began (the clock has not moved): a
        // conversation again, and the loop polls after it.
        try await Self.sendAndSeePolling(loop, reader, writeEnd, reads: 5)
        clock.advance(byNanoseconds: 1_000_000)
    }

    @Test func withTheWindowAtZeroTheLoopNeverPollsWithoutBlocking() async throws {
        let clock = ManualClock()
        let (loop, reader, writeEnd, readEnd) = try await Self.loopReadingAPipe(clock: clock, busyPollNanoseconds: 0)
        defer { loop.stop(); close(writeEnd); close(readEnd) }
        for expected in 1...3 {
            Self.send(writeEnd)
            _ = try await poll("the loop read byte \(expected)") { reader.reads.load(ordering: .relaxed) == expected ? true : nil }
        }
        #expect(loop.busyPolls.load(ordering: .relaxed) == 0)
    }

    @Test func theServerBusyPollsFiftyMicrosecondsUnlessTheSettingSaysOtherwise() throws {
        let home = ["HOME": "/nonexistent"]
        #expect(try ServerConfig.fromEnvironment(home).busyPollMicroseconds == 50)
        #expect(try ServerConfig.fromEnvironment(home.merging(["WEBHOOK_BUSY_POLL_US": "0"]) { $1 }).busyPollMicroseconds == 0)
        #expect(try ServerConfig.fromEnvironment(home.merging(["WEBHOOK_BUSY_POLL_US": " 200 "]) { $1 }).busyPollMicroseconds == 200)
    }

    @Test(arguments: ["-1", "1001", "fast", "", "5.5"])
    func aBadBusyPollSettingIsRefusedNamingTheVariable(value: String) {
        do {
            _ = try ServerConfig.fromEnvironment(["HOME": "/nonexistent", "WEBHOOK_BUSY_POLL_US": value])
            Issue.record("WEBHOOK_BUSY_POLL_US=\(value) was accepted")
        } catch {
            #expect(error.description.contains("WEBHOOK_BUSY_POLL_US"), "\(error)")
            #expect(!error.description.contains("\n"), "one line: \(error)")
        }
    }
}
