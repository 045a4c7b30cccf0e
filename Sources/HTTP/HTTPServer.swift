import Platform
import Socket

/// Ties the socket layer to HTTP: one `HTTPServerConnection` per accepted socket, and a
/// `503` for connections past the cap.
/// Created, started and stopped on the event loop thread only.
public final class HTTPServer: @unchecked Sendable {
    /// At least 512 at once (README "Security model").
    public static let defaultMaxConnections = 1024

    public typealias Responder = (HTTPRequest, SocketAddress?) -> HTTPReply

    /// How long a connection may take, per request and while idle.
    public struct Timeouts: Sendable {
        /// A request head must be complete this long after its first byte (or after accept).
        public var headNanoseconds: UInt64 = 10_000_000_000
        /// The whole request, body included.
        public var requestNanoseconds: UInt64 = 30_000_000_000
        /// An idle keep-alive connection is closed after this.
        public var idleNanoseconds: UInt64 = 30_000_000_000

        public init(headNanoseconds: UInt64 = 10_000_000_000, requestNanoseconds: UInt64 = 30_000_000_000,
                    idleNanoseconds: UInt64 = 30_000_000_000)
        {
            self.headNanoseconds = headNanoseconds
            self.requestNanoseconds = requestNanoseconds
            self.idleNanoseconds = idleNanoseconds
        }
    }

    private var listener: TCPListener!
    /// Bodies being received by all connections (see `RequestBodyBudget`).
    let bodyBudget = RequestBodyBudget()
    public var address: SocketAddress { listener.address }
    /// Open connections (loop thread only).
    public var connectionCount: Int { listener.connectionCount }
    /// Answers every request; may be set after binding, before `start` (loop thread only).
    public var respond: Responder
    /// Looks at a request head once it is complete and before its body is read (or invited
    /// with `100 Continue`): a refusal it returns is the answer, and the connection closes.
    /// For what a route can refuse from the head alone, such as a length over its limit.
    public var screenHead: HeadScreen?
    public typealias HeadScreen = (HTTPRequestHead) -> HTTPResponse?

    /// Binds now (throws if the port is taken); call `start` on the loop thread.
    public init(host: String, port: UInt16, loop: EventLoop, limits: HTTPLimits, timeouts: Timeouts,
         maxConnections: Int, respond: @escaping Responder) throws(SocketError) {
        self.respond = respond
        // Made once and shared by every connection (a closure literal in the one below was
        // two allocations per accepted connection).
        let screen: HeadScreen = { [unowned self] head in self.screenHead?(head) }
        let answer: HTTPServerConnection.Responder = { [unowned self] request, connection in
            self.respond(request, connection.peer)
        }
        listener = try TCPListener(host: host, port: port, loop: loop, maxConnections: maxConnections) { [unowned self] connection, overLimit in
            if overLimit {
                connection.write(HTTPServer.tooManyConnections.serialized(keepAlive: false))
                connection.closeAfterWriting(drain: true)
                return DiscardingConnection()
            }
            return HTTPServerConnection(limits: limits, timeouts: timeouts, clock: loop.clock, startedAt: connection.acceptedAt,
                                        screen: screen, bodyBudget: self.bodyBudget, respond: answer)
        }
    }

    public func start() throws(SocketError) {
        listener.outOfDescriptorsAnswer = HTTPServer.tooManyConnections.serialized(keepAlive: false)
        try listener.startAccepting()
    }

    public func stop() {
        listener.stopListening()
    }

    /// Too many large bodies arriving at once (`RequestBodyBudget`).
    static let tooManyBodies = HTTPResponse.error(
        status: 503, code: "busy", message: "Too many request bodies are arriving at once; retry shortly.",
        headers: [("Retry-After", "1")])

    /// Past the connection cap, or with no descriptor left to hold one more.
    static let tooManyConnections = HTTPResponse.error(
        status: 503, code: "too_many_connections", message: "The server is at its connection limit; retry shortly.",
        headers: [("Retry-After", "1")])
}

/// Reads and drops whatever a refused connection still sends, until it is closed.
final class DiscardingConnection: TCPConnectionDelegate {
    func connection(_ connection: TCPConnection, didReceive bytes: UnsafeRawBufferPointer) {}
    func connectionTick(_ connection: TCPConnection, now: UInt64) {}
    func connectionDidClose(_ connection: TCPConnection) {}
}
