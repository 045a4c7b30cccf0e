import Foundation
@testable import Platform
@testable import WebhookChannel
import Testing

// Helpers for the bad-input / hardening suites (issue 4, SPEC section 5): a socket that
// sends exactly the bytes a test gives it and keeps exactly the bytes the server answers,
// a parser for those answers, and a started server that knows how to prove it survived
// (health, a delivered signed webhook, no leaked descriptors, nothing secret in its log).

// MARK: - Responses as they came off the wire

/// One HTTP response exactly as received. `raw` holds its bytes, head and body.
struct WireResponse: Sendable, CustomStringConvertible {
    let raw: Data
    let statusLine: String
    let status: Int
    let headers: [(name: String, value: String)]
    let body: Data

    /// The first field with this name (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// Every field with this name (case-insensitive), in order.
    func values(_ name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    func json() throws -> JSON {
        do {
            return try JSON.parse(body)
        } catch {
            throw HarnessError("HTTP \(status) body is not JSON: \(bodyText.prefix(300))")
        }
    }

    var description: String {
        String(decoding: raw.prefix(700), as: UTF8.self).debugDescription
    }

    /// Parses one response at the start of `data`. Nil while incomplete; throws when the
    /// bytes cannot be an HTTP/1.1 response of this server (every answer with content is
    /// framed by `Content-Length`; 1xx, 204 and 304 have none).
    static func parse(_ data: Data) throws -> (WireResponse, consumed: Int)? {
        guard let headEnd = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let headStart = data.startIndex
        let head = String(decoding: data[headStart..<headEnd.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", parts[1].count == 3, let status = Int(parts[1]) else {
            throw HarnessError("malformed status line \(statusLine.debugDescription) in \(String(decoding: data.prefix(300), as: UTF8.self).debugDescription)")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                throw HarnessError("malformed response header line \(line.debugDescription)")
            }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let bodyStart = headEnd.upperBound
        var length = 0
        if !((100..<200).contains(status) || status == 204 || status == 304) {
            let lengths = headers.filter { $0.name.lowercased() == "content-length" }.map(\.value)
            guard lengths.count == 1, let declared = Int(lengths[0]), declared >= 0 else {
                throw HarnessError("response without exactly one valid Content-Length: \(head.debugDescription)")
            }
            length = declared
        }
        guard data.distance(from: bodyStart, to: data.endIndex) >= length else { return nil }
        let bodyEnd = data.index(bodyStart, offsetBy: length)
        let response = WireResponse(
            raw: Data(data[headStart..<bodyEnd]), statusLine: statusLine, status: status,
            headers: headers, body: Data(data[bodyStart..<bodyEnd]))
        return (response, data.distance(from: headStart, to: bodyEnd))
    }
}

// MARK: - A socket under the test's full control

/// A TCP client socket that sends exactly the given bytes and keeps every byte received.
/// Reads wait with `poll(2)` and a deadline, so no call can hang; blocking calls run off the
/// cooperative pool. `close()` is idempotent and runs from `deinit`, so no path leaks it.
final class RawSocket: @unchecked Sendable {
    enum End: Sendable, Equatable {
        /// The server closed its side in order (FIN).
        case closed
        /// The connection was reset; anything received before is still in the buffer.
        case reset
    }

    /// How long to wait for a close the server owes at once (after a `Connection: close`
    /// answer, a refusal, a 408): long enough for CI's loaded machine, where 2 s was not, and
    /// still below the 10 s header timeout and the 30 s idle timeout, so a server that left
    /// the connection to one of those would still fail the wait.
    static let promptClose: Duration = .seconds(8)

    private let lock = NSLock()
    private var fd: Int32
    private var buffer = Data()
    private var end: End?

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit { close() }

    /// Connects to `host:port` (IPv4 literal), bounded by `timeout`.
    static func connect(host: String = "127.0.0.1", port: Int, timeout: Duration = defaultTimeout) async throws -> RawSocket {
        try await offloaded { try connectBlocking(host: host, port: port, timeout: timeout) }
    }

    /// For many connections at once: connects on the calling thread. Call from `offloaded`.
    /// `receiveBuffer` sets `SO_RCVBUF` before connecting (a small one makes a client that
    /// does not read stall the server's output quickly).
    static func connectBlocking(
        host: String = "127.0.0.1", port: Int, timeout: Duration = defaultTimeout, receiveBuffer: Int32? = nil
    ) throws -> RawSocket {
        let fd = TestSocket.makeIPv4()
        guard fd >= 0 else { throw HarnessError("socket() failed: \(String(cString: strerror(errno)))") }
        let connection = RawSocket(fd: fd)
        let whole = Int(timeout.seconds)
        var value = timeval(tv_sec: whole, tv_usec: Int((timeout.seconds - Double(whole)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        try connectIPv4(fd, host: host, port: port)
        return connection
    }

    func close() {
        lock.withLock {
            if fd >= 0 {
                Foundation.close(fd)
                fd = -1
            }
        }
    }

    /// Our write side only (FIN); we keep reading.
    func shutdownWrite() {
        lock.withLock {
            if fd >= 0 { _ = shutdown(fd, Int32(SHUT_WR)) }
        }
    }

    /// Every byte received and not yet taken by `readResponse`.
    var unread: Data { lock.withLock { buffer } }

    /// How the server ended the connection, once seen by a read.
    var ended: End? { lock.withLock { end } }

    // MARK: Sending

    /// Sends all of `data`; throws (with how far it got) when the server refuses it.
    func send(_ data: Data) async throws {
        if let failure = await trySend(data) { throw HarnessError(failure) }
    }

    func send(_ text: String) async throws {
        try await send(Data(text.utf8))
    }

    /// Sends all of `data`; returns why it stopped, or nil when everything went out. For a
    /// test that expects the server may stop reading (it still reads the answer after).
    func trySend(_ data: Data) async -> String? {
        let outcome = try? await offloaded { [self] () -> [String] in sendBlocking(data).map { [$0] } ?? [] }
        guard let outcome else { return "send did not run" }
        return outcome.first
    }

    func sendBlocking(_ data: Data) -> String? {
        let fd = lock.withLock { self.fd }
        guard fd >= 0 else { return "socket already closed" }
        var offset = 0
        while offset < data.count {
            let sent = data.withUnsafeBytes { NoSignalSend.send(fd, $0.baseAddress! + offset, data.count - offset) }
            if sent < 0 {
                if errno == EINTR { continue }
                return "send failed after \(offset) of \(data.count) bytes: \(String(cString: strerror(errno)))"
            }
            offset += sent
        }
        return nil
    }

    // MARK: Receiving

    /// Reads until `done(buffer)` holds, the server ends the connection, or `timeout`
    /// passes. Returns whether `done` holds; never throws.
    @discardableResult
    func wait(timeout: Duration, until done: @escaping @Sendable (Data) -> Bool) async -> Bool {
        (try? await offloaded { self.waitBlocking(timeout: timeout, until: done) }) ?? false
    }

    func waitBlocking(timeout: Duration, until done: (Data) -> Bool) -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            if done(unread) { return true }
            if ended != nil { return false }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return false }
            receiveOnce(waitingAtMost: remaining)
        }
    }

    /// Waits for the server to end the connection; nil when it is still open after
    /// `timeout`. Bytes that arrive meanwhile stay in `unread`.
    func waitForEnd(timeout: Duration) async -> End? {
        _ = await wait(timeout: timeout) { _ in false }
        return ended
    }

    /// Takes one complete response off the buffer, reading as needed (bounded).
    func readResponse(timeout: Duration = defaultTimeout) async throws -> WireResponse {
        try await offloaded { try self.readResponseBlocking(timeout: timeout) }
    }

    func readResponseBlocking(timeout: Duration) throws -> WireResponse {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            let parsed = try lock.withLock { () throws -> WireResponse? in
                guard let (response, consumed) = try WireResponse.parse(buffer) else { return nil }
                buffer = Data(buffer.dropFirst(consumed))
                return response
            }
            if let parsed { return parsed }
            if let end = ended {
                throw HarnessError("connection \(end == .reset ? "reset" : "closed") before a complete response; received: \(String(decoding: unread.prefix(400), as: UTF8.self).debugDescription)")
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero {
                throw HarnessError("timed out after \(timeout.seconds) s waiting for a response; received: \(String(decoding: unread.prefix(400), as: UTF8.self).debugDescription)")
            }
            receiveOnce(waitingAtMost: remaining)
        }
    }

    /// One `poll` + `recv`: appends what arrived, or records the end of the connection.
    private func receiveOnce(waitingAtMost remaining: Duration) {
        let fd = lock.withLock { self.fd }
        guard fd >= 0 else {
            lock.withLock { if end == nil { end = .closed } }
            return
        }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(min(max(remaining.seconds * 1000, 1), 60_000))
        let ready = Foundation.poll(&descriptor, 1, milliseconds)
        guard ready > 0 else { return }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { Foundation.recv(fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) }
        lock.withLock {
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
            } else if count == 0 {
                end = .closed
            } else if errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK {
                end = .reset
            }
        }
    }
}

// MARK: - A server that has to prove it survived

/// The real binary with an initialized MCP session and one paired source, plus what it
/// takes to show that bad input did no harm: `/health` answers, a correctly signed webhook
/// is still delivered, the descriptor count is back at its baseline, and nothing secret
/// reached stderr.
final class HardenedServer: @unchecked Sendable {
    let channel: TestChannel
    let credentials: SourceCredentials
    private let lock = NSLock()
    private var forbidden: [String] = []
    private var baseline = 0

