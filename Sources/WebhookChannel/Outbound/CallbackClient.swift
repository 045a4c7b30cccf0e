#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Socket
import HTTP

/// One HTTP/1.1 POST to a callback URL, on plain sockets (TLS through libssl for https),
/// blocking: `post` runs it on the `callback` pool so a slow receiver never blocks the event
/// loop or the MCP side; the CLI calls `postBlocking` on its own thread. Redirects are never
/// followed: a 3xx is reported as what it is.
///
/// The wire format is the HTTP layer's (`HTTPRequestWriter`, `HTTPResponseParser`), the
/// addresses come from `DeadlineResolver`, and the one deadline (name lookup, connect, TLS,
/// send and read together) is read from the injected `Clock`.
public enum CallbackClient {
    /// The threads every POST of the server runs on. A slow receiver holds one of them until
    /// its deadline (10 s), so four let a stalled approver or two go on stalling while other
    /// replies get through, and still bound what a flood of replies to a receiver that never
    /// answers can cost: four threads and four sockets, not one thread per POST. With all
    /// four busy, later POSTs wait in the pool's FIFO, in the order they were made; a wait
    /// there is not charged to the POST's deadline (see `post`).
    public static let pool = WorkerPool(name: "callback", size: 4)
    /// Permission prompts' POSTs (`PermissionRelay`): a person is waiting on each, so they
    /// never queue behind replies to a receiver that stalls. Up to eight threads, started as
    /// needed: one approver whose receiver stalls holds one per prompt for up to 10 s, and the
    /// other approvers' copies of those prompts must not wait for it.
    public static let promptPool = WorkerPool(name: "prompt", size: 8)

    /// The most of the answer's body kept for the CLI; the status decides, the body is shown.
    static let maxBody = 64 * 1024
    /// The most read while waiting for the head (interim answers included).
    static let maxHead = 64 * 1024

    public struct Response: Sendable, Equatable {
        public let status: Int
        /// Seconds from `Retry-After`, when the receiver sent one.
        public let retryAfter: Double?
        /// The start of the answer's body (at most 64 KiB), for the CLI to show.
        public var body: [UInt8] = []
    }

    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        /// A refused URL is final; network trouble may be retried.
        public let retryable: Bool
        public var description: String { reason }
    }

    /// `postBlocking` on a thread of `pool`, resuming the caller when it is done. The deadline
    /// (`timeout` on `clock`) starts when a thread takes the job, not when it is queued: time
    /// spent behind other POSTs is not an attempt's, so a queued retry is still a full try
    /// (and the caller waits that much longer for its outcome).
    public static func post(url: String, headers: [(String, String)], body: [UInt8], policy: CallbackURLPolicy,
                            timeout: Double = 10, clock: any Clock = SystemClock(),
                            pool: WorkerPool = CallbackClient.pool) async -> Result<Response, Failure>
    {
        await withCheckedContinuation { continuation in
            pool.async {
                continuation.resume(returning: postBlocking(url: url, headers: headers, body: body, policy: policy,
                                                            timeout: timeout, clock: clock))
            }
        }
    }

    static func postBlocking(url: String, headers: [(String, String)], body: [UInt8], policy: CallbackURLPolicy,
                             timeout: Double, clock: any Clock = SystemClock(),
                             lookup: @escaping @Sendable (String, UInt16) -> [SocketAddress] = SocketAddress.resolveAll)
        -> Result<Response, Failure>
    {
        let deadline = Deadline(clock: clock, seconds: timeout)
        let target: CallbackURLPolicy.Target
        do { target = try policy.check(url) } catch { return .failure(Failure(reason: error.reason, retryable: false)) }

        let addresses: [SocketAddress]
        switch DeadlineResolver.resolveAll(host: target.host, port: target.port,
                                           remainingMilliseconds: { deadline.remainingMilliseconds }, lookup: lookup)
        {
        case .success(let found): addresses = found
        case .failure(.timedOut): return .failure(Failure(reason: "timed out looking up \(target.host)", retryable: true))
        case .failure(.busy): return .failure(Failure(reason: "too many lookups still running", retryable: true))
        }
        do { try policy.checkResolved(addresses.map(\.host), port: target.port) } catch {
            return .failure(Failure(reason: error.reason, retryable: addresses.isEmpty))
        }
        var lastError = "could not connect"
        for address in addresses {
            switch connect(to: address, deadline: deadline) {
            case .failure(let error):
                lastError = error.description
                continue
            case .success(let fd):
                defer { close(fd) }
                var stream: any ByteStream = PlainStream(fd: fd)
                if target.scheme == "https" {
                    switch TLSStream.open(fd: fd, host: target.host, deadline: deadline) {
                    case .success(let tls): stream = tls
                    case .failure(let error): return .failure(Failure(reason: error.reason, retryable: error.retryable))
                    }
                }
                return exchange(stream: stream, target: target, headers: headers, body: body, deadline: deadline)
            }
        }
        return .failure(Failure(reason: lastError, retryable: true))
    }

    private static func exchange(stream: any ByteStream, target: CallbackURLPolicy.Target, headers: [(String, String)],
                                 body: [UInt8], deadline: Deadline) -> Result<Response, Failure>
    {
        defer { stream.shutdown() }
        let host = HTTPRequestWriter.hostField(host: target.host, port: target.port,
                                               defaultPort: target.scheme == "https" ? 443 : 80)
        let request = HTTPRequestWriter.serialize(method: "POST", target: target.pathAndQuery, host: host,
                                                  headers: [("User-Agent", "webhook-channel")] + headers, body: body)
        guard stream.writeAll(request, deadline: deadline) else {
            return .failure(Failure(reason: "the receiver closed the connection or timed out while we sent", retryable: true))
        }
        // Read the head and at most `maxBody` of the body: the status decides, the body is shown.
        var received: [UInt8] = []
        var head: HTTPResponseHead?
        while true {
            guard let chunk = stream.read(deadline: deadline) else {
                return .failure(Failure(reason: "no answer within the timeout", retryable: true))
            }
            if chunk.isEmpty { break }
            received.append(contentsOf: chunk)
            if head == nil {
                switch HTTPResponseParser.parseHead(received) {
                case .needMore:
                    if received.count >= maxHead { return notHTTP("no complete head in \(maxHead) bytes") }
                    continue
                case .failure(let error): return notHTTP(error.reason)
                case .complete(let parsed): head = parsed
                }
            }
            if let head, received.count - head.bodyStart >= expectedBody(head) { break }
        }
        guard let head else { return notHTTP("the connection closed before the head was complete") }
        let end = min(received.count, head.bodyStart + expectedBody(head))
        return .success(Response(status: head.status, retryAfter: head.retryAfter(now: deadline.clock.now()),
                                 body: Array(received[head.bodyStart..<end])))
    }

    /// The body bytes worth waiting for: the announced length up to the cap, or the cap
    /// (reached or cut short by the end of the connection) without one.
    private static func expectedBody(_ head: HTTPResponseHead) -> Int {
        min(head.contentLength ?? maxBody, maxBody)
    }

    private static func notHTTP(_ detail: String) -> Result<Response, Failure> {
        .failure(Failure(reason: "the receiver's answer was not HTTP (\(detail))", retryable: true))
    }

    private static func connect(to address: SocketAddress, deadline: Deadline) -> Result<Int32, SocketError> {
        let fd = StreamSocket.make(family: address.protocolFamily)
        guard fd >= 0 else { return .failure(.system("socket")) }
        let started = address.withSockaddr { Platform.connect(fd, $0, $1) }
        if started != 0 && errno != EINPROGRESS {
            let error = SocketError.system("connect \(address)")
            close(fd)
            return .failure(error)
        }
        guard PlainStream.waitFor(fd: fd, events: Int16(POLLOUT), deadline: deadline) else {
            close(fd)
            return .failure(SocketError(call: "connect \(address)", code: ETIMEDOUT))
        }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        guard error == 0 else {
            close(fd)
            return .failure(SocketError(call: "connect \(address)", code: error))
        }
        return .success(fd)
    }
}

