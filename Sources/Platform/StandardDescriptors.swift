#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Descriptors 0, 1 and 2 as the process expects them: each open. A parent that closed one
/// (`2>&-`) would otherwise hand the number to the next file this process opens — and the
/// protocol's private copy of stdout, made with `dup`, would become descriptor 2, where every
/// log line goes, mixing logs into the JSON-RPC stream. A closed one is opened on /dev/null.
public enum StandardDescriptors {
    /// Call first thing, before anything opens a file.
    public static func ensureOpen() {
        for descriptor: Int32 in 0...2 where fcntl(descriptor, F_GETFD) == -1 && errno == EBADF {
            // The lowest free number is `descriptor`: the ones below it are open by now.
            _ = open("/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY)
        }
    }
}
