import Foundation
import Synchronization
import Testing
@testable import Platform
@testable import Socket
@testable import WebhookChannel

/// A callback's name lookup runs under the POST's one deadline: a resolver that never answers
/// fails the attempt (retryable) when the deadline passes on the injected clock, instead of
/// holding a callback thread for as long as glibc's resolver waits. The lookup is a fake that
/// blocks until the test lets it go, so nothing here depends on the machine's DNS or speed.
@Suite struct DeadlineResolverTests {
    /// A lookup that blocks until `release()` (at most a minute, so a failing test cannot hang)
    /// and counts its calls; it answers 127.0.0.1.
    final class HangingLookup: Sendable {
        private let released = Atomic<Bool>(false)
        let calls = Atomic<Int>(0)
        let finished = Atomic<Int>(0)

        func release() { released.store(true, ordering: .releasing) }

        var lookup: @Sendable (String, UInt16) -> [SocketAddress] {
            { [self] _, port in
                calls.wrappingAdd(1, ordering: .relaxed)
                for _ in 0..<60_000 where !released.load(ordering: .acquiring) { usleep(1000) }
                finished.wrappingAdd(1, ordering: .relaxed)
                return SocketAddress.resolveAll(host: "127.0.0.1", port: port)
            }
        }
    }

    /// Runs `work` on a thread of its own (it blocks) and returns its result.
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DetachedThread.start(name: "test-resolve") { continuation.resume(returning: work()) }
        }
    }

    @Test func aLookupThatNeverAnswersFailsTheAttemptWhenTheDeadlinePassesOnTheClock() async throws {
        let clock = ManualClock()
        let hanging = HangingLookup()
        defer { hanging.release() }
        let lookup = hanging.lookup
        let returned = Atomic<Bool>(false)
        async let outcome = Self.onThread {
            defer { returned.store(true, ordering: .releasing) }
            return CallbackClient.postBlocking(url: "https://approver.example/verdict", headers: [], body: [],
                                               policy: CallbackURLPolicy(), timeout: 10, clock: clock, lookup: lookup)
        }
        try await waitUntil { hanging.calls.load(ordering: .relaxed) == 1 }
        // 9.9 s on the clock is not yet the deadline.
        clock.advance(bySeconds: 9.9)
        try await Task.sleep(for: .milliseconds(200))
        let gaveUpEarly = returned.load(ordering: .acquiring)
        #expect(!gaveUpEarly, "gave up before the deadline")
        clock.advance(bySeconds: 0.2)

        let result = await outcome
        #expect(result == .failure(CallbackClient.Failure(reason: "timed out looking up approver.example", retryable: true)))
        #expect(hanging.finished.load(ordering: .relaxed) == 0, "the attempt waited for the lookup, not for its deadline")
    }

    @Test func aLookupThatAnswersInTimeIsUsed() async throws {
        let clock = ManualClock()
        let hanging = HangingLookup()
        let lookup = hanging.lookup
        let deadline = Deadline(clock: clock, seconds: 10)
        async let outcome = Self.onThread {
            DeadlineResolver.resolveAll(host: "receiver.example", port: 8443,
                                        remainingMilliseconds: { deadline.remainingMilliseconds }, lookup: lookup,
                                        inFlight: DeadlineResolver.InFlight(limit: 1))
        }
        try await waitUntil { hanging.calls.load(ordering: .relaxed) == 1 }
        hanging.release()
        let result = await outcome
        #expect((try? result.get().map(\.description)) == ["127.0.0.1:8443"], "\(result)")
    }

    @Test func anAddressLiteralIsAnsweredOnTheCallersThreadWhateverTheDeadline() {
        let none = DeadlineResolver.InFlight(limit: 0)
        // No time left and no thread allowed: a literal is answered anyway.
        for host in ["127.0.0.1", "[::1]"] {
            let result = DeadlineResolver.resolveAll(host: host, port: 80, remainingMilliseconds: { nil }, inFlight: none)
            #expect((try? result.get().count) == 1, "\(host): \(result)")
        }
        // A name is not.
        #expect(Self.failure(DeadlineResolver.resolveAll(host: "name.example", port: 80, remainingMilliseconds: { 10_000 },
                                                         lookup: { _, _ in [] }, inFlight: none)) == .busy)
    }

    @Test func pastTheInFlightLimitANewLookupFailsAtOnceAndStartsNoThread() async throws {
        let inFlight = DeadlineResolver.InFlight(limit: 3)
        let hanging = HangingLookup()
        defer { hanging.release() }
        let lookup = hanging.lookup
        // Each caller gives up at its first look at the deadline; the lookups stay, blocked.
        for _ in 0..<inFlight.limit {
            var asked = false
            let result = DeadlineResolver.resolveAll(host: "slow.example", port: 80, remainingMilliseconds: {
                defer { asked = true }
                return asked ? nil : 1
            }, lookup: lookup, inFlight: inFlight)
            #expect(Self.failure(result) == .timedOut)
        }
        #expect(inFlight.running == 3)
        let refused = DeadlineResolver.resolveAll(host: "slow.example", port: 80, remainingMilliseconds: { 10_000 },
                                                  lookup: lookup, inFlight: inFlight)
        #expect(Self.failure(refused) == .busy)
        try await waitUntil { hanging.calls.load(ordering: .relaxed) == 3 }
        #expect(hanging.calls.load(ordering: .relaxed) == 3, "a refused lookup started a thread")

        // Once they finish, lookups start again.
        hanging.release()
        try await waitUntil { inFlight.running == 0 }
        let again = DeadlineResolver.resolveAll(host: "slow.example", port: 80, remainingMilliseconds: { 60_000 },
                                                lookup: lookup, inFlight: inFlight)
        #expect((try? again.get().count) == 1, "\(again)")
    }

    static func failure(_ result: Result<[SocketAddress], DeadlineResolver.Failure>) -> DeadlineResolver.Failure? {
        if case .failure(let failure) = result { return failure }
        return nil
    }

    func waitUntil(_ condition: @escaping () -> Bool) async throws {
        for _ in 0..<3000 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw HarnessError("timed out waiting")
    }
}