    /// Open descriptors once the server has served and delivered one webhook.
    var baselineFDs: Int { lock.withLock { baseline } }

    var port: Int { channel.server.port }
    var pid: Int32 { channel.server.pid }
    var http: RawHTTPClient { channel.http }
    var mcp: MCPTestClient { channel.mcp }
    var stderr: LineBuffer { channel.server.stderr }
    /// The `Host` field value a well-behaved local client sends.
    var host: String { "127.0.0.1:\(port)" }

    private init(channel: TestChannel, credentials: SourceCredentials) {
        self.channel = channel
        self.credentials = credentials
        forbid(credentials.secret)
    }

    static func start(environment: [String: String] = [:]) async throws -> HardenedServer {
        let channel = try await TestChannel.start(environment: environment)
        do {
            let ticket = try await channel.http.requestPairing(name: "hardening")
            let credentials = try await channel.http.completePairing(code: ticket.code)
            let server = HardenedServer(channel: channel, credentials: credentials)
            server.forbid(ticket.pollToken)
            // Warm up every path the final check uses (the event log is opened lazily), then
            // take the baseline once the count holds still.
            try await server.expectDelivery("warm-up:")
            let baseline = try await settledFDCount(pid: channel.server.pid)
            server.lock.withLock { server.baseline = baseline }
            return server
        } catch {
            channel.stop()
            throw error
        }
    }

