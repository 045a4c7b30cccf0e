import Platform

/// An HTTP/1.1 response ready to be written to a connection.
///
/// The writer owns the framing: `Content-Length` and `Connection` are always its own, so a
/// caller can never send a length that disagrees with the body. No CORS headers are ever
/// added (README "Security model": a browser page must not be able to read these answers).
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Extra header fields, written in order after the framing ones.
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response (all answers of this server are JSON, README "HTTP API"); the
    /// `Content-Type` comes from `serialized(keepAlive:)`.
    public static func json(status: Int, body: [UInt8], extraHeaders: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: extraHeaders, body: body)
    }

    /// The response as bytes:
    /// `HTTP/1.1 <status> <reason>`, `Content-Type: application/json` when there is a body
    /// and no Content-Type was set, `Content-Length`, `Connection`, the extra headers, an
    /// empty line, the body.
    ///
    /// Extra `Content-Length`, `Transfer-Encoding` and `Connection` fields are left out,
    /// since the framing is this function's. A 1xx or 204 response has no content
    /// (RFC 9110 sections 15.2 and 15.3.5, and 8.6: no Content-Length on them), so it is
    /// written as the status line, the extra headers and the empty line only.
    /// The answer's bytes. `omittingBody` is the answer to `HEAD`: every field of the `GET`
    /// answer, `Content-Length` included, and no content (RFC 9110 section 9.3.2).
    public func serialized(keepAlive: Bool, omittingBody: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        serialize(keepAlive: keepAlive, omittingBody: omittingBody, into: &out)
        return out
    }

    /// `serialized`, appended to `out` (a connection's output buffer, reused answer after answer).
    public func serialize(keepAlive: Bool, omittingBody: Bool = false, into out: inout [UInt8]) {
        let hasContent = !(100...199).contains(status) && status != 204
        // At least the room the `200` below asks for: with less, a new connection's empty
        // buffer was allocated here and then again there.
        var size = Self.okHeadRoom + (hasContent && !omittingBody ? body.count : 0)
        for (name, value) in headers {
            size += name.utf8.count + value.utf8.count + 4
        }
        // Grown geometrically: answers piling up for a client that does not read are appended
        // one after another, and an exact reservation each time would copy them all each time.
        if out.capacity < out.count + size { out.reserveCapacity(max(out.count + size, 2 * out.capacity)) }

        // The answer nearly every request gets (a webhook's `200`, its JSON and nothing
        // else): written in one go, the head from two literals and a number; the same bytes
        // as below.
        if status == 200 && headers.isEmpty && !body.isEmpty {
            out.append(addingCapacity: Self.okHeadRoom + (omittingBody ? 0 : body.count)) { span in
                span.withUnsafeMutableBufferPointer { buffer, initialized in
                    let start = buffer.baseAddress!
                    var at = start
                    Self.put("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ", at: &at)
                    at += writeDecimal(body.count, to: at)
                    Self.put(keepAlive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n", at: &at)
                    if !omittingBody {
                        body.withUnsafeBufferPointer { at.update(from: $0.baseAddress!, count: $0.count) }
                        at += body.count
                    }
                    initialized = at - start
                }
            }
            return
        }

        // The status line and the framing fields are this server's own constant text: written
        // from byte constants (this is every answer's cost, the webhook `200` included); only
        // the caller's extra fields go through `appendField`'s sanitising.
        Self.appendStatusLine(status, to: &out)
        if hasContent {
            if !body.isEmpty && !headers.contains(where: { HTTPHeaders.namesEqual($0.0, "Content-Type") }) {
                out.append(contentsOf: Self.jsonContentTypeField)
            }
            out.append(contentsOf: Self.contentLengthName)
            out.appendDecimal(body.count)
            out.append(contentsOf: keepAlive ? Self.keepAliveField : Self.closeField)
        }
        for (name, value) in headers where !Self.isFraming(name) {
            Self.appendField(name, value, to: &out)
        }
        out.append(contentsOf: Self.crlf)
        if hasContent && !omittingBody {
            out.append(contentsOf: body)
        }
    }

    /// The most the `200` head above takes: its literals and a 20-digit length.
    private static let okHeadRoom = 128

    @inline(__always)
    private static func put(_ text: StaticString, at: inout UnsafeMutablePointer<UInt8>) {
        ByteWords.copy(from: text.utf8Start, count: text.utf8CodeUnitCount, to: at)
        at += text.utf8CodeUnitCount
    }

    private static let statusLineStart: [UInt8] = Array("HTTP/1.1 ".utf8)
    private static let okStatusLine: [UInt8] = Array("HTTP/1.1 200 OK\r\n".utf8)
    private static let jsonContentTypeField: [UInt8] = Array("Content-Type: application/json\r\n".utf8)
    private static let contentLengthName: [UInt8] = Array("Content-Length: ".utf8)
    private static let keepAliveField: [UInt8] = Array("\r\nConnection: keep-alive\r\n".utf8)
    private static let closeField: [UInt8] = Array("\r\nConnection: close\r\n".utf8)

    private static func appendStatusLine(_ status: Int, to out: inout [UInt8]) {
        if status == 200 {
            out.append(contentsOf: okStatusLine)
            return
        }
        out.append(contentsOf: statusLineStart)
        out.appendDecimal(status)
        out.append(space)
        appendSanitized(reasonPhrase(for: status), to: &out)
        out.append(contentsOf: crlf)
    }

    /// Reason phrases for every status this server sends (README "HTTP API" and "Security model"), with the
    /// RFC 9110 wording. Any other status gets an empty reason, which RFC 9112 section 4
    /// allows.
    public static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 417: return "Expectation Failed"
        case 421: return "Misdirected Request"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return ""
        }
    }

    private static let space: UInt8 = 0x20
    private static let crlf: [UInt8] = [0x0D, 0x0A]

    private static func isFraming(_ name: String) -> Bool {
        HTTPHeaders.namesEqual(name, "Content-Length")
            || HTTPHeaders.namesEqual(name, "Transfer-Encoding")
            || HTTPHeaders.namesEqual(name, "Connection")
    }

    /// Control characters in a name or value would let a header value start a new header
    /// line (response splitting), so each becomes a space. Values here come from this
    /// server, but this keeps the guarantee in one place.
    private static func appendField(_ name: String, _ value: String, to out: inout [UInt8]) {
        appendSanitized(name, to: &out)
        out.append(UInt8(ascii: ":"))
        out.append(space)
        appendSanitized(value, to: &out)
        out.append(contentsOf: crlf)
    }

    private static func appendSanitized(_ text: String, to out: inout [UInt8]) {
        text.withUTF8Bytes { bytes in
            // Nearly every value is clean: copied whole; otherwise byte by byte.
            if !bytes.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
                out.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                out.append((byte < 0x20 && byte != 0x09) || byte == 0x7F ? space : byte)
            }
        }
    }
}

/// What a responder gives back for one request: the answer now, or an answer that follows on
/// the loop thread (after the event log holds the event it acknowledges, or after a file
/// change made on another thread). Requests pipelined behind a pending answer wait for it, so
/// answers keep their order.
public enum HTTPReply: Sendable {
    case now(HTTPResponse)
    case later(Pending<HTTPResponse>)
}
