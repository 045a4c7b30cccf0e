/// The head of one HTTP/1.x response, as the client side reads it.
public struct HTTPResponseHead: Sendable, Equatable {
    public var version: HTTPVersion
    public var status: Int
    public var headers: HTTPHeaders
    /// Where the body starts: the bytes of this head and of any interim (1xx) heads before it.
    public var bodyStart: Int

    public init(version: HTTPVersion, status: Int, headers: HTTPHeaders, bodyStart: Int) {
        self.version = version
        self.status = status
        self.headers = headers
        self.bodyStart = bodyStart
    }

    /// The announced body length: the first `Content-Length` that is all digits; nil when
    /// there is none (the body then runs to the end of the connection).
    public var contentLength: Int? {
        for value in headers.values(for: "Content-Length") {
            let digits = HTTPRequest.trimmingOWS(Substring(value))
            if !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) {
                return Int(digits)
            }
        }
        return nil
    }

    /// Seconds to wait from the first `Retry-After` (RFC 9110 section 10.2.3): a number of
    /// seconds (digits only), or an HTTP-date, counted from `now` (seconds since 1970; a date
    /// already past is 0). Nil without one, or for anything else (`-5`, `1.5`, `soon`): the
    /// caller's own schedule applies.
    public func retryAfter(now: Double) -> Double? {
        guard let value = headers["Retry-After"] else { return nil }
        let text = HTTPRequest.trimmingOWS(Substring(value))
        if !text.isEmpty, text.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) {
            return text.utf8.count <= 9 ? Double(text) : Double(999_999_999)
        }
        return HTTPDate.parse(Substring(text), now: now).map { max(0, $0 - now) }
    }
}

public enum HTTPResponseHeadResult: Sendable, Equatable {
    /// No complete final head yet, and nothing wrong so far.
    case needMore
    case complete(HTTPResponseHead)
    case failure(HTTPResponseParseError)
}

public struct HTTPResponseParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }

    static let bareLineEnd = HTTPResponseParseError(reason: "a line of the head does not end with CRLF")
    static let malformedStatusLine = HTTPResponseParseError(reason: "the status line is not 'HTTP/1.x NNN reason'")
    static let obsoleteLineFolding = HTTPResponseParseError(reason: "a header line starts with whitespace")
    static func statusLineTooLong(_ limits: HTTPLimits) -> HTTPResponseParseError {
        HTTPResponseParseError(reason: "the status line is longer than \(limits.maxRequestLineBytes) bytes")
    }
    static func headersTooLarge(_ limits: HTTPLimits) -> HTTPResponseParseError {
        HTTPResponseParseError(reason: "the header section is larger than \(limits.maxHeaderBytes) bytes")
    }
    static func tooManyHeaders(_ limits: HTTPLimits) -> HTTPResponseParseError {
        HTTPResponseParseError(reason: "the answer has more than \(limits.maxHeaderCount) header fields")
    }
}

/// The client side's response reader: a pure function from the bytes received so far to the
/// final response head, next to `HTTPRequestParser` and bounded by the same `HTTPLimits`
/// (the request line's limit for the status line, the header budget and count per head).
///
/// Strict where it decides what the answer is: the status line must be
/// `HTTP/1.<digit> <3 digits>[ <reason>]` with a status in 100...599, and every line of the
/// head must end with CRLF. Lenient in the fields: a line that is not
/// `token ":" value` without control characters is skipped, not fatal, because the status
/// alone decides whether a reply was delivered, and calling an accepted reply a failure
/// would deliver it twice. Interim answers (1xx other than 101, such as `100 Continue`) are
/// skipped (RFC 9110 section 15.2); the head after them is the answer.
public enum HTTPResponseParser {
    public static func parseHead(_ bytes: [UInt8], limits: HTTPLimits = .standard) -> HTTPResponseHeadResult {
        var start = 0
        while true {
            switch parseOneHead(bytes, from: start, limits: limits) {
            case .complete(let head) where (100...199).contains(head.status) && head.status != 101:
                start = head.bodyStart
            case let other:
                return other
            }
        }
    }

