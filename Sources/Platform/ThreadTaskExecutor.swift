#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization

/// A Swift concurrency `TaskExecutor` on one dedicated thread: the MCP side's tasks run here
/// instead of on the global concurrent executor. On Linux the global executor is libdispatch,
/// whose worker threads bring an epoll set, an eventfd and a timerfd of their own into the
/// process; the server's `poll` backend is meant to run without epoll, and this keeps it so.
/// (For the same reason waits between retries are `TimerThread`'s, not `Task.sleep`'s.)
public final class ThreadTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let jobs = Mutex<[UnownedJob]>([])
    private let wakeup = ConditionSignal()

    public init(name: String) {
        DetachedThread.start(name: name, stackSize: 1 << 20) { [self] in run() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        jobs.withLock { $0.append(unowned) }
        wakeup.signal()
    }

    private func run() {
        var taken: [UnownedJob] = []
        while true {
            jobs.withLock { swap(&taken, &$0) }
            if taken.isEmpty {
                wakeup.wait(timeoutMilliseconds: 1000)
                continue
            }
            for job in taken { job.runSynchronously(on: asUnownedTaskExecutor()) }
            taken.removeAll(keepingCapacity: true)
        }
    }
}
