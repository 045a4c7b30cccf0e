import Foundation
@testable import Platform
@testable import WebhookChannel

typealias HeaderFields = [(name: String, value: String)]

/// The first field with this name (field names are case-insensitive).
func headerValue(_ name: String, in headers: HeaderFields) -> String? {
    headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
}

/// One request received by a test server.
struct ReceivedRequest: Sendable {
    let method: String
    let target: String
    let headers: HeaderFields
    let body: Data

    func header(_ name: String) -> String? { headerValue(name, in: headers) }
}

/// One parsed HTTP/1.1 response.
struct RawHTTPResponse: Sendable, CustomStringConvertible {
    let status: Int
    let reason: String
    /// Header fields in arrival order, names as sent.
    let headers: HeaderFields
    let body: Data

    func header(_ name: String) -> String? { headerValue(name, in: headers) }

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as JSON; throws with the raw body when it is not JSON.
    func json() throws -> JSON {
        do {
            return try JSON.parse(body)
        } catch {
            throw HarnessError("HTTP \(status) body is not JSON: \(bodyText.prefix(500))")
        }
    }

    var description: String {
        "HTTP \(status) \(reason) \(headers.map { "\($0.name): \($0.value)" }) \(bodyText.prefix(500))"
    }
}

/// A blocking TCP connection with hand-written HTTP/1.1 framing, so a test controls every
/// byte it sends and can keep the connection alive or pipeline. Every socket call has a
/// timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` plus an overall deadline); the public API is async
/// and runs the blocking calls off the cooperative pool.
final class HTTPConnection: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    private var buffer = Data()
    private var closed = false

    /// Takes ownership of a connected socket.
    init(fd: Int32) {
        self.fd = fd
    }

    deinit { close() }

    /// Connects to `host:port` (an IPv4 literal) within `timeout`.
    static func open(host: String = "127.0.0.1", port: Int, timeout: Duration = defaultTimeout) async throws -> HTTPConnection {
        try await offloaded { try connectBlocking(host: host, port: port, timeout: timeout) }
    }

    /// Connects and sends `first` in one blocking step: a server times a connection's first
    /// request from the accept, and a hop back to a busy cooperative pool between the two
    /// could outlast its head timeout (`RawHTTPClient.send(raw:)`).
    static func open(host: String = "127.0.0.1", port: Int, sending first: Data,
                     timeout: Duration = defaultTimeout) async throws -> HTTPConnection {
        try await offloaded {
            let connection = try connectBlocking(host: host, port: port, timeout: timeout)
            try connection.sendBlocking(first, timeout: timeout)
            return connection
        }
    }

    func send(_ data: Data, timeout: Duration = defaultTimeout) async throws {
        try await offloaded { try self.sendBlocking(data, timeout: timeout) }
    }

    /// Reads exactly one response (leaving any pipelined bytes for the next call).
    func readResponse(timeout: Duration = defaultTimeout) async throws -> RawHTTPResponse {
        try await offloaded { try self.readResponseBlocking(timeout: timeout) }
    }

    func close() {
        lock.withLock {
            if !closed {
                closed = true
                Foundation.close(fd)
            }
        }
    }

    // MARK: Blocking internals

    private static func connectBlocking(host: String, port: Int, timeout: Duration) throws -> HTTPConnection {
        let fd = TestSocket.makeIPv4()
        guard fd >= 0 else { throw HarnessError("socket() failed: \(String(cString: strerror(errno)))") }
        let connection = HTTPConnection(fd: fd)
        connection.setTimeout(timeout)
        try connectIPv4(fd, host: host, port: port)
        return connection
    }

    private func setTimeout(_ timeout: Duration) {
        let seconds = max(timeout.seconds, 0.001)
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    func sendBlocking(_ data: Data, timeout: Duration) throws {
        setTimeout(timeout)
        var offset = 0
        while offset < data.count {
            let sent = data.withUnsafeBytes { NoSignalSend.send(fd, $0.baseAddress! + offset, data.count - offset) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw HarnessError("send failed after \(offset) of \(data.count) bytes: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    /// Reads more bytes into `buffer`; false on EOF. Throws on timeout or error.
    private func fill(deadline: Date, what: String) throws -> Bool {
        let remaining = deadline.timeIntervalSinceNow
        guard remaining > 0 else { throw HarnessError("timed out waiting for \(what)") }
        setTimeout(.milliseconds(Int64(remaining * 1000) + 1))
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Foundation.recv(fd, $0.baseAddress!, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                return true
            }
            if count == 0 { return false }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                throw HarnessError("timed out waiting for \(what); received so far: \(String(decoding: buffer.prefix(300), as: UTF8.self))")
            }
            // A reset after the server answered still leaves the answer in `buffer`.
            return false
        }
    }

    func readResponseBlocking(timeout: Duration) throws -> RawHTTPResponse {
        let deadline = Date().addingTimeInterval(timeout.seconds)
        while true {
            let response = try readOneResponse(deadline: deadline)
            // Interim responses (100 Continue) are skipped.
            if response.status >= 200 || response.status < 100 { return response }
        }
    }

    private func readOneResponse(deadline: Date) throws -> RawHTTPResponse {
        let (statusLine, headers) = try readHead(deadline: deadline, what: "a response head")
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HarnessError("malformed status line: \(statusLine)")
        }
        let reason = parts.count > 2 ? String(parts[2]) : ""
        let bodyless = (100..<200).contains(status) || status == 204 || status == 304
        let body = try readBody(headers, deadline: deadline, untilCloseWhenUnframed: !bodyless)
        return RawHTTPResponse(status: status, reason: reason, headers: headers, body: body)
    }

    /// One request, as a tiny test server sees it (used by `CallbackReceiver`).
    func readRequestBlocking(timeout: Duration) throws -> ReceivedRequest {
        let deadline = Date().addingTimeInterval(timeout.seconds)
        let (requestLine, headers) = try readHead(deadline: deadline, what: "a request head")
        let parts = requestLine.split(separator: " ")
        guard parts.count == 3 else { throw HarnessError("malformed request line: \(requestLine)") }
        let body = try readBody(headers, deadline: deadline, untilCloseWhenUnframed: false)
        return ReceivedRequest(method: String(parts[0]), target: String(parts[1]), headers: headers, body: body)
    }

    /// Reads up to the empty line; returns the start line and the header fields.
    private func readHead(deadline: Date, what: String) throws -> (String, HeaderFields) {
        let separator = Data("\r\n\r\n".utf8)
        var headEnd = buffer.range(of: separator)
        while headEnd == nil {
            guard try fill(deadline: deadline, what: what) else {
                throw HarnessError("connection closed before \(what) was complete; got: \(String(decoding: buffer.prefix(300), as: UTF8.self))")
            }
            headEnd = buffer.range(of: separator)
        }
        let head = String(decoding: buffer[buffer.startIndex..<headEnd!.lowerBound], as: UTF8.self)
        buffer = Data(buffer[headEnd!.upperBound...])
        var lines = head.components(separatedBy: "\r\n")
        let startLine = lines.removeFirst()
        var headers: HeaderFields = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw HarnessError("malformed header line: \(line)") }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return (startLine, headers)
    }

    /// The body framed by chunked encoding or `Content-Length`; without either, a response
    /// body runs to the close and a request has none.
    private func readBody(_ headers: HeaderFields, deadline: Date, untilCloseWhenUnframed: Bool) throws -> Data {
        if headerValue("Transfer-Encoding", in: headers)?.lowercased().contains("chunked") == true {
            return try readChunkedBody(deadline: deadline)
        }
        if let lengthText = headerValue("Content-Length", in: headers) {
            guard let length = Int(lengthText), length >= 0 else { throw HarnessError("bad Content-Length: \(lengthText)") }
            while buffer.count < length {
                guard try fill(deadline: deadline, what: "a \(length)-byte body") else {
                    throw HarnessError("connection closed after \(buffer.count) of \(length) body bytes")
                }
            }
            let body = Data(buffer.prefix(length))
            buffer = Data(buffer.dropFirst(length))
            return body
        }
        guard untilCloseWhenUnframed else { return Data() }
        while try fill(deadline: deadline, what: "a body delimited by close") {}
        defer { buffer = Data() }
        return buffer
    }

    private func readChunkedBody(deadline: Date) throws -> Data {
        var body = Data()
        while true {
            let sizeLine = String(decoding: try readLine(deadline: deadline), as: UTF8.self)
            let sizeText = sizeLine.split(separator: ";", omittingEmptySubsequences: false).first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw HarnessError("bad chunk size line: \(sizeLine)")
            }
            if size == 0 {
                // Trailer fields, up to the empty line.
                while try !readLine(deadline: deadline).isEmpty {}
                return body
            }
            while buffer.count < size + 2 {
                guard try fill(deadline: deadline, what: "a chunk") else { throw HarnessError("closed inside a chunk") }
            }
            body.append(buffer.prefix(size))
            buffer = Data(buffer.dropFirst(size + 2))
        }
    }

    /// One CRLF-terminated line from the buffer, without its CRLF.
    private func readLine(deadline: Date) throws -> Data {
        let crlf = Data("\r\n".utf8)
        while true {
            if let end = buffer.range(of: crlf) {
                let line = Data(buffer[buffer.startIndex..<end.lowerBound])
                buffer = Data(buffer[end.upperBound...])
                return line
            }
            guard try fill(deadline: deadline, what: "a line of a chunked body") else {
                throw HarnessError("closed inside a chunked body")
            }
        }
    }
}

