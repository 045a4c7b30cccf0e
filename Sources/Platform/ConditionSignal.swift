#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-bit wake-up signal between threads (pthread condition + flag): `signal` never blocks,
/// `wait` returns at the first signal since the last wait, or at the timeout. Linux measures
/// the timeout on the monotonic clock; macOS has no `pthread_condattr_setclock` and waits
/// relative to now instead (`pthread_cond_timedwait_relative_np`), which is just as immune to
/// wall-clock jumps.
public final class ConditionSignal: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var signalled = false

    public init() {
        pthread_mutex_init(&mutex, nil)
        #if canImport(Darwin)
        pthread_cond_init(&condition, nil)
        #else
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
        #endif
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    public func signal() {
        pthread_mutex_lock(&mutex)
        signalled = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    public func wait(timeoutMilliseconds: Int) {
        #if canImport(Darwin)
        var relative = timespec(tv_sec: timeoutMilliseconds / 1000, tv_nsec: (timeoutMilliseconds % 1000) * 1_000_000)
        pthread_mutex_lock(&mutex)
        if !signalled { _ = pthread_cond_timedwait_relative_np(&condition, &mutex, &relative) }
        signalled = false
        pthread_mutex_unlock(&mutex)
        #else
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let nanos = Int(deadline.tv_nsec) + (timeoutMilliseconds % 1000) * 1_000_000
        deadline.tv_sec += timeoutMilliseconds / 1000 + nanos / 1_000_000_000
        deadline.tv_nsec = nanos % 1_000_000_000
        pthread_mutex_lock(&mutex)
        while !signalled {
            if pthread_cond_timedwait(&condition, &mutex, &deadline) == ETIMEDOUT { break }
        }
        signalled = false
        pthread_mutex_unlock(&mutex)
        #endif
    }
}
