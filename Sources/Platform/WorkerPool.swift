import Synchronization

/// At most `size` named threads the process owns, sharing one FIFO of jobs: for blocking work
/// that may take long (a callback POST waits up to its deadline) without a thread per job.
/// `SerialWorker` is the one-thread case with jobs in strict order; here up to `size` run at
/// once, and the rest wait.
///
/// Threads start on demand — one when a job arrives and no thread is idle, until there are
/// `size` (named `name-1` … `name-size`) — and then stay, idle in a wait when there is
/// nothing to do. With every thread busy, a job waits in the FIFO until a thread finishes;
/// jobs are taken in the order given. A job measures its own time from when it starts: the
/// pool knows nothing of deadlines.
public final class WorkerPool: Sendable {
    public let name: String
    public let size: Int

    private struct State {
        var jobs: [@Sendable () -> Void] = []
        /// The first job not yet taken: `jobs` is consumed from the front without shifting.
        var head = 0
        var threads = 0
        /// The wake-up signal of each thread that found nothing to do, last idle first.
        var idle: [ConditionSignal] = []

        var queued: Int { jobs.count - head }

        mutating func take() -> (@Sendable () -> Void)? {
            guard head < jobs.count else { return nil }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64 && head * 2 >= jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            return job
        }
    }

    private let state = Mutex(State())

    public init(name: String, size: Int) {
        precondition(size > 0, "a worker pool needs at least one thread")
        self.name = name
        self.size = size
    }

    /// Queues `job`; it runs on one of the pool's threads once one is free.
    public func async(_ job: @escaping @Sendable () -> Void) {
        let (idle, newThread): (ConditionSignal?, Int?) = state.withLock { state in
            state.jobs.append(job)
            if let idle = state.idle.popLast() { return (idle, nil) }
            guard state.threads < size else { return (nil, nil) }
            state.threads += 1
            return (nil, state.threads)
        }
        idle?.signal()
        if let number = newThread {
            DetachedThread.start(name: "\(name)-\(number)") { [self] in run() }
        }
    }

    /// Threads started so far (at most `size`).
    var threadCount: Int { state.withLock { $0.threads } }

    /// Jobs given but not yet taken by a thread.
    var queuedCount: Int { state.withLock { $0.queued } }

    private func run() {
        let wakeup = ConditionSignal()
        while true {
            let job: (@Sendable () -> Void)? = state.withLock { state in
                if let job = state.take() { return job }
                if !state.idle.contains(where: { $0 === wakeup }) { state.idle.append(wakeup) }
                return nil
            }
            if let job {
                job()
            } else {
                // Woken by `async` (which took this thread off the idle list) or the timeout;
                // either way the FIFO is looked at again.
                wakeup.wait(timeoutMilliseconds: 60_000)
            }
        }
    }
}