    func stop() { channel.stop() }

    /// Strings that must never appear in the server's stderr (secrets, tokens, signatures,
    /// distinctive body text).
    func forbid(_ strings: String...) {
        lock.withLock { forbidden += strings.filter { !$0.isEmpty } }
    }

    /// A unique string for a body, recorded as forbidden in the log.
    func marker(_ label: String) -> String {
        let marker = "\(label)-\(UUID().uuidString.prefix(13).lowercased())"
        forbid(marker)
        return marker
    }

    /// The seed-style headers of a correctly signed `POST /webhook` (v1 scheme) as raw
    /// header lines; the signature is recorded as forbidden in the log.
    func signedFields(body: Data, timestamp: Int = unixNow()) -> [String] {
        let headers = RawHTTPClient.webhookHeaders(credentials, body: body, timestamp: timestamp)
        for (name, value) in headers where name == "X-Signature" {
            forbid(value, String(value.dropFirst(3)))
        }
        return headers.map { "\($0.0): \($0.1)" }
    }

    /// Raw bytes of a correctly signed `POST /webhook` carrying `body`.
    func signedWebhookRequest(body: String, extraFields: [String] = [], connectionClose: Bool = true) -> Data {
        let data = Data(body.utf8)
        var fields = ["Host: \(host)", "Content-Type: application/json", "Content-Length: \(data.count)"]
        fields += signedFields(body: data) + extraFields
        if connectionClose { fields.append("Connection: close") }
        var bytes = Data(("POST /webhook HTTP/1.1\r\n" + fields.joined(separator: "\r\n") + "\r\n\r\n").utf8)
        bytes.append(data)
        return bytes
    }

    // MARK: Exchanges

    /// Sends `raw` on a fresh connection and reads one response; when the server also
    /// ends the connection within `closeWithin`, `end` says how.
    func exchange(_ raw: Data, closeWithin: Duration = RawSocket.promptClose, timeout: Duration = defaultTimeout) async throws
        -> (response: WireResponse, end: RawSocket.End?, after: Data)
    {
        let socket = try await RawSocket.connect(port: port)
        defer { socket.close() }
        _ = await socket.trySend(raw)
        let response = try await socket.readResponse(timeout: timeout)
        let end = await socket.waitForEnd(timeout: closeWithin)
        return (response, end, socket.unread)
    }