    private enum Line {
        case needMore
        case failure(HTTPResponseParseError)
        /// The line's bytes end at `end` (its CR); the next line starts at `end + 2`.
        case line(end: Int)
    }

    /// The CRLF that ends the line at `start`, refusing a bare CR or LF and a line longer
    /// than `maxLength` as soon as it is seen.
    private static func lineEnd(_ bytes: [UInt8], from start: Int, maxLength: Int,
                                tooLong: HTTPResponseParseError) -> Line
    {
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0D {
                guard index + 1 < bytes.count else { return .needMore }
                return bytes[index + 1] == 0x0A ? .line(end: index) : .failure(.bareLineEnd)
            }
            if byte == 0x0A { return .failure(.bareLineEnd) }
            if index - start >= maxLength { return .failure(tooLong) }
            index += 1
        }
        return index - start > maxLength ? .failure(tooLong) : .needMore
    }

    private static func parseOneHead(_ bytes: [UInt8], from start: Int, limits: HTTPLimits) -> HTTPResponseHeadResult {
        let statusEnd: Int
        switch lineEnd(bytes, from: start, maxLength: limits.maxRequestLineBytes, tooLong: .statusLineTooLong(limits)) {
        case .needMore: return .needMore
        case .failure(let error): return .failure(error)
        case .line(let end): statusEnd = end
        }
        guard let (version, status) = statusLine(bytes[start..<statusEnd]) else { return .failure(.malformedStatusLine) }

        var headers = HTTPHeaders()
        let sectionStart = statusEnd + 2
        var position = sectionStart
        var count = 0
        while true {
            guard position < bytes.count else { return .needMore }
            if bytes[position] == 0x0D {
                guard position + 1 < bytes.count else { return .needMore }
                guard bytes[position + 1] == 0x0A else { return .failure(.bareLineEnd) }
                return .complete(HTTPResponseHead(version: version, status: status, headers: headers, bodyStart: position + 2))
            }
            if isWhitespace(bytes[position]) { return .failure(.obsoleteLineFolding) }
            if count == limits.maxHeaderCount { return .failure(.tooManyHeaders(limits)) }
            let budget = limits.maxHeaderBytes - (position - sectionStart) - 2
            switch lineEnd(bytes, from: position, maxLength: budget, tooLong: .headersTooLarge(limits)) {
            case .needMore: return .needMore
            case .failure(let error): return .failure(error)
            case .line(let end):
                if let field = fieldLine(bytes[position..<end]) { headers.append(name: field.name, value: field.value) }
                count += 1
                position = end + 2
            }
        }
    }

    /// status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 section 4);
    /// a missing SP after the code is accepted, as senders leave it out with an empty reason.
    private static func statusLine(_ line: ArraySlice<UInt8>) -> (HTTPVersion, Int)? {
        let bytes = Array(line)
        guard bytes.count >= 12, bytes[0..<7].elementsEqual("HTTP/1.".utf8) else { return nil }
        let minor = bytes[7] &- UInt8(ascii: "0")
        guard minor < 10, bytes[8] == 0x20 else { return nil }
        var status = 0
        for byte in bytes[9..<12] {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            status = status * 10 + Int(digit)
        }
        guard (100...599).contains(status), bytes.count == 12 || bytes[12] == 0x20 else { return nil }
        return (HTTPVersion(major: 1, minor: Int(minor)), status)
    }

    /// field-line = field-name ":" OWS field-value OWS (RFC 9112 section 5), or nil for a
    /// line that is not one.
    private static func fieldLine(_ line: ArraySlice<UInt8>) -> (name: String, value: String)? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
              line[..<colon].allSatisfy(isTokenByte),
              !line.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F })
        else { return nil }
        var value = line[(colon + 1)...]
        while let first = value.first, isWhitespace(first) { value = value.dropFirst() }
        while let last = value.last, isWhitespace(last) { value = value.dropLast() }
        return (String(decoding: line[..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self))
    }
}
