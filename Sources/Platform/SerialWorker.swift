#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization

/// One dedicated background thread that runs jobs in the order they were given: the writing
/// the event loop hands off (protocol lines, event-log lines). The thread runs SCHED_BATCH
/// (see `BackgroundPriority`), which a shared Dispatch thread must not be switched to.
public final class SerialWorker: Sendable {
    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let wakeup = ConditionSignal()

    public init(name: String) {
        DetachedThread.start(name: name) { [self] in self.run() }
    }

    public func async(_ job: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.append(job) }
        wakeup.signal()
    }

    /// Returns once every job given before this call has run (or after `timeoutMilliseconds`).
    public func sync(timeoutMilliseconds: Int = 5000) {
        let done = ConditionSignal()
        async { done.signal() }
        done.wait(timeoutMilliseconds: timeoutMilliseconds)
    }

    private func run() {
        BackgroundPriority.applyToCurrentThread()
        var taken: [@Sendable () -> Void] = []
        while true {
            jobs.withLock { swap(&taken, &$0) }
            if taken.isEmpty {
                wakeup.wait(timeoutMilliseconds: 1000)
                continue
            }
            for job in taken { job() }
            taken.removeAll(keepingCapacity: true)
        }
    }
}
