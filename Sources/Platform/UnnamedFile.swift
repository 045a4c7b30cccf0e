#if canImport(Glibc)
import Glibc
import CLinux
#elseif canImport(Darwin)
import Darwin
#endif

/// A file created in a directory without a name, named later: its inode is allocated (which
/// can wait on the disk) by whoever creates it, and only the rename-like `link` is left for
/// the moment it is needed. Nothing is left behind if it is never named. Linux only
/// (`O_TMPFILE`); elsewhere `create` returns nil and the caller creates the file when needed.
public enum UnnamedFile {
    /// A new empty file in `directory`, open for appending, with `mode` once named; nil when
    /// the platform or the file system cannot.
    public static func create(in directory: String, mode: mode_t) -> Int32? {
        #if canImport(Glibc)
        let fd = webhook_open_unnamed(directory, mode)
        return fd >= 0 ? fd : nil
        #else
        return nil
        #endif
    }

    /// Gives the file of `fd` the name `path`, which must not exist. False when it could not.
    public static func link(_ fd: Int32, to path: String) -> Bool {
        #if canImport(Glibc)
        // Through /proc, as linkat(2) describes for O_TMPFILE files: AT_EMPTY_PATH would
        // need CAP_DAC_READ_SEARCH.
        return linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0
        #else
        return false
        #endif
    }
}
