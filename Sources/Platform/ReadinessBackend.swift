/// One descriptor the readiness backend found ready. `writable` covers errors too and
/// `readable` covers hang-ups and errors, so a handler sees a failed socket as a read or
/// write that fails.
public struct ReadyEvent {
    public var fd: Int32
    public var readable: Bool
    public var writable: Bool
}

/// Level-triggered readiness over a set of descriptors: what the event loop needs from epoll
/// or poll(2), so the two are interchangeable. Used on the loop thread only.
public protocol ReadinessBackend: AnyObject {
    func add(fd: Int32, readable: Bool, writable: Bool) throws(SocketError)
    func modify(fd: Int32, readable: Bool, writable: Bool)
    /// Must come before the descriptor is closed.
    func remove(fd: Int32)
    /// `remove` for a descriptor about to be closed: epoll forgets a closed descriptor by
    /// itself, so it skips the `epoll_ctl`; poll must drop it from its set.
    func removeBeforeClose(fd: Int32)
    /// Waits at most `timeoutMilliseconds` and replaces `events` with what is ready (none on
    /// timeout or EINTR).
    func wait(into events: inout [ReadyEvent], timeoutMilliseconds: Int32)
}