/// Convenience requests to one server, each on a fresh connection with `Connection: close`.
/// Headers default to what a well-behaved local client sends (`Host: 127.0.0.1:PORT`,
/// `Content-Length` when there is a body); a header the caller passes replaces the default
/// of the same name.
struct RawHTTPClient: Sendable {
    let host: String
    let port: Int

    init(host: String = "127.0.0.1", port: Int) {
        self.host = host
        self.port = port
    }

    var hostHeader: String { "\(host):\(port)" }

    /// The exact bytes of a request with the defaults filled in.
    func requestBytes(
        _ method: String, _ target: String,
        headers: [(String, String)] = [], body: Data? = nil,
        keepAlive: Bool = false
    ) -> Data {
        var fields: [(String, String)] = []
        let names = Set(headers.map { $0.0.lowercased() })
        if !names.contains("host") { fields.append(("Host", hostHeader)) }
        fields += headers
        if let body, !names.contains("content-length"), !names.contains("transfer-encoding") {
            fields.append(("Content-Length", String(body.count)))
        }
        if !keepAlive, !names.contains("connection") { fields.append(("Connection", "close")) }
        var text = "\(method) \(target) HTTP/1.1\r\n"
        for (name, value) in fields { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        var data = Data(text.utf8)
        if let body { data.append(body) }
        return data
    }

    /// Sends exact bytes on a new connection and reads one response. Connecting and sending are
    /// one blocking step off the cooperative pool: as two, the send waited for a pool thread
    /// between them, and with the pool held by other tests for over 10 s the server answered
    /// the connection `408` (its head timeout counts from the accept), as a slow client should.
    func send(raw: Data, timeout: Duration = defaultTimeout) async throws -> RawHTTPResponse {
        let connection = try await HTTPConnection.open(host: host, port: port, sending: raw, timeout: timeout)
        defer { connection.close() }
        return try await connection.readResponse(timeout: timeout)
    }

    func request(
        _ method: String, _ target: String,
        headers: [(String, String)] = [], body: Data? = nil,
        timeout: Duration = defaultTimeout
    ) async throws -> RawHTTPResponse {
        try await send(raw: requestBytes(method, target, headers: headers, body: body), timeout: timeout)
    }

    func get(_ target: String, headers: [(String, String)] = []) async throws -> RawHTTPResponse {
        try await request("GET", target, headers: headers)
    }

    /// POST with `Content-Type: application/json` (unless `headers` sets another).
    func postJSON(_ target: String, _ body: JSON, headers: [(String, String)] = []) async throws -> RawHTTPResponse {
        try await postJSON(target, body: body.encoded, headers: headers)
    }

    func postJSON(_ target: String, body: Data, headers: [(String, String)] = []) async throws -> RawHTTPResponse {
        var fields = headers
        if !fields.contains(where: { $0.0.lowercased() == "content-type" }) {
            fields.insert(("Content-Type", "application/json"), at: 0)
        }
        return try await request("POST", target, headers: fields, body: body)
    }
}

/// Connects a blocking socket to an IPv4 literal; shared by every raw test client.
func connectIPv4(_ fd: Int32, host: String, port: Int) throws {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
        throw HarnessError("not an IPv4 address: \(host)")
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard result == 0 else {
        throw HarnessError("connect to \(host):\(port) failed: \(String(cString: strerror(errno)))")
    }
}
