#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The portable way to make a descriptor non-blocking and close-on-exec after it exists,
/// where Linux sets both in the creating call.
enum DescriptorFlags {
    static func makeNonBlockingAndCloseOnExec(_ fd: Int32) {
        let status = fcntl(fd, F_GETFL)
        if status >= 0 { _ = fcntl(fd, F_SETFL, status | O_NONBLOCK) }
        let descriptor = fcntl(fd, F_GETFD)
        if descriptor >= 0 { _ = fcntl(fd, F_SETFD, descriptor | FD_CLOEXEC) }
    }
}
