#if canImport(Glibc)
import CLinux
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wakes the event loop from another thread: an eventfd on Linux with epoll, else a pipe.
/// `fd` is what the loop watches for readability.
public final class LoopWakeup {
    public let fd: Int32
    private let writeFD: Int32

    public init(eventFD: Bool) throws(SocketError) {
        #if canImport(Glibc)
        if eventFD {
            fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
            guard fd >= 0 else { throw SocketError.system("eventfd") }
            writeFD = fd
            return
        }
        #endif
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw SocketError.system("pipe") }
        for end in ends { DescriptorFlags.makeNonBlockingAndCloseOnExec(end) }
        fd = ends[0]
        writeFD = ends[1]
    }

    /// From any thread. A full pipe means a wake-up is already pending, so EAGAIN is fine.
    public func signal() {
        if writeFD == fd {
            var one: UInt64 = 1
            _ = write(writeFD, &one, 8)
        } else {
            var byte: UInt8 = 1
            _ = write(writeFD, &byte, 1)
        }
    }

    /// On the loop thread, when `fd` is readable.
    public func drain() {
        var bytes = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let size = MemoryLayout.size(ofValue: bytes)
        if writeFD == fd {
            _ = read(fd, &bytes, 8)
        } else {
            while read(fd, &bytes, size) == size {}
        }
    }
}
