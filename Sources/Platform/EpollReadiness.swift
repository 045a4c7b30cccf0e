#if canImport(Glibc)
import CLinux
import Glibc

/// Linux's epoll: the cost of a wait does not grow with the number of idle connections.
final class EpollReadiness: ReadinessBackend {
    private let epollFD: Int32
    private var buffer = [epoll_event](repeating: epoll_event(), count: 256)

    init() throws(SocketError) {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw SocketError.system("epoll_create1") }
    }

    func add(fd: Int32, readable: Bool, writable: Bool) throws(SocketError) {
        var event = epoll_event()
        event.events = mask(readable: readable, writable: writable)
        event.data.fd = fd
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else { throw SocketError.system("epoll_ctl(ADD)") }
    }

    func modify(fd: Int32, readable: Bool, writable: Bool) {
        var event = epoll_event()
        event.events = mask(readable: readable, writable: writable)
        event.data.fd = fd
        _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
    }

    func remove(fd: Int32) {
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
    }

    /// Closing the only descriptor of a socket takes it out of the epoll set (no process
    /// here dups or forks one): one system call less for every connection.
    func removeBeforeClose(fd: Int32) {}

    func wait(into events: inout [ReadyEvent], timeoutMilliseconds: Int32) {
        events.removeAll(keepingCapacity: true)
        let count = buffer.withUnsafeMutableBufferPointer {
            epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeoutMilliseconds)
        }
        guard count > 0 else { return }
        for index in 0..<Int(count) {
            let bits = buffer[index].events
            events.append(ReadyEvent(
                fd: buffer[index].data.fd,
                readable: bits & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue | EPOLLERR.rawValue) != 0,
                writable: bits & (EPOLLOUT.rawValue | EPOLLERR.rawValue) != 0))
        }
    }

    private func mask(readable: Bool, writable: Bool) -> UInt32 {
        var bits: UInt32 = EPOLLRDHUP.rawValue
        if readable { bits |= EPOLLIN.rawValue }
        if writable { bits |= EPOLLOUT.rawValue }
        return bits
    }
}
#endif
