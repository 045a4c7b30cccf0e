#if canImport(Glibc)
import CLinux
#endif

/// Giving memory back to the system after a one-off burst of allocations.
public enum FreedMemory {
    /// Returns the allocator's free pages to the system. After reading a whole event log
    /// (start-up, a far-behind follower's catch-up) the freed records leave tens of megabytes
    /// in glibc's heaps that a server which then sits idle would keep resident for ever.
    /// Takes a few milliseconds; call it after such a burst only. macOS's allocator returns
    /// free pages on its own.
    public static func returnToSystem() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}
