import Foundation
import Platform
import Socket

/// One HTTP/1.1 POST to a callback URL, on plain sockets (TLS through libssl for https). Runs
/// on its own thread so a slow receiver never blocks the event loop or the MCP loop. Redirects
/// are never followed: a 3xx is reported as what it is.
public enum CallbackClient {
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

    public static func post(url: String, headers: [(String, String)], body: [UInt8], policy: CallbackURLPolicy,
                            timeout: Double = 10) async -> Result<Response, Failure>
    {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: postBlocking(url: url, headers: headers, body: body, policy: policy, timeout: timeout))
            }
            thread.name = "callback-client"
            thread.start()
        }
    }

    static func postBlocking(url: String, headers: [(String, String)], body: [UInt8], policy: CallbackURLPolicy,
                             timeout: Double) -> Result<Response, Failure>
    {
        let deadline = Date().addingTimeInterval(timeout)
        let target: CallbackURLPolicy.Target
        do { target = try policy.check(url) } catch { return .failure(Failure(reason: error.reason, retryable: false)) }

        let addresses = resolveAll(host: target.host, port: target.port)
        do { try policy.checkResolved(addresses.map(\.host)) } catch {
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
                                 body: [UInt8], deadline: Date) -> Result<Response, Failure>
    {
        defer { stream.shutdown() }
        let defaultPort: UInt16 = target.scheme == "https" ? 443 : 80
        let hostHeader = (target.host.contains(":") ? "[\(target.host)]" : target.host)
            + (target.port == defaultPort ? "" : ":\(target.port)")
        var head = "POST \(target.pathAndQuery) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: webhook-channel\r\n"
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers where !name.contains("\r") && !value.contains("\r") && !value.contains("\n") {
            head += "\(name): \(value)\r\n"
        }
        head += "\r\n"
        guard stream.writeAll(Array(head.utf8) + body, deadline: deadline) else {
            return .failure(Failure(reason: "the receiver closed the connection or timed out while we sent", retryable: true))
        }
        // Read just the head: the status decides, the body is not needed.
        var received: [UInt8] = []
        while received.count < 64 * 1024 {
            guard let chunk = stream.read(deadline: deadline) else {
                return .failure(Failure(reason: "no answer within the timeout", retryable: true))
            }
            if chunk.isEmpty { break }
            received.append(contentsOf: chunk)
            if let (parsed, bodyStart, length) = parseHead(received), received.count - bodyStart >= length {
                var response = parsed
                response.body = Array(received[bodyStart..<(bodyStart + length)])
                return .success(response)
            }
        }
        if let (parsed, bodyStart, _) = parseHead(received) {
            var response = parsed
            response.body = Array(received[min(bodyStart, received.count)...])
            return .success(response)
        }
        return .failure(Failure(reason: "the receiver's answer was not HTTP", retryable: true))
    }

    /// The status, where the body starts, and its announced length (a bounded guess without one).
    static func parseHead(_ bytes: [UInt8]) -> (Response, bodyStart: Int, length: Int)? {
        guard let end = findHeadEnd(bytes) else { return nil }
        let text = String(decoding: bytes[0..<end], as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]),
              (100...599).contains(status) else { return nil }
        if status == 100 {
            return parseHead(Array(bytes[(end + 4)...])).map { ($0.0, $0.bodyStart + end + 4, $0.length) }
        }
        var retryAfter: Double? = nil
        var length = 64 * 1024
        for line in lines.dropFirst() {
            let pieces = line.split(separator: ":", maxSplits: 1)
            if pieces.count == 2, pieces[0].lowercased() == "retry-after" {
                retryAfter = Double(pieces[1].trimmingCharacters(in: .whitespaces))
            }
            if pieces.count == 2, pieces[0].lowercased() == "content-length",
               let value = Int(pieces[1].trimmingCharacters(in: .whitespaces)) {
                length = min(value, 64 * 1024)
            }
        }
        return (Response(status: status, retryAfter: retryAfter), end + 4, length)
    }

    private static func findHeadEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    static func resolveAll(host: String, port: UInt16) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = StreamSocket.type
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var addresses: [SocketAddress] = []
        var entry = result
        while let current = entry {
            if let raw = current.pointee.ai_addr,
               let address = SocketAddress(raw: UnsafeRawPointer(raw), length: Int(current.pointee.ai_addrlen))
            {
                addresses.append(address)
            }
            entry = current.pointee.ai_next
        }
        return addresses
    }

    private static func connect(to address: SocketAddress, deadline: Date) -> Result<Int32, SocketError> {
        let fd = StreamSocket.make(family: address.protocolFamily)
        guard fd >= 0 else { return .failure(.system("socket")) }
        let started = address.withSockaddr { Foundation.connect(fd, $0, $1) }
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

/// A connected byte stream with deadlines: plain TCP or TLS.
protocol ByteStream {
    func writeAll(_ bytes: [UInt8], deadline: Date) -> Bool
    /// `nil` on timeout or error, empty at end of stream.
    func read(deadline: Date) -> [UInt8]?
    func shutdown()
}

struct PlainStream: ByteStream {
    let fd: Int32

    static func waitFor(fd: Int32, events: Int16, deadline: Date) -> Bool {
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&entry, 1, Int32(min(remaining * 1000, 60_000)) + 1)
            if n > 0 { return true }
            if n < 0 && errno != EINTR { return false }
        }
    }

    func writeAll(_ bytes: [UInt8], deadline: Date) -> Bool {
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

    func read(deadline: Date) -> [UInt8]? {
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
