import Platform
import Socket

/// HTTP/1.1 over one TCP connection: feeds bytes to the parser, answers requests in order
/// (pipelining), keeps the connection alive when both sides want it, and enforces the
/// timeouts that stop slow clients from holding it forever.
final class HTTPServerConnection: TCPConnectionDelegate {
    typealias Timeouts = HTTPServer.Timeouts

    typealias Responder = (HTTPRequest, TCPConnection) -> HTTPReply

    private let limits: HTTPLimits
    private let timeouts: Timeouts
    private let respond: Responder
    private let clock: any Clock
    private var buffer: [UInt8] = []
    /// Where the unanswered bytes in `buffer` start: requests answered in one pass are
    /// skipped here and cut off once at its end, not one by one (each cut moves everything
    /// behind it: a pass over the ~2 MiB of tiny requests a connection may hold behind a
    /// pending answer would move tens of gigabytes).
    private var consumed = 0
    /// Bytes moved by cutting answered requests off `buffer`, so tests can check that the
    /// work stays proportional to the input.
    private(set) var bytesMoved = 0
    /// How far the parser got through the incomplete request at the start of `buffer`, so
    /// each read costs time in proportion to the bytes it brought, not to all buffered so far.
    private var progress: HTTPParseProgress?
    /// When the request now being read started (first byte, or accept for the first one).
    private var requestStartedAt: UInt64?
    private var lastActivity: UInt64
    private var sentContinue = false
    /// The current request's head went through `screen` already.
    private var screened = false
    private let screen: HTTPServer.HeadScreen
    /// What the server's connections may hold of bodies still arriving, together.
    private let bodyBudget: RequestBodyBudget
    /// This connection's share of it: the announced length of the body now arriving.
    private var reservedForBody = 0
    private var closing = false
    /// A request's answer is pending: later requests stay in `buffer` until it is written.
    private var awaitingAnswer = false
    /// How to write that answer when it comes. Kept here rather than captured by the closure
    /// that waits for it, so the closure holds `self` alone and needs no context allocation
    /// (one per webhook). Let go when the connection closes.
    private var awaited: Awaited?

    private struct Awaited {
        let connection: TCPConnection
        let keepAlive: Bool
        let headOnly: Bool
        /// Not here when asked for: its arrival runs the rest of `buffer` again.
        let arrivedLater: Bool
    }
    /// This turn's share of requests is used up and the rest of `buffer` waits for the turn
    /// handed to the loop's next pass; meanwhile nothing more is read from the client.
    private var yielded = false
    /// Requests answered per turn. A client that pipelines thousands (up to a whole request's
    /// worth of bytes, 2 MiB, can wait behind a pending answer) gets them answered a share per
    /// loop pass, with every other ready connection served in between, instead of holding
    /// the loop for the whole lot (about a second of tiny requests).
    static let requestsPerTurn = 64
    /// Answers written and not yet taken by the client, past which its next pipelined
    /// requests wait until it has taken them all: a client that sends without reading would
    /// otherwise have every request it pipelined answered into memory (up to a whole
    /// request's worth of tiny ones, some 9 MiB of answers per connection; 60 such clients
    /// took a server to 100 MiB).
    static let maxUnsentAnswerBytes = 64 << 10

    init(limits: HTTPLimits, timeouts: Timeouts = Timeouts(), clock: any Clock, startedAt: UInt64,
         screen: @escaping HTTPServer.HeadScreen = { _ in nil }, bodyBudget: RequestBodyBudget = RequestBodyBudget(),
         respond: @escaping Responder)
    {
        self.bodyBudget = bodyBudget
        self.limits = limits
        self.clock = clock
        self.timeouts = timeouts
        self.screen = screen
        self.respond = respond
        self.requestStartedAt = startedAt
        self.lastActivity = startedAt
    }

    func connection(_ connection: TCPConnection, didReceive bytes: UnsafeRawBufferPointer) {
        guard !closing else { return }
        let now = clock.monotonicNanoseconds()
        lastActivity = now
        if requestStartedAt == nil { requestStartedAt = now }
        buffer.append(contentsOf: bytes)
        if awaitingAnswer || yielded {
            // Requests pipelined behind a pending answer (or a yielded turn) wait in `buffer`;
            // past one whole request's worth the client is not read from until it is out.
            if buffer.count - consumed > limits.maxRequestBytes { connection.pauseReading() }
            return
        }
        processBuffer(connection)
    }

