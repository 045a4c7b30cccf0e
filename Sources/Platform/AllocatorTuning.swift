#if canImport(Glibc)
import Glibc
#endif

/// glibc's allocator keeps, per thread, a cache of at most 7 freed blocks of each size (its
/// tcache). The event loop answers a pass's webhooks together, once their lines are in the
/// event log (SPEC 9), so a pass of 32 webhooks frees some 32 blocks of each of a dozen sizes
/// at once: every block past the seventh went through the allocator's slower shared bins,
/// and the next pass took them out the same way. Measured with `bench/ab`, 32 connections,
/// six A/B runs: 0.4 to 3.4 µs less user time a request with a larger cache (bench/HISTORY.md,
/// second session). The cache's size is read only when the process starts, from
/// `GLIBC_TUNABLES`, so the server sets it and executes itself again, once, before it opens
/// anything: the same process id, arguments and standard descriptors.
public enum AllocatorTuning {
    /// Blocks of each size a thread keeps: a pass's worth of webhooks at 32 connections, and
    /// at most ~2 MiB held per thread if every size were full (a few hundred KiB in practice).
    static let setting = "glibc.malloc.tcache_count=64"

    /// `GLIBC_TUNABLES` with the cache's size added, or nil when it is set already (by an
    /// earlier pass through here, or by the person running the server: theirs is kept).
    static func tunables(adding setting: String = setting, to current: String?) -> String? {
        guard let current, !current.isEmpty else { return setting }
        if current.contains("glibc.malloc.tcache_count=") { return nil }
        return current + ":" + setting
    }

    /// Re-executes the server with the setting, unless it has it (then returns at once),
    /// `WEBHOOK_ALLOCATOR_TUNING=0` asks not to, or this is not glibc on Linux. When the
    /// executable cannot be run again (no `/proc`), the server goes on as it is.
    public static func reexecuteIfNeeded() {
        #if os(Linux) && canImport(Glibc)
        if let opt = getenv("WEBHOOK_ALLOCATOR_TUNING"), String(cString: opt) == "0" { return }
        guard let value = tunables(to: getenv("GLIBC_TUNABLES").map { String(cString: $0) }) else { return }
        guard setenv("GLIBC_TUNABLES", value, 1) == 0 else { return }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Still here: the exec failed. Run untuned rather than not at all.
        #endif
    }
}