    func exchange(_ text: String, closeWithin: Duration = RawSocket.promptClose) async throws
        -> (response: WireResponse, end: RawSocket.End?, after: Data)
    {
        try await exchange(Data(text.utf8), closeWithin: closeWithin)
    }

    /// Sends a bad request and checks the refusal SPEC section 5 asks for: one of
    /// `statuses`, a JSON error body, `Connection: close`, nothing after it, and the
    /// connection closed (in order, not reset) promptly (`RawSocket.promptClose`). Failures
    /// are recorded, not thrown, so one case does not hide the next.
    @discardableResult
    func expectRefusal(
        _ what: String, _ raw: Data, statuses: Set<Int>, error code: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async -> WireResponse? {
        do {
            let (response, end, after) = try await exchange(raw)
            #expect(statuses.contains(response.status), "\(what): expected \(statuses.sorted()), got \(response)",
                    sourceLocation: sourceLocation)
            #expect(response.status != 500, "\(what): 500 for client input", sourceLocation: sourceLocation)
            expectJSONErrorBody(response, code: code, what, sourceLocation: sourceLocation)
            #expect(response.header("Connection")?.lowercased() == "close", "\(what): \(response)",
                    sourceLocation: sourceLocation)
            #expect(end == .closed, "\(what): connection not closed in order within \(RawSocket.promptClose) after the \(response.status) (end: \(String(describing: end)))",
                    sourceLocation: sourceLocation)
            #expect(after.isEmpty, "\(what): bytes after the refusal: \(String(decoding: after.prefix(200), as: UTF8.self).debugDescription)",
                    sourceLocation: sourceLocation)
            return response
        } catch {
            Issue.record("\(what): \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    func expectRefusal(
        _ what: String, _ text: String, status: Int, error code: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        await expectRefusal(what, Data(text.utf8), statuses: [status], error: code, sourceLocation: sourceLocation)
    }

    // MARK: Proof of survival

    /// `GET /health` answers 200 with `status: ok`.
    func expectHealthy(_ context: String = "", sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let health = try await http.get("/health")
        #expect(health.status == 200, "\(context) /health: \(health)", sourceLocation: sourceLocation)
        #expect(try health.json()["status"] == "ok", "\(context) /health: \(health)", sourceLocation: sourceLocation)
    }

    /// A correctly signed webhook with a fresh marker is answered 200 and arrives as a
    /// channel notification carrying the marker.
    func expectDelivery(_ context: String = "", sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let marker = marker("delivery-check")
        let body = #"{"event":"hardening.check","marker":"\#(marker)"}"#
        let data = Data(body.utf8)
        let headers = RawHTTPClient.webhookHeaders(credentials, body: data)
        for (name, value) in headers where name == "X-Signature" { forbid(value, String(value.dropFirst(3))) }
        let response = try await http.postJSON("/webhook", body: data, headers: headers)
        #expect(response.status == 200, "\(context) signed webhook: \(response)", sourceLocation: sourceLocation)
        _ = try await mcp.message("\(context) the channel notification carrying \(marker)") { message in
            message["method"]?.stringValue == MCPTestClient.channelMethod
                && message["params"]?["content"]?.stringValue?.contains(marker) == true
        }
    }

    /// Health and a delivery, after each bad input.
    func expectAlive(_ context: String = "", sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(channel.server.child.termination == nil, "\(context) server died: \(String(describing: channel.server.child.termination)); stderr:\n\(stderr.tail())",
                sourceLocation: sourceLocation)
        try await expectHealthy(context, sourceLocation: sourceLocation)
        try await expectDelivery(context, sourceLocation: sourceLocation)
    }

    /// The end of every hardening test: still running, health and delivery work, the MCP
    /// session answers, descriptors back at the baseline (drained connections close within
    /// ~2 s; this waits up to 30 s, as a loaded machine may take longer, and a leak never
    /// comes back down), stdout only protocol, nothing forbidden in stderr.
    func expectSurvived(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await expectAlive("at the end:", sourceLocation: sourceLocation)
        #expect(try await mcp.result("ping") == [:], sourceLocation: sourceLocation)

        let pid = self.pid
        let baseline = baselineFDs
        _ = try? await poll(timeout: .seconds(30), every: .milliseconds(50), "descriptors back to \(baseline)") {
            (openFDCount(pid: pid) ?? Int.max) <= baseline ? true : nil
        }
        let now = openFDCount(pid: pid)
        // At most the baseline: fewer means the baseline caught a warm-up connection the
        // server had not closed yet (a loaded machine can hold it past the settling time).
        #expect(now.map { $0 <= baseline } == true,
                "descriptor leak: \(baseline) open after start-up, \(String(describing: now)) now: \(describeFDs(pid: pid))",
                sourceLocation: sourceLocation)

        #expect(mcp.nonProtocolLines.isEmpty, "stdout carried non-protocol lines: \(mcp.nonProtocolLines)",
                sourceLocation: sourceLocation)
        expectLogClean(sourceLocation: sourceLocation)
    }

    /// No forbidden string (secret, poll token, signature, marked body text) in stderr.
    func expectLogClean(sourceLocation: SourceLocation = #_sourceLocation) {
        let log = stderr.text
        for secret in lock.withLock({ forbidden }) {
            #expect(!log.contains(secret), "stderr contains \(secret.prefix(80).debugDescription):\n\(log.suffix(2000))",
                    sourceLocation: sourceLocation)
        }
    }
}

