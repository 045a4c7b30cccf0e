import Foundation
import Testing
@testable import Platform
@testable import WebhookChannel

/// When `ReplySender` retries, on a `ManualClock`: each retry waits exactly its delay (1 s,
/// 5 s, 30 s, or the receiver's `Retry-After` capped at 120 s) and no attempt is made before
/// the clock passes it. The attempts are real HTTP to a local receiver; only the waits are
/// driven by hand, so these run in milliseconds and bound no wall-clock time.
@Suite struct ReplyRetryTimingTests {
    static let second: UInt64 = 1_000_000_000

    static func sender(_ clock: ManualClock) -> ReplySender {
        ReplySender(policy: CallbackURLPolicy(allowPrivate: true), clock: clock, log: Logger(enabled: false))
    }

    static func source(_ receiver: CallbackReceiver) -> SourceRecord {
        SourceRecord(id: "src_timing", name: "timing", hmacSecret: "whsec_timing", callbackURL: receiver.url(),
                     pairedAt: "2026-01-01T00:00:00Z")
    }

    /// Waits (in real time, only as long as the sender's thread needs) until the retry loop
    /// sleeps on the clock, and returns what it waits for.
    static func nextWait(_ clock: ManualClock) async throws -> [UInt64] {
        try await poll("the retry loop to wait on the clock") {
            let pending = clock.pendingSleeps
            return pending.isEmpty ? nil : pending
        }
    }

    @Test func eachRetryWaitsItsDelayAndNotLonger() async throws {
        let clock = ManualClock()
        let receiver = try CallbackReceiver(statuses: [500, 500, 200])
        defer { receiver.stop() }
        let sender = Self.sender(clock)

        let result = await sender.send(source: Self.source(receiver), payload: ["n": 1], eventID: nil)
        #expect(result.text.contains("retrying in 1 s"), "\(result.text)")
        #expect(receiver.deliveries.count == 1)

        #expect(try await Self.nextWait(clock) == [Self.second], "the first retry waits 1 s")
        clock.advance(byNanoseconds: Self.second - 1)
        #expect(clock.pendingSleeps == [1], "still waiting 1 ns before the second attempt")
        #expect(receiver.deliveries.count == 1, "no attempt before the delay has passed")
        clock.advance(byNanoseconds: 1)
        _ = try await receiver.waitForDeliveries(2)

        #expect(try await Self.nextWait(clock) == [5 * Self.second], "the second retry waits 5 s")
        #expect(receiver.deliveries.count == 2)
        clock.advance(bySeconds: 5)
        _ = try await receiver.waitForDeliveries(3)

        let record = try await poll("the delivery to be recorded as delivered") {
            sender.recentRecords(limit: 1).first.flatMap { $0.state == .delivered ? $0 : nil }
        }
        #expect(record.attempts.count == 3, "\(record.attempts)")
        #expect(clock.pendingSleeps.isEmpty, "nothing waits after a 200")
        #expect(receiver.deliveries.count == 3)
    }

    @Test func aReceiverThatKeepsFailingIsTriedAfter1And5And30SecondsThenMarkedFailed() async throws {
        let clock = ManualClock()
        let receiver = try CallbackReceiver(statuses: [503])
        defer { receiver.stop() }
        let sender = Self.sender(clock)

        _ = await sender.send(source: Self.source(receiver), payload: ["n": 2], eventID: nil)
        for (index, delay) in ReplySender.retryDelays.enumerated() {
            #expect(try await Self.nextWait(clock) == [UInt64(delay) * Self.second], "retry \(index + 1) waits \(delay) s")
            #expect(receiver.deliveries.count == index + 1)
            clock.advance(bySeconds: delay)
            _ = try await receiver.waitForDeliveries(index + 2)
        }
        let record = try await poll("the delivery to be recorded as failed") {
            sender.recentRecords(limit: 1).first.flatMap { $0.state == .failed ? $0 : nil }
        }
        #expect(record.attempts.count == 4, "\(record.attempts)")
        #expect(clock.pendingSleeps.isEmpty)
    }

    @Test func retryAfterIsHonouredInsteadOfTheDelay() async throws {
        let clock = ManualClock()
        let receiver = try CallbackReceiver([.init(status: 429, headers: [("Retry-After", "7")]), .init(status: 200)])
        defer { receiver.stop() }
        let sender = Self.sender(clock)

        let result = await sender.send(source: Self.source(receiver), payload: ["n": 3], eventID: nil)
        #expect(result.text.contains("retrying in 7 s"), "\(result.text)")
        #expect(try await Self.nextWait(clock) == [7 * Self.second])
        clock.advance(bySeconds: 6.9)
        #expect(receiver.deliveries.count == 1, "no attempt before Retry-After has passed")
        clock.advance(bySeconds: 0.1)
        _ = try await receiver.waitForDeliveries(2)
        _ = try await poll("the delivery to be recorded as delivered") {
            sender.recentRecords(limit: 1).first.flatMap { $0.state == .delivered ? $0 : nil }
        }
    }

    /// An HTTP-date counts from the clock's wall time (1_700_000_000 on a fresh ManualClock);
    /// a value that is neither a date nor digits leaves the schedule (1 s first) in charge.
    @Test(arguments: [("Tue, 14 Nov 2023 22:13:28 GMT", 8), ("-5", 1), ("3.5", 1)])
    func retryAfterAsAnHTTPDateIsHonouredAndAnUnreadableOneIsIgnored(value: String, seconds: Int) async throws {
        let clock = ManualClock()
        let receiver = try CallbackReceiver([.init(status: 503, headers: [("Retry-After", value)]), .init(status: 200)])
        defer { receiver.stop() }
        let sender = Self.sender(clock)

        let result = await sender.send(source: Self.source(receiver), payload: ["n": 5], eventID: nil)
        #expect(result.text.contains("retrying in \(seconds) s"), "Retry-After: \(value): \(result.text)")
        #expect(try await Self.nextWait(clock) == [UInt64(seconds) * Self.second])
        clock.advance(bySeconds: Double(seconds))
        _ = try await receiver.waitForDeliveries(2)
    }

    @Test func aLongRetryAfterIsCappedAt120Seconds() async throws {
        let clock = ManualClock()
        let receiver = try CallbackReceiver([.init(status: 503, headers: [("Retry-After", "100000")]), .init(status: 200)])
        defer { receiver.stop() }
        let sender = Self.sender(clock)

        let result = await sender.send(source: Self.source(receiver), payload: ["n": 4], eventID: nil)
        #expect(result.text.contains("retrying in 120 s"), "\(result.text)")
        #expect(try await Self.nextWait(clock) == [UInt64(ReplySender.maxRetryAfter) * Self.second])
        clock.advance(bySeconds: ReplySender.maxRetryAfter)
        _ = try await receiver.waitForDeliveries(2)
    }
}
