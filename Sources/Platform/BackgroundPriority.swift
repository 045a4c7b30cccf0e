#if canImport(Glibc)
import Glibc
#else
#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
#endif

/// Scheduling for threads that only write out what the event loop produced.
enum BackgroundPriority {
    /// Marks the calling thread SCHED_BATCH: the kernel stops letting it preempt the event
    /// loop when it wakes up, so answering senders is not delayed by writing notifications
    /// and log lines; it still gets its fair share of CPU. Best effort: ignored if refused.
    /// On macOS the nearest is a lower quality of service.
    static func applyToCurrentThread() {
        #if canImport(Glibc)
        var parameters = sched_param()
        parameters.sched_priority = 0
        _ = sched_setscheduler(0, 3 /* SCHED_BATCH */, &parameters)
        #else
        Thread.current.qualityOfService = .utility
        #endif
    }
}
