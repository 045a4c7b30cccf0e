import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The test harness's socket calls that differ between Linux and macOS; every other test file
/// imports neither Glibc nor Darwin.
enum TestSocket {
    /// A blocking IPv4 TCP socket that no spawned child inherits.
    static func makeIPv4() -> Int32 {
        #if canImport(Glibc)
        return socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        // No SOCK_CLOEXEC: set it under the spawn lock, so no child is spawned in between.
        return ChildProcess.spawnLock.withLock {
            let fd = socket(AF_INET, SOCK_STREAM, 0)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                var one: Int32 = 1
                _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            return fd
        }
        #endif
    }

    /// `send` that fails with EPIPE instead of raising SIGPIPE.
    static func send(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.send(fd, bytes, count, Int32(MSG_NOSIGNAL))
        #else
        return Darwin.send(fd, bytes, count, 0)
        #endif
    }
}
