#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization

/// The one source of time: monotonic nanoseconds for timeouts and intervals, wall seconds
/// since 1970 for timestamps and expiry, and sleeping for retries. Injected wherever time
/// decides behaviour, so tests drive it with a `ManualClock` instead of sleeping.
public protocol Clock: Sendable {
    /// Nanoseconds on a clock that never goes back (CLOCK_MONOTONIC on the system clock).
    func monotonicNanoseconds() -> UInt64
    /// Seconds since 1970 (CLOCK_REALTIME on the system clock).
    func now() -> Double
    /// Returns once `nanoseconds` have passed on this clock (or the task is cancelled).
    func sleep(nanoseconds: UInt64) async
}

/// Nanoseconds from `start` to `now` on the monotonic clock, or zero when `start` is later:
/// a time stamped during a pass (input read in a tick, say) can be ahead of the `now` that
/// pass began with, and an unsigned difference must not trap.
@inlinable
public func nanoseconds(from start: UInt64, to now: UInt64) -> UInt64 {
    now > start ? now - start : 0
}

public struct SystemClock: Clock {
    public init() {}

    public func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// On the process's own timer thread (`TimerThread.shared`), not `Task.sleep`: on Linux
    /// that would bring libdispatch's timer machinery into a process that otherwise runs only
    /// on threads it started.
    public func sleep(nanoseconds: UInt64) async {
        await TimerThread.shared.sleep(nanoseconds: nanoseconds)
    }
}

/// A clock that moves only when told to: `advance(by:)` moves both readings and wakes every
/// sleeper whose deadline it passes. Tests use it to check what happens after a delay without
/// waiting for the delay.
public final class ManualClock: Clock {
    private struct Sleeper {
        let id: UInt64
        let deadline: UInt64
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var monotonic: UInt64
        var wall: Double
        var sleepers: [Sleeper] = []
        var lastID: UInt64 = 0
    }

    private let state: Mutex<State>

    /// Starts at `wall` seconds since 1970 and an arbitrary non-zero monotonic reading.
    public init(wall: Double = 1_700_000_000, monotonic: UInt64 = 1_000_000_000) {
        state = Mutex(State(monotonic: monotonic, wall: wall))
    }

    public func monotonicNanoseconds() -> UInt64 { state.withLock { $0.monotonic } }

    public func now() -> Double { state.withLock { $0.wall } }

    /// Returns once the clock has been advanced past the deadline, or at once when the task
    /// is (or becomes) cancelled, as `SystemClock.sleep` does.
    public func sleep(nanoseconds: UInt64) async {
        let id = state.withLock { state in
            state.lastID += 1
            return state.lastID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Checked under the lock the cancellation handler takes too: either the task
                // is cancelled already and nothing waits, or the handler finds the sleeper.
                let due: Bool = state.withLock { state in
                    if nanoseconds == 0 || Task.isCancelled { return true }
                    state.sleepers.append(Sleeper(id: id, deadline: state.monotonic + nanoseconds, continuation: continuation))
                    return false
                }
                if due { continuation.resume() }
            }
        } onCancel: {
            let sleeper: Sleeper? = state.withLock { state in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume()
        }
    }

    /// How long each current sleeper still has to wait, shortest first.
    public var pendingSleeps: [UInt64] {
        state.withLock { state in state.sleepers.map { $0.deadline - state.monotonic }.sorted() }
    }

    public func advance(byNanoseconds nanoseconds: UInt64) {
        let woken: [Sleeper] = state.withLock { state in
            state.monotonic += nanoseconds
            state.wall += Double(nanoseconds) / 1e9
            let now = state.monotonic
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    public func advance(bySeconds seconds: Double) {
        advance(byNanoseconds: UInt64(seconds * 1e9))
    }
}