/// When a callback attempt gives up, on the injected clock's monotonic reading. The blocking
/// socket waits poll for the time that remains, then ask the clock again: on a `ManualClock`
/// the deadline passes only when a test advances it.
struct Deadline {
    let clock: any Clock
    let at: UInt64

    init(clock: any Clock, seconds: Double) {
        self.clock = clock
        at = clock.monotonicNanoseconds() &+ UInt64(max(seconds, 0) * 1e9)
    }

    /// What is left for one poll, in whole milliseconds rounded up (at most a minute); nil
    /// once the deadline has passed.
    var remainingMilliseconds: Int32? {
        let now = clock.monotonicNanoseconds()
        guard now < at else { return nil }
        return Int32(min((at - now + 999_999) / 1_000_000, 60_000))
    }
}

/// A connected byte stream with deadlines: plain TCP or TLS.
protocol ByteStream {
    func writeAll(_ bytes: [UInt8], deadline: Deadline) -> Bool
    /// `nil` on timeout or error, empty at end of stream.
    func read(deadline: Deadline) -> [UInt8]?
    func shutdown()
}

struct PlainStream: ByteStream {
    let fd: Int32

    static func waitFor(fd: Int32, events: Int16, deadline: Deadline) -> Bool {
        while true {
            guard let remaining = deadline.remainingMilliseconds else { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&entry, 1, remaining)
            if n > 0 { return true }
            if n < 0 && errno != EINTR { return false }
        }
    }

    func writeAll(_ bytes: [UInt8], deadline: Deadline) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { NoSignalSend.send(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) {
                guard PlainStream.waitFor(fd: fd, events: Int16(POLLOUT), deadline: deadline) else { return false }
                continue
            }
            return false
        }
        return true
    }

    func read(deadline: Deadline) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return Array(buffer[0..<n]) }
            if errno == EAGAIN || errno == EINTR {
                guard PlainStream.waitFor(fd: fd, events: Int16(POLLIN), deadline: deadline) else { return nil }
                continue
            }
            return nil
        }
    }

    func shutdown() {}
}
