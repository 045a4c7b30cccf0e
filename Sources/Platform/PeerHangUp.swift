#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum PeerHangUp {
    /// Whether the other end of `fd` has gone (a pipe's writer closed it, a socket's peer shut
    /// down), whatever input is still unread: `poll` without waiting. On Linux `POLLRDHUP`
    /// says so even with data waiting; elsewhere only `POLLHUP` does.
    public static func detected(on fd: Int32) -> Bool {
        #if canImport(Glibc)
        let readHangUp: Int16 = 0x2000  // POLLRDHUP (Linux), which the Glibc module does not export
        #else
        let readHangUp: Int16 = 0
        #endif
        var entry = pollfd(fd: fd, events: Int16(POLLIN) | readHangUp, revents: 0)
        guard poll(&entry, 1, 0) == 1 else { return false }
        return entry.revents & (Int16(POLLHUP) | Int16(POLLERR) | Int16(POLLNVAL) | readHangUp) != 0
    }
}
