import Testing
@testable import Platform

/// `ManualClock`, the clock the timing tests move by hand: a sleeper wakes only when the
/// clock is advanced past its deadline, and, as with `SystemClock`, at once when its task is
/// cancelled (a retry loop that is cancelled must not wait for a test to move time).
@Suite struct ManualClockTests {
    @Test(.timeLimit(.minutes(1)))
    func aSleeperWakesWhenTheClockPassesItsDeadlineAndNotBefore() async throws {
        let clock = ManualClock()
        let sleeper = Task { await clock.sleep(nanoseconds: 5_000_000_000) }
        _ = try await poll("the task to sleep on the clock") { clock.pendingSleeps.count == 1 ? true : nil }
        clock.advance(bySeconds: 4.999)
        #expect(clock.pendingSleeps == [1_000_000])
        clock.advance(bySeconds: 0.001)
        await sleeper.value
        #expect(clock.pendingSleeps.isEmpty)
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingASleepingTaskEndsItsSleepWithoutMovingTheClock() async throws {
        let clock = ManualClock()
        let sleeper = Task { await clock.sleep(nanoseconds: 3600 * 1_000_000_000) }
        _ = try await poll("the task to sleep on the clock") { clock.pendingSleeps.count == 1 ? true : nil }
        sleeper.cancel()
        await sleeper.value
        #expect(clock.pendingSleeps.isEmpty)
    }

    @Test(.timeLimit(.minutes(1)))
    func aTaskCancelledBeforeItSleepsDoesNotWait() async {
        let clock = ManualClock()
        let sleeper = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await clock.sleep(nanoseconds: 3600 * 1_000_000_000)
        }
        await sleeper.value
        #expect(clock.pendingSleeps.isEmpty)
    }
}