    /// Answers what `buffer` holds, in order, until it needs more bytes, an answer is
    /// pending, or this turn's share is used up (then the rest runs in the loop's next pass).
    private func processBuffer(_ connection: TCPConnection) {
        // A yielded turn leaves the answered bytes in place: cutting them off at every turn
        // would move the rest each time, and the rest can be 2 MiB.
        defer { if !yielded { compact() } }
        var answered = 0
        while !closing && !awaitingAnswer && consumed < buffer.count {
            if answered == Self.requestsPerTurn {
                yieldTurn(connection)
                return
            }
            if connection.pendingOutputBytes > Self.maxUnsentAnswerBytes {
                waitForClientToRead(connection)
                return
            }
            answered += 1
            let result = buffer.withUnsafeBytes {
                HTTPRequestParser.parse(UnsafeRawBufferPointer(rebasing: $0[consumed...]), limits: limits, resuming: progress)
            }
            switch result {
            case .needMore(let progress):
                self.progress = progress
                if let head = progress.head, !screened {
                    screened = true
                    if let refusal = screen(head) {
                        refuse(connection, with: refusal)
                        return
                    }
                    // A body that is still arriving is held in memory until it is whole:
                    // with many arriving at once, past the budget the newest is refused.
                    if let length = head.contentLength, length > 0 {
                        guard bodyBudget.reserve(length) else {
                            refuse(connection, with: HTTPServer.tooManyBodies)
                            return
                        }
                        reservedForBody = length
                    }
                }
                // A chunked body announces no length: what it holds so far is reserved as it
                // grows, and past the budget it is refused like any other.
                if let head = progress.head, head.chunked {
                    let held = buffer.count - consumed
                    if held > reservedForBody {
                        guard bodyBudget.reserve(held - reservedForBody, besides: reservedForBody) else {
                            refuse(connection, with: HTTPServer.tooManyBodies)
                            return
                        }
                        reservedForBody = held
                    }
                }
                if let head = progress.head, head.version == .http11, !sentContinue, head.expectsContinue {
                    sentContinue = true
                    connection.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
                }
                return
            case .complete(let request, let length):
                releaseBody()
                progress = nil
                consumed += length
                sentContinue = false
                screened = false
                requestStartedAt = consumed == buffer.count ? nil : clock.monotonicNanoseconds()
                let keepAlive = request.keepAlive
                let headOnly = request.method == "HEAD"
                switch respond(request, connection) {
                case .now(let response):
                    write(response, keepAlive: keepAlive, headOnly: headOnly, to: connection)
                case .later(let pending):
                    awaitingAnswer = true
                    // An answer that is already here (a status poll, a refusal) is written
                    // at once and this loop goes on; only one that arrives later runs the
                    // loop again. Running it from here would nest one call per such request
                    // pipelined behind it, and a few thousand overflow the loop's stack.
                    // Asked before `whenReady`, which runs the closure at once exactly when
                    // the answer is already here: a constant, where a flag set after the call
                    // would be a variable the closure shares (a heap box per request).
                    // Held strongly until the answer comes (at the end of the pass for a
                    // webhook; a closed connection is not written to): a weak reference would
                    // move both objects' reference counts to a side table for good, and every
                    // retain and release of a keep-alive connection after it onto the slow path.
                    awaited = Awaited(connection: connection, keepAlive: keepAlive, headOnly: headOnly,
                                      arrivedLater: !pending.isFulfilled)
                    pending.whenReady { [self] response in answerArrived(response) }
                }
            case .failure(let error):
                fail(connection, status: error.status, code: error.code, message: error.message)
            }
        }
    }

    /// Writes the pending answer (`awaited`), unless the connection closed meanwhile.
    private func answerArrived(_ response: HTTPResponse) {
        guard let awaited, !awaited.connection.isClosed else { return }
        self.awaited = nil
        awaitingAnswer = false
        write(response, keepAlive: awaited.keepAlive, headOnly: awaited.headOnly, to: awaited.connection)
        guard awaited.arrivedLater else { return }
        continueAfterWaiting(awaited.connection)
    }

    /// Stops reading the client and hands the rest of `buffer` to the loop's next pass.
    private func yieldTurn(_ connection: TCPConnection) {
        holdBack(connection, until: connection.runNextPass)
    }

