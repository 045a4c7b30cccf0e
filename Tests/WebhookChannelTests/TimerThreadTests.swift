import Foundation
import Synchronization
import Testing
@testable import Platform

/// `TimerThread` (Platform), behind `SystemClock.sleep`: one thread that runs what is due in
/// deadline order, never before its deadline, and wakes early for a new earliest deadline.
/// Each test has a timer of its own. Only lower bounds on time are checked; how late a wake
/// may come is the machine's business.
@Suite struct TimerThreadTests {
    static let millisecond: UInt64 = 1_000_000

    /// What the timer ran, in order, with the monotonic reading when it ran.
    final class Journal: Sendable {
        private let entries = Mutex<[(label: String, at: UInt64)]>([])
        func append(_ label: String) {
            let now = SystemClock().monotonicNanoseconds()
            entries.withLock { $0.append((label, now)) }
        }
        var labels: [String] { entries.withLock { $0.map(\.label) } }
        func time(of label: String) -> UInt64? { entries.withLock { $0.first { $0.label == label }?.at } }
    }

    static func now() -> UInt64 { SystemClock().monotonicNanoseconds() }

    @Test func dueActionsRunInDeadlineOrderEqualDeadlinesInTheOrderGiven() async throws {
        let timer = TimerThread(name: "tt-order")
        let journal = Journal()
        // The timer thread is held inside a first action while the others are added, so all
        // are due together when it is let go, whatever the machine's load.
        let hold = DispatchSemaphore(value: 0)
        let base = Self.now()
        timer.schedule(at: base) {
            journal.append("hold")
            hold.wait()
        }
        _ = try await poll("the timer thread to be held") { journal.labels == ["hold"] ? true : nil }
        timer.schedule(at: base + 3) { journal.append("c") }
        timer.schedule(at: base + 1) { journal.append("a1") }
        timer.schedule(at: base + 2) { journal.append("b") }
        timer.schedule(at: base + 1) { journal.append("a2") }
        hold.signal()

        let labels = try await poll("all four to run") { journal.labels.count == 5 ? journal.labels : nil }
        #expect(labels == ["hold", "a1", "a2", "b", "c"])
        #expect(timer.pendingCount == 0)
    }

    @Test func anActionNeverRunsBeforeItsDeadline() async throws {
        let timer = TimerThread(name: "tt-deadline")
        let journal = Journal()
        let start = Self.now()
        let deadlines = [40, 5, 25].map { start + UInt64($0) * Self.millisecond }
        for (index, deadline) in deadlines.enumerated() {
            timer.schedule(at: deadline) { journal.append("\(index)") }
        }
        // (Their order is the test above's: here a stalled test thread could add the 5 ms
        // one after the 40 ms one had come due.)
        _ = try await poll("all three to run") { journal.labels.count == 3 ? true : nil }
        for (index, deadline) in deadlines.enumerated() {
            let ranAt = try #require(journal.time(of: "\(index)"))
            #expect(ranAt >= deadline, "action \(index) ran \(deadline - ranAt) ns before its deadline")
        }
    }

    @Test func aNewEarlierDeadlineIsNotKeptWaitingBehindALaterOne() async throws {
        let timer = TimerThread(name: "tt-earlier")
        let journal = Journal()
        let later = timer.schedule(at: Self.now() + 3600 * 1000 * Self.millisecond) { journal.append("in an hour") }
        let soon = Self.now() + 20 * Self.millisecond
        timer.schedule(at: soon) { journal.append("soon") }

        _ = try await poll(timeout: .seconds(60), "the earlier action to run") { journal.labels == ["soon"] ? true : nil }
        #expect(try #require(journal.time(of: "soon")) >= soon)
        #expect(timer.pendingCount == 1, "the hour-long one still waits")
        timer.runEarly(later)
        #expect(journal.labels == ["soon", "in an hour"])
        #expect(timer.pendingCount == 0)
    }

    @Test func systemClockSleepWaitsAtLeastItsDelay() async {
        let clock = SystemClock()
        let start = clock.monotonicNanoseconds()
        await clock.sleep(nanoseconds: 30 * Self.millisecond)
        let slept = clock.monotonicNanoseconds() - start
        #expect(slept >= 30 * Self.millisecond, "slept \(slept) ns")
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingASleepingTaskEndsItsSleep() async throws {
        let timer = TimerThread(name: "tt-cancel")
        let sleeper = Task { await timer.sleep(nanoseconds: 3600 * 1000 * Self.millisecond) }
        _ = try await poll("the task to sleep on the timer") { timer.pendingCount == 1 ? true : nil }
        sleeper.cancel()
        await sleeper.value
        #expect(timer.pendingCount == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func aTaskCancelledBeforeItSleepsDoesNotWait() async {
        let timer = TimerThread(name: "tt-precancel")
        let sleeper = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await timer.sleep(nanoseconds: 3600 * 1000 * Self.millisecond)
        }
        await sleeper.value
        #expect(timer.pendingCount == 0)
    }
}
