import Synchronization

/// One thread the process owns that runs actions at deadlines on the monotonic clock (the
/// reading of `SystemClock.monotonicNanoseconds`); `SystemClock.sleep` is a continuation
/// resumed here. It replaces `Task.sleep`, whose timers on Linux are libdispatch's (a thread,
/// an epoll set and a timerfd of its own in the process).
///
/// The thread starts with the first deadline and waits on a `ConditionSignal` until the
/// earliest one (rounded up to the millisecond); a new earliest deadline wakes it to wait
/// less. What is due runs in deadline order, equal deadlines in the order they were given.
/// Actions run on the timer thread, so they must be short: resuming a continuation only
/// queues the task on its executor.
public final class TimerThread: Sendable {
    /// The process's timer, behind `SystemClock.sleep`.
    public static let shared = TimerThread(name: "timer")

    private struct Entry {
        let deadline: UInt64
        let id: UInt64
        let action: @Sendable () -> Void
    }

    private struct State {
        /// Sorted by deadline; equal deadlines in the order they were added.
        var entries: [Entry] = []
        var lastID: UInt64 = 0
        var started = false
    }

    private let name: String
    private let state = Mutex(State())
    private let wakeup = ConditionSignal()

    init(name: String) {
        self.name = name
    }

    /// Returns once `nanoseconds` have passed on the monotonic clock, or at once when the task
    /// is (or becomes) cancelled.
    public func sleep(nanoseconds: UInt64) async {
        let deadline = Self.deadline(after: nanoseconds)
        let id = state.withLock { state in
            state.lastID += 1
            return state.lastID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Checked under the lock the cancellation handler also takes: either the task
                // is cancelled already and nothing is added, or the handler finds the entry.
                add(Entry(deadline: deadline, id: id, action: { continuation.resume() }), unlessCancelled: true)
            }
        } onCancel: {
            runEarly(id)
        }
    }

    /// Runs `action` on the timer thread once the monotonic clock reaches `deadline`; returns
    /// the id `runEarly` takes.
    @discardableResult
    func schedule(at deadline: UInt64, _ action: @escaping @Sendable () -> Void) -> UInt64 {
        let id = state.withLock { state in
            state.lastID += 1
            return state.lastID
        }
        add(Entry(deadline: deadline, id: id, action: action), unlessCancelled: false)
        return id
    }

    /// Runs `action` on the timer thread once `seconds` have passed on the monotonic clock.
    /// It must be short (hand the work on, e.g. with `EventLoop.execute`).
    public func schedule(afterSeconds seconds: Double, _ action: @escaping @Sendable () -> Void) {
        schedule(at: Self.deadline(after: UInt64(max(seconds, 0) * 1e9)), action)
    }

    /// Takes the action `id` off the timer and runs it now, on the caller's thread; nothing
    /// when it has run already.
    func runEarly(_ id: UInt64) {
        let entry: Entry? = state.withLock { state in
            guard let index = state.entries.firstIndex(where: { $0.id == id }) else { return nil }
            return state.entries.remove(at: index)
        }
        entry?.action()
    }

    /// Actions waiting for their deadline.
    var pendingCount: Int { state.withLock { $0.entries.count } }

    private static func deadline(after nanoseconds: UInt64) -> UInt64 {
        let (sum, overflow) = SystemClock().monotonicNanoseconds().addingReportingOverflow(nanoseconds)
        return overflow ? .max : sum
    }

    private func add(_ entry: Entry, unlessCancelled: Bool) {
        enum Outcome { case runNow, added(earliest: Bool, start: Bool) }
        let outcome: Outcome = state.withLock { state in
            if unlessCancelled && Task.isCancelled { return .runNow }
            let index = state.entries.partitionPoint { $0.deadline > entry.deadline }
            state.entries.insert(entry, at: index)
            let start = !state.started
            state.started = true
            return .added(earliest: index == 0, start: start)
        }
        switch outcome {
        case .runNow:
            entry.action()
        case .added(_, start: true):
            DetachedThread.start(name: name, stackSize: 128 << 10) { [self] in run() }
        case .added(earliest: true, start: false):
            wakeup.signal()
        case .added:
            break
        }
    }

    private func run() {
        while true {
            let now = SystemClock().monotonicNanoseconds()
            let (due, next): ([Entry], UInt64?) = state.withLock { state in
                let count = state.entries.partitionPoint { $0.deadline > now }
                let due = Array(state.entries[..<count])
                state.entries.removeFirst(count)
                return (due, state.entries.first?.deadline)
            }
            for entry in due { entry.action() }
            guard due.isEmpty else { continue }
            // Nothing waiting: sleep until `add` signals (a minute at a time).
            var milliseconds = 60_000
            if let next {
                let remaining = next - now
                milliseconds = Int(min(remaining / 1_000_000 + (remaining % 1_000_000 == 0 ? 0 : 1), 60_000))
            }
            wakeup.wait(timeoutMilliseconds: milliseconds)
        }
    }
}

extension Array {
    /// The index of the first element for which `belongsAfter` holds, in an array where every
    /// element for which it holds comes after every element for which it does not.
    fileprivate func partitionPoint(_ belongsAfter: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongsAfter(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
