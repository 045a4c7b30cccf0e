#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File times from `stat`, whose fields are named `st_mtim` on Linux and `st_mtimespec` on
/// macOS.
extension stat {
    public var modificationNanoseconds: Int64 {
        #if canImport(Darwin)
        return Self.nanoseconds(st_mtimespec)
        #else
        return Self.nanoseconds(st_mtim)
        #endif
    }

    public var changeNanoseconds: Int64 {
        #if canImport(Darwin)
        return Self.nanoseconds(st_ctimespec)
        #else
        return Self.nanoseconds(st_ctim)
        #endif
    }

    private static func nanoseconds(_ time: timespec) -> Int64 {
        Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
