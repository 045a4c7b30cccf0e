#if canImport(Glibc)
import CLinux
#endif

/// Execution counts of a profile-counting build (scripts/build-optimized trains one).
public enum ProfileCounts {
    /// Writes the counts gathered so far to `LLVM_PROFILE_FILE`, when this binary counts
    /// them; does nothing in any other build. For exits through `_exit`, which skips the
    /// exit handler that would have written them.
    public static func writeIfCounting() {
        #if canImport(Glibc)
        webhook_write_profile_counts()
        #endif
    }
}