    /// Stops reading the client and answering what it pipelined until it has taken the
    /// answers already written (a client that never does is cut off by the stuck-output
    /// timeout of `TCPConnection`).
    private func waitForClientToRead(_ connection: TCPConnection) {
        holdBack(connection, until: connection.whenOutputSent)
    }

    /// Stops reading the client; what `buffer` holds waits until `resume` runs the closure
    /// it is given (once).
    private func holdBack(_ connection: TCPConnection, until resume: (@escaping () -> Void) -> Void) {
        yielded = true
        connection.pauseReading()
        resume { [weak self, weak connection] in
            guard let self, let connection, !connection.isClosed else { return }
            self.yielded = false
            self.continueAfterWaiting(connection)
        }
    }

    /// After a pending answer or a yielded turn: answers what waited, and reads the client
    /// again unless this turn yielded too.
    private func continueAfterWaiting(_ connection: TCPConnection) {
        processBuffer(connection)
        if !yielded { connection.resumeReading() }
    }

    /// Cuts the answered requests off `buffer` (the parser's `progress` counts from what is left).
    private func compact() {
        guard consumed > 0 else { return }
        bytesMoved += buffer.count - consumed
        buffer.removeFirst(consumed)
        consumed = 0
    }

    /// `headOnly` answers a `HEAD`: the head a `GET` would get, without its content.
    private func write(_ response: HTTPResponse, keepAlive: Bool, headOnly: Bool, to connection: TCPConnection) {
        connection.write { response.serialize(keepAlive: keepAlive, omittingBody: headOnly, into: &$0) }
        if !keepAlive {
            closing = true
            // Drain anything pipelined behind it, so the client reads this answer
            // rather than a reset (RFC 9112 §9.6). Closing at once when nothing was left
            // over measured no faster (bench, Connection: close) and would turn bytes still
            // in flight into a reset that can destroy the answer.
            connection.closeAfterWriting(drain: true)
        }
    }

    /// Answers, then closes after draining what the client already sent.
    private func fail(_ connection: TCPConnection, status: Int, code: String, message: String) {
        refuse(connection, with: HTTPResponse.error(status: status, code: code, message: message))
    }

    /// Answers `response`, then closes after draining what the client already sent.
    private func refuse(_ connection: TCPConnection, with response: HTTPResponse) {
        releaseBody()
        closing = true
        buffer = []
        consumed = 0
        progress = nil
        connection.write(response.serialized(keepAlive: false))
        connection.closeAfterWriting(drain: true)
    }

    func connectionTick(_ connection: TCPConnection, now: UInt64) {
        // A pending answer or a yielded turn is the server's wait, not the client's: no
        // timeout runs meanwhile.
        guard !closing, !awaitingAnswer, !yielded else { return }
        if let started = requestStartedAt {
            // Once the head is complete the whole-request timeout applies.
            let limit = progress?.head != nil ? timeouts.requestNanoseconds : timeouts.headNanoseconds
            if nanoseconds(from: started, to: now) > limit {
                fail(connection, status: 408, code: "request_timeout", message: "The request was not received in time.")
            }
        } else if nanoseconds(from: lastActivity, to: now) > timeouts.idleNanoseconds {
            closing = true
            connection.closeNow()
        }
    }

    func connectionDidClose(_ connection: TCPConnection) {
        // The connection and this object hold each other while an answer is awaited.
        awaited = nil
        releaseBody()
        buffer = []
        consumed = 0
        progress = nil
    }

    private func releaseBody() {
        guard reservedForBody > 0 else { return }
        bodyBudget.release(reservedForBody)
        reservedForBody = 0
    }
}

/// The request bodies a server's connections are receiving, together (loop thread only): each
/// body that does not arrive in one read reserves its announced length while the rest comes,
/// and past `limit` a new one is refused (`503`, the sender retries) rather than held, so many
/// large bodies sent slowly at once cannot take the process's memory (SPEC 9: under 64 MiB).
final class RequestBodyBudget {
    static let defaultLimit = 16 << 20
    let limit: Int
    private(set) var reserved = 0

    init(limit: Int = RequestBodyBudget.defaultLimit) {
        self.limit = limit
    }

    /// False when `bytes` more would pass the limit. One body alone always fits: `besides` is
    /// what the caller holds already (a chunked body reserves as it grows).
    func reserve(_ bytes: Int, besides own: Int = 0) -> Bool {
        guard reserved == own || reserved + bytes <= limit else { return false }
        reserved += bytes
        return true
    }

    func release(_ bytes: Int) {
        reserved -= bytes
    }
}
