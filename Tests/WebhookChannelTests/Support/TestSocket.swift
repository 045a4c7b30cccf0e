import Foundation
@testable import Platform
@testable import WebhookChannel

/// The test harness's socket set-up that differs between Linux and macOS; sends go through the
/// product's `NoSignalSend`.
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
                NoSignalSend.prepare(fd)
            }
            return fd
        }
        #endif
    }
}
