#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// poll(2), which every POSIX system has: one `pollfd` per registered descriptor, scanned on
/// each wait. Fine for the hundreds of connections a local channel sees.
final class PollReadiness: ReadinessBackend {
    private var descriptors: [pollfd] = []
    /// Where each registered descriptor sits in `descriptors`.
    private var slots: [Int32: Int] = [:]

    func add(fd: Int32, readable: Bool, writable: Bool) throws(SocketError) {
        guard slots[fd] == nil else { throw SocketError(call: "poll(add)", code: EEXIST) }
        slots[fd] = descriptors.count
        descriptors.append(pollfd(fd: fd, events: mask(readable: readable, writable: writable), revents: 0))
    }

    func modify(fd: Int32, readable: Bool, writable: Bool) {
        guard let slot = slots[fd] else { return }
        descriptors[slot].events = mask(readable: readable, writable: writable)
    }

    func removeBeforeClose(fd: Int32) {
        remove(fd: fd)
    }

    func remove(fd: Int32) {
        guard let slot = slots.removeValue(forKey: fd) else { return }
        let last = descriptors.count - 1
        if slot != last {
            descriptors[slot] = descriptors[last]
            slots[descriptors[slot].fd] = slot
        }
        descriptors.removeLast()
    }

    func wait(into events: inout [ReadyEvent], timeoutMilliseconds: Int32) {
        events.removeAll(keepingCapacity: true)
        let count = descriptors.withUnsafeMutableBufferPointer {
            Int(poll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds))
        }
        guard count > 0 else { return }
        var closed: [Int32] = []
        // Newest registrations first, so connections come before the listener (registered at
        // start and never moved): a round handles the hang-ups of closed connections before it
        // accepts new ones, as epoll's ready list (in order of readiness) does when the closes
        // came first. In array order, a client that closes connections at the connection cap
        // and opens a new one would be refused with 503.
        for entry in descriptors.reversed() where entry.revents != 0 {
            let bits = Int32(entry.revents)
            // A descriptor closed without being removed: epoll forgets it on close, so do the same.
            if bits & Int32(POLLNVAL) != 0 { closed.append(entry.fd); continue }
            events.append(ReadyEvent(
                fd: entry.fd,
                readable: bits & Int32(POLLIN | POLLHUP | POLLERR) != 0,
                writable: bits & Int32(POLLOUT | POLLERR) != 0))
        }
        for fd in closed { remove(fd: fd) }
    }

    private func mask(readable: Bool, writable: Bool) -> Int16 {
        var bits: Int16 = 0
        if readable { bits |= Int16(POLLIN) }
        if writable { bits |= Int16(POLLOUT) }
        return bits
    }
}