// MARK: - Small helpers

/// `{"error": code, "message": text}` with `Content-Type: application/json`.
func expectJSONErrorBody(
    _ response: WireResponse, code: String?, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true,
            "\(what): Content-Type of \(response)", sourceLocation: sourceLocation)
    let json = try? response.json()
    if let code {
        #expect(json?["error"] == .string(code), "\(what): \(response)", sourceLocation: sourceLocation)
    } else {
        #expect(json?["error"]?.stringValue?.isEmpty == false, "\(what): \(response)", sourceLocation: sourceLocation)
    }
    #expect(json?["message"]?.stringValue?.isEmpty == false, "\(what): \(response)", sourceLocation: sourceLocation)
}

/// No `Access-Control-*` field (SPEC 5: no CORS headers ever).
func expectNoCORS(_ response: WireResponse, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let cors = response.headers.filter { $0.name.lowercased().hasPrefix("access-control-") }
    #expect(cors.isEmpty, "\(what): CORS headers \(cors.map { "\($0.name): \($0.value)" })", sourceLocation: sourceLocation)
}

/// Entries in `/proc/<pid>/fd`, or nil when the process is gone.
func openFDCount(pid: Int32) -> Int? {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
}

/// What each descriptor points at, for a leak report.
func describeFDs(pid: Int32) -> String {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
    return names.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }.map { name in
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(name)")) ?? "?"
        return "\(name)→\(target)"
    }.joined(separator: " ")
}

/// The descriptor count once it has held still for a second (bounded, generously: on a
/// loaded machine the warm-up's connection can take seconds to close, and a server kept off
/// the CPU for 300 ms, the stillness once asked for, left it in the baseline).
func settledFDCount(pid: Int32) async throws -> Int {
    var last = openFDCount(pid: pid)
    var stableSince = ContinuousClock.now
    let deadline = ContinuousClock.now.advanced(by: .seconds(30))
    while ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(50))
        let now = openFDCount(pid: pid)
        if now != last {
            last = now
            stableSince = ContinuousClock.now
        } else if stableSince.duration(to: .now) >= .seconds(1), let now {
            return now
        }
    }
    guard let last else { throw HarnessError("process \(pid) is gone") }
    return last
}

/// A local IPv4 address that is not loopback (to reach a server bound to 0.0.0.0 from a
/// non-loopback peer address), or nil when the machine has none.
func nonLoopbackIPv4() -> String? {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0, let first = list else { return nil }
    defer { freeifaddrs(list) }
    var cursor: UnsafeMutablePointer<ifaddrs>? = first
    while let entry = cursor {
        defer { cursor = entry.pointee.ifa_next }
        guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
              entry.pointee.ifa_flags & UInt32(IFF_UP) != 0,
              entry.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0
        else { continue }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        let ipv4 = UnsafeRawPointer(address).assumingMemoryBound(to: sockaddr_in.self)
        var inAddress = ipv4.pointee.sin_addr
        guard inet_ntop(AF_INET, &inAddress, &text, socklen_t(INET_ADDRSTRLEN)) != nil else { continue }
        let string = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if !string.hasPrefix("127.") { return string }
    }
    return nil
}
