#if canImport(Glibc)
import Glibc
#endif

/// Two settings of glibc's allocator, which it reads only when the process starts (from
/// `GLIBC_TUNABLES`), so the server sets them and executes itself again, once, before it opens
/// anything: the same process id, arguments and standard descriptors.
///
/// - Per thread, glibc caches at most 7 freed blocks of each size (its tcache). The event loop
///   answers a pass's webhooks together, once their lines are in the event log (SPEC 9), so a
///   pass of 32 webhooks frees some 32 blocks of each of a dozen sizes at once: every block
///   past the seventh went through the allocator's slower shared bins, and the next pass took
///   them out the same way. Measured with `bench/ab`, 32 connections, six A/B runs: 0.4 to
///   3.4 µs less user time a request with a larger cache (bench/HISTORY.md, second session).
/// - Left to itself, glibc raises the size from which a block gets its own mapping, and the
///   free space it keeps at the top of a heap, to the largest mapped block freed so far: the
///   duplicate memory's table (4 MiB at 100,000 keys) did that, after which the loop's heap
///   kept megabytes it no longer used. Under a sustained load the server's RSS grew for a
///   minute or two, to 39–43 MiB; with both fixed at 256 KiB it stayed at 29–33
///   (bench/HISTORY.md, twelfth session).
public enum AllocatorTuning {
    /// Blocks of each size a thread keeps: a pass's worth of webhooks at 32 connections, and
    /// at most ~2 MiB held per thread if every size were full (a few hundred KiB in practice);
    /// then the fixed mapping and trimming thresholds.
    static let settings = [
        "glibc.malloc.tcache_count=64",
        "glibc.malloc.mmap_threshold=262144",
        "glibc.malloc.trim_threshold=262144",
    ]

    /// Set for the second start only.
    static let reexecutedMarker = "WEBHOOK_ALLOCATOR_REEXECUTED"

    /// `GLIBC_TUNABLES` with each of `settings` whose name is not there yet added, or nil when
    /// none is missing (set by an earlier pass through here, or by the person running the
    /// server: theirs are kept).
    static func tunables(adding settings: [String] = settings, to current: String?) -> String? {
        let present = (current ?? "").split(separator: ":").map { $0.split(separator: "=", maxSplits: 1).first ?? "" }
        let missing = settings.filter { setting in
            !present.contains { $0 == setting.split(separator: "=", maxSplits: 1).first ?? "" }
        }
        guard !missing.isEmpty else { return nil }
        guard let current, !current.isEmpty else { return missing.joined(separator: ":") }
        return ([current] + missing).joined(separator: ":")
    }

    /// Re-executes the server with the settings, unless it has them (then returns at once),
    /// `WEBHOOK_ALLOCATOR_TUNING=0` asks not to, or this is not glibc on Linux. When the
    /// executable cannot be run again (no `/proc`), the server goes on as it is.
    public static func reexecuteIfNeeded() {
        #if os(Linux) && canImport(Glibc)
        if let opt = getenv("WEBHOOK_ALLOCATOR_TUNING"), String(cString: opt) == "0" { return }
        // Once only, whatever glibc makes of the string: it reads the tunables it knows and
        // cuts the original in place (`/proc/<pid>/environ` shows only the first one).
        if getenv(reexecutedMarker) != nil {
            unsetenv(reexecutedMarker)
            return
        }
        guard let value = tunables(to: getenv("GLIBC_TUNABLES").map { String(cString: $0) }) else { return }
        guard setenv("GLIBC_TUNABLES", value, 1) == 0, setenv(reexecutedMarker, "1", 1) == 0 else { return }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv(reexecutedMarker)
        // Still here: the exec failed. Run untuned rather than not at all.
        #endif
    }
}
