#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// A listening socket on the event loop. It accepts, counts connections and hands each one to
/// `makeDelegate`; past `maxConnections` the connection is still accepted (so the client gets a
/// clear answer rather than a hang in the backlog) and flagged `overLimit`. A `nil` delegate
/// closes the connection at once.
public final class TCPListener: EventLoopHandler {
    public let address: SocketAddress
    public private(set) var connectionCount = 0
    public let maxConnections: Int

    private let fd: Int32
    private unowned let loop: EventLoop
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
    private let makeDelegate: (TCPConnection, _ overLimit: Bool) -> (any TCPConnectionDelegate)?
    /// Every open connection, by descriptor: the listener owns them (the loop's handler table
    /// refers to them too, but a connection is dropped here when it closes).
    private var connections = DescriptorTable<TCPConnection>()
    /// What a connection accepted when the process is out of descriptors is sent before it
    /// is closed (the protocol layer's refusal, opaque here); nil closes it without a word.
    public var outOfDescriptorsAnswer: [UInt8]?
    /// A descriptor held in reserve (`/dev/null`): with every other one in use, closing it
    /// makes room to accept one waiting connection, answer it and close it, instead of
    /// leaving the listener readable and the loop spinning on `EMFILE`.
    private var spare: Int32 = -1
    /// Set while the listener is not watched: out of descriptors with no spare to shed with.
    /// A connection closing, or the next tick, watches it again.
    private var acceptingPaused = false

    /// Binds and listens; throws with the failing call's errno (e.g. address in use).
    public init(host: String, port: UInt16, loop: EventLoop, maxConnections: Int,
                makeDelegate: @escaping (TCPConnection, _ overLimit: Bool) -> (any TCPConnectionDelegate)?) throws(SocketError)
    {
        guard let requested = SocketAddress.resolve(host: host, port: port) else {
            throw SocketError(call: "resolve \(host)", code: EINVAL)
        }
        let fd = StreamSocket.make(family: requested.protocolFamily, linuxFlags: loop.backend.usesLinuxExtensions)
        guard fd >= 0 else { throw SocketError.system("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = requested.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0 else {
            let error = SocketError.system("bind \(requested)")
            Platform.close(fd)
            throw error
        }
        guard listen(fd, 1024) == 0 else {
            let error = SocketError.system("listen")
            Platform.close(fd)
            throw error
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0, let actual = withUnsafePointer(to: &storage, { SocketAddress(raw: $0, length: Int(length)) }) else {
            let error = SocketError.system("getsockname")
            Platform.close(fd)
            throw error
        }
        self.fd = fd
        self.address = actual
        self.loop = loop
        self.maxConnections = maxConnections
        self.makeDelegate = makeDelegate
        spare = Self.openSpare()
    }

    deinit {
        scratch.deallocate()
        if spare >= 0 { close(spare) }
    }

    private static func openSpare() -> Int32 {
        #if canImport(Glibc)
        return open("/dev/null", O_RDONLY | Int32(O_CLOEXEC))
        #else
        return open("/dev/null", O_RDONLY | O_CLOEXEC)
        #endif
    }

    /// Every connection's `onClose`: one closure made once, not a closure context allocated
    /// for each accepted connection.
    private lazy var connectionClosed: (TCPConnection) -> Void = { [weak self] closed in
        guard let self else { return }
        connections[closed.fd] = nil
        connectionCount -= 1
        resumeAccepting()
    }

    /// Must be called on the loop thread.
    public func startAccepting() throws(SocketError) {
        try loop.register(fd: fd, handler: self)
    }

    public func readable() {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    StreamSocket.accept(fd, $0, &length, linuxFlags: loop.backend.usesLinuxExtensions)
                }
            }
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EMFILE || errno == ENFILE {
                    if refuseOneWithSpare() { continue }
                    pauseAccepting()
                }
                // EAGAIN: all taken.
                return
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let peer = withUnsafePointer(to: &storage) { SocketAddress(raw: $0, length: Int(length)) }
            let connection = TCPConnection(fd: client, peer: peer, loop: loop, scratch: scratch, onClose: connectionClosed)
            connections[client] = connection
            connectionCount += 1
            do {
                try loop.register(fd: client, handler: connection)
            } catch {
                connections[client] = nil
                connectionCount -= 1
                close(client)
                continue
            }
            guard let delegate = makeDelegate(connection, connectionCount > maxConnections) else {
                connection.closeNow()
                continue
            }
            connection.delegate = delegate
        }
    }

    public func writable() {}

    public func tick(now: UInt64) {
        // Descriptors may have been freed elsewhere (a log file closed) since accepting paused.
        resumeAccepting()
        if spare < 0 { spare = Self.openSpare() }
    }

    /// Out of descriptors: gives up the spare one to accept a waiting connection, reads what
    /// it already sent (so closing does not reset it before the answer is read), sends
    /// `outOfDescriptorsAnswer` and closes it; then takes the spare again. False when there
    /// was no spare or nothing to accept.
    private func refuseOneWithSpare() -> Bool {
        guard spare >= 0 else { return false }
        close(spare)
        spare = -1
        defer { spare = Self.openSpare() }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let client = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                StreamSocket.accept(fd, $0, &length, linuxFlags: loop.backend.usesLinuxExtensions)
            }
        }
        guard client >= 0 else { return false }
        for _ in 0..<4 {  // the socket is non-blocking
            if recv(client, scratch.baseAddress, scratch.count, 0) <= 0 { break }
        }
        if let answer = outOfDescriptorsAnswer {
            _ = answer.withUnsafeBytes { NoSignalSend.send(client, $0.baseAddress!, $0.count) }
            shutdown(client, Int32(SHUT_WR))
        }
        close(client)
        return true
    }

    private func pauseAccepting() {
        guard !acceptingPaused else { return }
        acceptingPaused = true
        loop.modify(fd: fd, readable: false, writable: false)
    }

    private func resumeAccepting() {
        guard acceptingPaused else { return }
        acceptingPaused = false
        loop.modify(fd: fd, readable: true, writable: false)
    }

    public func stopListening() {
        loop.unregister(fd: fd)
        Platform.close(fd)
        for connection in connections.values { connection.closeNow() }
    }
}
