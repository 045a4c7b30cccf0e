#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open descriptors (`RLIMIT_NOFILE`). Linux starts most processes with
/// a soft limit of 1024, which a server that holds one descriptor per connection reaches
/// before its own connection cap; the hard limit is usually far higher and the soft one may be
/// raised to it without privileges.
public enum DescriptorLimit {
    /// Raises the soft limit to at least `wanted` as far as the hard limit allows; returns the
    /// soft limit in force afterwards.
    @discardableResult
    public static func raise(toAtLeast wanted: Int) -> Int {
        var limit = rlimit()
        guard get(&limit) else { return wanted }
        let current = Int(clamping: limit.rlim_cur)
        guard current < wanted else { return current }
        var raised = limit
        raised.rlim_cur = min(limit.rlim_max, rlim_t(wanted))
        return set(&raised) ? Int(clamping: raised.rlim_cur) : current
    }

    /// The soft limit now.
    public static var current: Int {
        var limit = rlimit()
        return get(&limit) ? Int(clamping: limit.rlim_cur) : Int.max
    }

    private static func get(_ limit: inout rlimit) -> Bool {
        #if canImport(Glibc)
        return getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0
        #else
        return getrlimit(RLIMIT_NOFILE, &limit) == 0
        #endif
    }

    private static func set(_ limit: inout rlimit) -> Bool {
        #if canImport(Glibc)
        return setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0
        #else
        return setrlimit(RLIMIT_NOFILE, &limit) == 0
        #endif
    }
}
