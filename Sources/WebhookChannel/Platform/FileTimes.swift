#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File times from `stat`, whose fields are named `st_mtim` on Linux and `st_mtimespec` on
/// macOS.
extension stat {
    var modificationNanoseconds: Int64 {
        #if canImport(Darwin)
        return Int64(st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st_mtimespec.tv_nsec)
        #else
        return Int64(st_mtim.tv_sec) * 1_000_000_000 + Int64(st_mtim.tv_nsec)
        #endif
    }

    var changeNanoseconds: Int64 {
        #if canImport(Darwin)
        return Int64(st_ctimespec.tv_sec) * 1_000_000_000 + Int64(st_ctimespec.tv_nsec)
        #else
        return Int64(st_ctim.tv_sec) * 1_000_000_000 + Int64(st_ctim.tv_nsec)
        #endif
    }
}
