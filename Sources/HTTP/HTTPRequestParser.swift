import Platform

/// What the parser made of the bytes received so far on a connection.
public enum HTTPParseResult: Sendable, Equatable {
    /// The request is not complete yet. Pass `progress` back with the same bytes and those
    /// that arrive next, and the parser carries on where it stopped instead of reading them
    /// all again. `progress.head` is set once the head is complete and valid but the body
    /// is not, so the connection can answer `Expect: 100-continue`.
    case needMore(HTTPParseProgress)
    /// A whole request; `consumed` bytes from the start of the input belong to it, and
    /// whatever follows is the start of the next (pipelined) request.
    case complete(HTTPRequest, consumed: Int)
    /// The request is invalid or over a limit; answer `status` and close.
    case failure(HTTPParseError)
}

/// How far the parser got through an incomplete request: the stage it stopped in and where,
/// so the next call starts there. Every byte before `scanned` has been checked, so each byte
/// is read a bounded number of times however the request is split into reads (re-reading
/// everything on each read costs quadratic time, e.g. for a body of many tiny chunks).
///
/// Only valid for the bytes it was made from, with more appended, and the same limits. A
/// value, not a reference: it holds positions and sizes, never the body.
public struct HTTPParseProgress: Sendable, Equatable {
    /// The request head, once it is complete and valid.
    public fileprivate(set) var head: HTTPRequestHead?
    fileprivate var stage = Stage.requestLine
    /// Where the line or chunk data the stage waits for starts.
    fileprivate var position = 0
    /// Within the line at `position`, the bytes before this index are already checked.
    fileprivate var scanned = 0
    /// Where the body starts, once the head is complete.
    fileprivate var bodyStart = 0

    /// Nothing read yet.
    init() {}

    fileprivate enum Stage: Sendable, Equatable {
        case requestLine
        /// Field lines of the head; `count` of them are checked (and collected only at the
        /// end, so that waiting holds no strings).
        case headerFields(RequestLine, sectionStart: Int, count: Int)
        /// A `Content-Length` body (or none: 0) at `bodyStart`.
        case lengthBody(Int)
        /// `size` body bytes and `framing` framing bytes are behind us.
        case chunkSizeLine(size: Int, framing: Int)
        /// `chunkSize` bytes of data at `position`, then CRLF.
        case chunkData(chunkSize: Int, size: Int, framing: Int)
        /// The trailer section after the last chunk.
        case trailerFields(size: Int, sectionStart: Int, count: Int)
    }

    fileprivate struct RequestLine: Sendable, Equatable {
        var method: Range<Int>
        var target: Range<Int>
        var version: HTTPVersion
    }

    /// Moves on to `stage`, which starts at `position`.
    fileprivate mutating func advance(to stage: Stage, at position: Int) {
        self.stage = stage
        self.position = position
        scanned = position
    }
}

/// A request head that is complete and valid, reported while its body is still arriving.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// The `Content-Length`, when the request has one.
    public var contentLength: Int?
    /// Whether the body uses the chunked transfer coding.
    public var chunked: Bool

    public init(
        method: String,
        target: String,
        version: HTTPVersion,
        headers: HTTPHeaders,
        contentLength: Int?,
        chunked: Bool
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.contentLength = contentLength
        self.chunked = chunked
    }

    /// Same rule as `HTTPRequest.expectsContinue`.
    public var expectsContinue: Bool {
        HTTPRequest.expectsContinue(version: version, headers: headers)
    }
}

/// Why a request was refused: the status to answer, a short code for the JSON error body,
/// and a sentence for a person. Messages never repeat the client's bytes, so nothing a
/// client sends ends up reflected into a response or a log line.
public struct HTTPParseError: Error, Sendable, Equatable {
    public let status: Int
    public let code: String
    public let message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func badRequest(_ message: String) -> HTTPParseError {
        HTTPParseError(status: 400, code: "bad_request", message: message)
    }

    static let bareLineFeed = badRequest("Lines must end with CRLF, not a bare LF.")
    static let bareCarriageReturn = badRequest("A CR must be followed by LF.")
    static let controlCharacter = badRequest("The request head contains a control character.")
    static let malformedRequestLine = badRequest("The request line is not 'method target HTTP-version'.")
    static let malformedVersion = badRequest("The HTTP version is malformed.")
    static let obsoleteLineFolding = badRequest("A header line starts with whitespace (obsolete line folding is not allowed).")
    static let whitespaceBeforeColon = badRequest("Whitespace between a header name and its colon is not allowed.")
    static let emptyFieldName = badRequest("A header line has an empty field name.")
    static let invalidFieldName = badRequest("A header field name contains a character that is not allowed.")
    static let missingColon = badRequest("A header line has no colon.")
    static let missingHost = badRequest("An HTTP/1.1 request must have a Host header.")
    static let multipleHosts = badRequest("The request has more than one Host header.")
    static let invalidHost = badRequest("The Host header is not a valid host[:port].")
    static let malformedTarget = badRequest("The request target is not a path, an absolute URI, an authority or *.")
    static let lengthAndEncoding = badRequest("The request has both Content-Length and Transfer-Encoding.")
    static let invalidContentLength = badRequest("Content-Length is not a valid number.")
    static let conflictingContentLength = badRequest("The request has differing Content-Length values.")
    static let encodingOnHTTP10 = badRequest("Transfer-Encoding is not allowed in an HTTP/1.0 request.")
    static let invalidChunkSize = badRequest("A chunk size is malformed.")
    static let chunkLineTooLong = badRequest("A chunk-size line is longer than \(HTTPLimits.maxChunkLineBytes) bytes.")
    static let unterminatedChunk = badRequest("Chunk data must be followed by CRLF.")

    static let unsupportedVersion = HTTPParseError(
        status: 505, code: "version_not_supported", message: "Only HTTP/1.0 and HTTP/1.1 are supported.")
    static let unsupportedEncoding = HTTPParseError(
        status: 501, code: "not_implemented", message: "Only the chunked transfer coding is supported.")
    static let lengthRequired = HTTPParseError(
        status: 411, code: "length_required",
        message: "This method needs a Content-Length header or a chunked body.")

    static func requestLineTooLong(_ limits: HTTPLimits) -> HTTPParseError {
        HTTPParseError(
            status: 414, code: "uri_too_long",
            message: "The request line is longer than \(limits.maxRequestLineBytes) bytes.")
    }

    static func headersTooLarge(_ limits: HTTPLimits) -> HTTPParseError {
        HTTPParseError(
            status: 431, code: "headers_too_large",
            message: "The header section is larger than \(limits.maxHeaderBytes) bytes.")
    }

    static func tooManyHeaders(_ limits: HTTPLimits) -> HTTPParseError {
        HTTPParseError(
            status: 431, code: "headers_too_large",
            message: "The request has more than \(limits.maxHeaderCount) header fields.")
    }

    static func bodyTooLarge(_ limits: HTTPLimits) -> HTTPParseError {
        HTTPParseError(
            status: 413, code: "payload_too_large",
            message: "The request body is larger than \(limits.maxBodyBytes) bytes.")
    }

    static func chunkFramingTooLarge(_ limits: HTTPLimits) -> HTTPParseError {
        HTTPParseError(
            status: 413, code: "payload_too_large",
            message: "The chunked body spends more than \(limits.maxChunkFramingBytes) bytes on framing.")
    }
}

/// A strict HTTP/1.x request parser (RFC 9112): a pure function from the bytes received so
/// far to a request, a request for more bytes, or a refusal.
///
/// While a request is incomplete the caller keeps the bytes and the returned progress, and
/// calls again with both once more bytes arrive; the parser resumes where it stopped, so a
/// request costs time in proportion to its size however it is split. Without a progress it
/// reads from the start, with the same result. It copies nothing until a request is
/// complete, and refuses as early as a limit is known to be exceeded: at the same byte
/// whether resumed or not. It never answers `needMore` for an input longer than
/// `limits.maxRequestBytes`.
public enum HTTPRequestParser {
    public static func parse(_ bytes: [UInt8], limits: HTTPLimits, resuming progress: HTTPParseProgress? = nil) -> HTTPParseResult {
        bytes.withUnsafeBytes { parse($0, limits: limits, resuming: progress) }
    }

    public static func parse(
        _ bytes: UnsafeRawBufferPointer, limits: HTTPLimits, resuming progress: HTTPParseProgress? = nil
    ) -> HTTPParseResult {
        var examined = 0
        return parse(bytes, limits: limits, resuming: progress, examined: &examined)
    }

    /// `examined` is increased by the bytes the scanning loops looked at, so tests can check
    /// that the work stays proportional to the input.
    static func parse(
        _ bytes: UnsafeRawBufferPointer, limits: HTTPLimits, resuming progress: HTTPParseProgress?, examined: inout Int
    ) -> HTTPParseResult {
        var scanner = Scanner(bytes: bytes, limits: limits)
        // Positions past the end cannot come from a prefix of these bytes, and reading there
        // would be out of bounds: start over rather than trust them.
        if let progress, max(progress.position, progress.scanned, progress.bodyStart) <= bytes.count {
            scanner.progress = progress
        }
        defer { examined += scanner.examined }
        do throws(Stop) {
            return try scanner.parseRequest()
        } catch {
            switch error {
            case .needMore: return .needMore(scanner.progress)
            case .failure(let failure): return .failure(failure)
            }
        }
    }
}

/// Why scanning stopped before a whole request was read.
private enum Stop: Error {
    case needMore
    case failure(HTTPParseError)
}

private let cr: UInt8 = 0x0D
private let lf: UInt8 = 0x0A
private let sp: UInt8 = 0x20
private let htab: UInt8 = 0x09

private struct Scanner {
    let bytes: UnsafeRawBufferPointer
    let limits: HTTPLimits
    /// `limits.maxChunkFramingBytes`, which is computed (and allocates): read once, not per chunk.
    let framingLimit: Int
    var progress = HTTPParseProgress()
    var examined = 0

    init(bytes: UnsafeRawBufferPointer, limits: HTTPLimits) {
        self.bytes = bytes
        self.limits = limits
        framingLimit = limits.maxChunkFramingBytes
    }

    private var end: Int { bytes.count }

    private enum Framing {
        case none
        case length(Int)
        case chunked
    }

    /// Runs the stages from where `progress` stopped until the request is complete; throws
    /// `needMore` with `progress` at the point to resume from.
    mutating func parseRequest() throws(Stop) -> HTTPParseResult {
        while true {
            let position = progress.position
            switch progress.stage {
            case .requestLine:
                try readRequestLine()

            case .headerFields(let line, let sectionStart, let count):
                if let headEnd = try fieldLineOrEnd(sectionStart: sectionStart, count: count) {
                    try finishHead(line, sectionStart: sectionStart, headEnd: headEnd, fieldCount: count)
                } else {
                    progress.stage = .headerFields(line, sectionStart: sectionStart, count: count + 1)
                }

            case .lengthBody(let length):
                // Nothing in the body is read before all of it is here.
                guard end - position >= length else { throw .needMore }
                let body = Array(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)]))
                examined += length
                return .complete(request(body: body), consumed: position + length)

            case .chunkSizeLine(let size, let framing):
                try chunkSizeLine(size: size, framing: framing)

            case .chunkData(let chunkSize, let size, let framing):
                let dataEnd = position + chunkSize
                guard dataEnd < end else { throw .needMore }
                guard bytes[dataEnd] == cr else { throw .failure(.unterminatedChunk) }
                guard dataEnd + 1 < end else { throw .needMore }
                guard bytes[dataEnd + 1] == lf else { throw .failure(.unterminatedChunk) }
                progress.advance(to: .chunkSizeLine(size: size + chunkSize, framing: framing + 2), at: dataEnd + 2)

            case .trailerFields(let size, let sectionStart, let count):
                // Checked and dropped: nothing here needs trailer fields, and merging them
                // into headers is unsafe (RFC 9110 section 6.5.1).
                if let trailerEnd = try fieldLineOrEnd(sectionStart: sectionStart, count: count) {
                    return .complete(request(body: decodeChunks(size: size)), consumed: trailerEnd)
                }
                progress.stage = .trailerFields(size: size, sectionStart: sectionStart, count: count + 1)
            }
        }
    }

    /// The complete request: the head `finishHead` parsed, with `body`.
    private func request(body: [UInt8]) -> HTTPRequest {
        // `finishHead` sets the head before any body stage; the fallback only spares a
        // crash should that ever change.
        let head = progress.head ?? HTTPRequestHead(
            method: "", target: "", version: .http11, headers: HTTPHeaders(), contentLength: nil, chunked: false)
        return HTTPRequest(method: head.method, target: head.target, version: head.version, headers: head.headers, body: body)
    }

    // MARK: Head

    private mutating func readRequestLine() throws(Stop) {
        // RFC 9112 section 2.2: a server should ignore at least one empty line received
        // before the request-line (some clients send a CRLF after a POST body). One only,
        // so a client cannot keep a connection busy with empty lines.
        if progress.position == 0 && end > 0 && bytes[0] == cr {
            guard end > 1 else { throw .needMore }
            guard bytes[1] == lf else { throw .failure(.bareCarriageReturn) }
            progress.advance(to: .requestLine, at: 2)
        }
        let start = progress.position
        let lineEnd = try self.lineEnd(maxLength: limits.maxRequestLineBytes, tooLong: HTTPParseError.requestLineTooLong)
        let line = try requestLine(from: start, to: lineEnd)
        progress.advance(to: .headerFields(line, sectionStart: lineEnd + 2, count: 0), at: lineEnd + 2)
    }

    /// Once the empty line ending the head is here: collects the fields, decides the
    /// framing and moves on to the body.
    private mutating func finishHead(
        _ line: HTTPParseProgress.RequestLine, sectionStart: Int, headEnd: Int, fieldCount: Int
    ) throws(Stop) {
        var headers = HTTPHeaders()
        // The field lines are counted already: one allocation, not one per doubling.
        headers.reserveCapacity(fieldCount)
        var fields = FramingFields()
        var position = sectionStart
        // Every line up to the empty one is checked already; this pass only copies (and
        // reads the framing fields on the way).
        while position < headEnd - 2 {
            let lineEnd = ByteWords.firstIndex(of: cr, in: bytes, from: position, to: headEnd)
            try collectField(from: position, to: lineEnd, into: &headers, framing: &fields)
            position = lineEnd + 2
        }
        examined += headEnd - sectionStart

        let framing = try framing(method: line.method, version: line.version, fields: fields)
        var contentLength: Int?
        var chunked = false
        switch framing {
        case .none: break
        case .length(let length): contentLength = length
        case .chunked: chunked = true
        }
        progress.head = HTTPRequestHead(
            method: string(line.method), target: string(line.target), version: line.version, headers: headers,
            contentLength: contentLength, chunked: chunked)
        progress.bodyStart = headEnd
        switch framing {
        case .none: progress.advance(to: .lengthBody(0), at: headEnd)
        case .length(let length): progress.advance(to: .lengthBody(length), at: headEnd)
        case .chunked: progress.advance(to: .chunkSizeLine(size: 0, framing: 0), at: headEnd)
        }
    }

    // MARK: Lines

    /// The index of the CR that ends the line starting at `progress.position`.
    ///
    /// Refuses as soon as the line is longer than `maxLength` (even before its CRLF has
    /// arrived), and at once on a bare LF, a bare CR (RFC 9112 section 2.2: line endings in
    /// the head are CRLF; accepting bare LF is what request smuggling builds on) or a
    /// control character other than HTAB (RFC 9110 section 5.5: field values may not
    /// contain CTLs; the request line cannot contain them either).
    /// Each byte is judged on its own, so a line left incomplete is resumed at
    /// `progress.scanned` rather than read again.
    /// `tooLong` is only called when needed: its message is formatted, and this runs per line.
    private mutating func lineEnd(maxLength: Int, tooLong: (HTTPLimits) -> HTTPParseError) throws(Stop) -> Int {
        let start = progress.position
        let resume = progress.scanned
        var index = resume
        while index < end {
            // Eight bytes at a time while none is a control character (CR, LF and HTAB are)
            // or DEL and the line stays within its limit: one test instead of eight; then
            // straight to the first such byte of the word (the mask's lowest flag is exact).
            while index + 8 <= end, index + 8 - start <= maxLength {
                let mask = ByteWords.controlOrDeleteMask(
                    UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)))
                if mask != 0 {
                    index += mask.trailingZeroBitCount >> 3
                    break
                }
                index += 8
            }
            guard index < end else { break }
            let byte = bytes[index]
            if byte == cr {
                // A CR in the last byte is looked at again once its LF can be.
                guard index + 1 < end else { break }
                guard bytes[index + 1] == lf else { throw .failure(.bareCarriageReturn) }
                examined += index + 2 - resume
                return index
            }
            if index - start >= maxLength { throw .failure(tooLong(limits)) }
            if byte == lf { throw .failure(.bareLineFeed) }
            if (byte < 0x20 && byte != htab) || byte == 0x7F { throw .failure(.controlCharacter) }
            index += 1
        }
        examined += index - resume
        progress.scanned = index
        throw .needMore
    }

    /// request-line = method SP request-target SP HTTP-version (RFC 9112 section 3),
    /// with exactly one SP between the parts.
    private func requestLine(from start: Int, to stop: Int) throws(Stop) -> HTTPParseProgress.RequestLine {
        var index = start
        while index < stop && isTokenByte(bytes[index]) { index += 1 }
        guard index > start, index < stop, bytes[index] == sp else { throw .failure(.malformedRequestLine) }
        let method = start..<index
        index += 1

        // The target is a URI in one of the four request-target forms; all of them are
        // visible ASCII (RFC 3986 section 2), so anything else cannot be a target.
        let targetStart = index
        while index < stop && bytes[index] > sp && bytes[index] < 0x7F { index += 1 }
        guard index > targetStart, index < stop, bytes[index] == sp else { throw .failure(.malformedRequestLine) }
        let target = targetStart..<index
        guard isRequestTargetForm(UnsafeRawBufferPointer(rebasing: bytes[target])) else { throw .failure(.malformedTarget) }
        index += 1

        return HTTPParseProgress.RequestLine(method: method, target: target, version: try version(from: index, to: stop))
    }

    /// HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 section 2.3).
    private func version(from start: Int, to stop: Int) throws(Stop) -> HTTPVersion {
        guard stop - start == 8,
              UnsafeRawBufferPointer(rebasing: bytes[start..<(start + 5)]).elementsEqual("HTTP/".utf8)
        else { throw .failure(.malformedVersion) }
        let major = bytes[start + 5] &- UInt8(ascii: "0")
        let dot = bytes[start + 6]
        let minor = bytes[start + 7] &- UInt8(ascii: "0")
        guard major < 10, dot == UInt8(ascii: "."), minor < 10 else { throw .failure(.malformedVersion) }
        guard major == 1, minor <= 1 else { throw .failure(.unsupportedVersion) }
        return HTTPVersion(major: 1, minor: Int(minor))
    }

    // MARK: Fields

    /// One step through a field section: the header section, or the trailer section of a
    /// chunked body (RFC 9112 section 7.1.2), each with the header budget. Checks the field
    /// line at `progress.position` (the section's `count + 1`th) and moves past it,
    /// returning nil; or, at the empty line that ends the section, returns the index after it.
    private mutating func fieldLineOrEnd(sectionStart: Int, count: Int) throws(Stop) -> Int? {
        let position = progress.position
        guard position < end else { throw .needMore }
        let first = bytes[position]
        if first == cr {
            guard position + 1 < end else { throw .needMore }
            guard bytes[position + 1] == lf else { throw .failure(.bareCarriageReturn) }
            return position + 2
        }
        // RFC 9112 section 5.2: obs-fold is rejected rather than unfolded; a line that
        // starts with whitespace right after the request line is the same trick
        // (section 2.2).
        if first == sp || first == htab { throw .failure(.obsoleteLineFolding) }
        if count == limits.maxHeaderCount { throw .failure(.tooManyHeaders(limits)) }
        let used = position - sectionStart
        let lineEnd = try self.lineEnd(maxLength: limits.maxHeaderBytes - used - 2, tooLong: HTTPParseError.headersTooLarge)
        try fieldLine(from: position, to: lineEnd)
        progress.position = lineEnd + 2
        progress.scanned = lineEnd + 2
        return nil
    }

    /// Checks field-line = field-name ":" OWS field-value OWS (RFC 9112 section 5). The line
    /// has already been checked for control characters.
    private func fieldLine(from start: Int, to stop: Int) throws(Stop) {
        var index = start
        while index < stop && isTokenByte(bytes[index]) { index += 1 }
        guard index < stop else { throw .failure(.missingColon) }
        switch bytes[index] {
        case UInt8(ascii: ":"):
            guard index > start else { throw .failure(.emptyFieldName) }
        case sp, htab:
            // RFC 9112 section 5.1: no whitespace between name and colon, must be 400.
            throw .failure(.whitespaceBeforeColon)
        default:
            throw .failure(.invalidFieldName)
        }
    }

    /// Adds a field line `fieldLine` has checked to `headers`: its name ends at the first
    /// colon (a token has none), its value is the rest without the whitespace around it.
    /// A framing field is read into `framing` from its bytes, and refused here when invalid,
    /// in the order the fields came.
    private func collectField(
        from start: Int, to stop: Int, into headers: inout HTTPHeaders, framing: inout FramingFields
    ) throws(Stop) {
        let colon = ByteWords.firstIndex(of: UInt8(ascii: ":"), in: bytes, from: start, to: stop)
        let name = UnsafeRawBufferPointer(rebasing: bytes[start..<colon])
        var valueStart = colon + 1
        var valueEnd = stop
        while valueStart < valueEnd && isWhitespace(bytes[valueStart]) { valueStart += 1 }
        while valueEnd > valueStart && isWhitespace(bytes[valueEnd - 1]) { valueEnd -= 1 }
        let key = HTTPHeaders.lookupKey(bytes: name)
        try framing.read(name: name, key: key, value: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]))
        headers.append(name: interned(start..<colon, from: Self.commonNames),
                       value: interned(valueStart..<valueEnd, from: Self.commonValues), key: key)
    }

    /// Field names nearly every webhook sender uses, as they write them (`InternedStrings`).
    static let commonNames = InternedStrings([
        "Host", "User-Agent", "Accept", "Accept-Encoding", "Content-Type", "Content-Length", "Connection", "Expect",
        "Transfer-Encoding", "Authorization", "X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id",
        "X-Source-Id", "X-Timestamp", "X-Webhook-Id", "X-Signature", "X-Delivery-Id", "X-Event-Type",
        "X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID", "X-GitHub-Hook-Installation-Target-ID",
        "X-GitHub-Hook-Installation-Target-Type", "X-Hub-Signature", "X-Hub-Signature-256", "Stripe-Signature",
        "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp", "svix-signature",
        "X-Slack-Signature", "X-Slack-Request-Timestamp",
        "host", "user-agent", "accept", "accept-encoding", "content-type", "content-length", "connection",
        "x-source-id", "x-timestamp", "x-webhook-id", "x-signature", "x-github-event", "x-github-delivery",
        "x-hub-signature-256", "stripe-signature",
    ])

    /// Field values as common (`InternedStrings`).
    static let commonValues = InternedStrings([
        "application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8",
        "application/x-www-form-urlencoded", "*/*", "close", "keep-alive", "100-continue", "chunked", "gzip",
    ])

    private func interned(_ range: Range<Int>, from table: InternedStrings) -> String {
        table.string(equalTo: UnsafeRawBufferPointer(rebasing: bytes[range])) ?? string(range)
    }

    // MARK: Framing

    /// What the framing fields of a head said (`Host`, `Content-Length`, `Transfer-Encoding`),
    /// read from their bytes as the fields are collected.
    fileprivate struct FramingFields {
        var hostCount = 0
        var contentLength: Int?
        var encodingCount = 0
        /// Whether the first `Transfer-Encoding` value is exactly the coding `chunked`.
        var firstEncodingIsChunked = false

        /// Reads one field if it is a framing field: checks a `Host` value (RFC 9112 section
        /// 3.2: an invalid one is a 400, like two of them) and a `Content-Length`, whose list
        /// of identical values may be taken as that value (section 6.3 item 5; anything else
        /// is unrecoverable). `key` is `HTTPHeaders.lookupKey` of `name`: the three names
        /// differ in it, so most fields cost one comparison.
        @inline(__always)
        mutating func read(name: UnsafeRawBufferPointer, key: UInt32, value: UnsafeRawBufferPointer) throws(Stop) {
            switch key {
            case Self.hostKey where Self.equal(name, "host"):
                hostCount += 1
                guard Scanner.isValidHost(value) else { throw .failure(.invalidHost) }
            case Self.lengthKey where Self.equal(name, "content-length"):
                var start = 0
                while true {
                    let comma = ByteWords.firstIndex(of: UInt8(ascii: ","), in: value, from: start, to: value.count)
                    let length = try Scanner.contentLength(UnsafeRawBufferPointer(rebasing: value[start..<comma]))
                    if let contentLength, contentLength != length { throw .failure(.conflictingContentLength) }
                    contentLength = length
                    guard comma < value.count else { break }
                    start = comma + 1
                }
            case Self.encodingKey where Self.equal(name, "transfer-encoding"):
                encodingCount += 1
                if encodingCount == 1 { firstEncodingIsChunked = Self.equal(value, "chunked") }
            default:
                break
            }
        }

        /// Length, first and last letter of each name, as `HTTPHeaders.lookupKey` makes them.
        private static let hostKey: UInt32 = 4 << 16 | 0x68 << 8 | 0x74  // h...t
        private static let lengthKey: UInt32 = 14 << 16 | 0x63 << 8 | 0x68  // c...h
        private static let encodingKey: UInt32 = 17 << 16 | 0x74 << 8 | 0x67  // t...g

        /// Whether `bytes` spell `lowercased` ignoring ASCII case.
        @inline(__always)
        private static func equal(_ bytes: UnsafeRawBufferPointer, _ lowercased: StaticString) -> Bool {
            bytes.count == lowercased.utf8CodeUnitCount
                && ByteWords.equalIgnoringASCIICase(bytes.baseAddress!, UnsafeRawPointer(lowercased.utf8Start), count: bytes.count)
        }
    }

    /// Decides how the body is delimited (RFC 9112 section 6), refusing every ambiguous
    /// combination that could let two parsers disagree about where a request ends.
    private func framing(method: Range<Int>, version: HTTPVersion, fields: FramingFields) throws(Stop) -> Framing {
        // RFC 9112 section 3.2: exactly one Host in HTTP/1.1; never more than one.
        if fields.hostCount > 1 { throw .failure(.multipleHosts) }
        if fields.hostCount == 0 && version == .http11 { throw .failure(.missingHost) }

        if fields.encodingCount > 0 {
            // RFC 9112 section 6.1: both headers at once is a smuggling attempt or a broken
            // intermediary; section 6.3 item 3 lets a server reject it, which is safer than
            // guessing.
            if fields.contentLength != nil { throw .failure(.lengthAndEncoding) }
            // RFC 9112 section 6.1: HTTP/1.0 has no transfer codings.
            if version == .http10 { throw .failure(.encodingOnHTTP10) }
            // Several Transfer-Encoding fields combine into one list (RFC 9110 section 5.3),
            // and any list other than the single coding "chunked" is one we do not
            // implement (section 6.1: 501).
            guard fields.encodingCount == 1, fields.firstEncodingIsChunked else {
                throw .failure(.unsupportedEncoding)
            }
            return .chunked
        }
        if let contentLength = fields.contentLength {
            // Refused from the header alone, before any of the body is read (README "Security model").
            if contentLength > limits.maxBodyBytes { throw .failure(.bodyTooLarge(limits)) }
            return .length(contentLength)
        }
        // RFC 9112 section 6.3 item 7: a request without either has no body; for methods
        // that always carry one that is almost surely a client error, so ask for a length.
        if Self.methodRequiresLength(UnsafeRawBufferPointer(rebasing: bytes[method])) {
            throw .failure(.lengthRequired)
        }
        return .none
    }

    /// Host = uri-host [ ":" port ] (RFC 9110 section 7.2, RFC 3986 section 3.2.2): an IP literal
    /// in brackets, or a name or IPv4 address of unreserved, sub-delims and `%` characters, then
    /// optionally a colon and digits. Empty is valid (a target with no authority).
    static func isValidHost(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        if bytes.first == UInt8(ascii: "[") {
            index = 1
            while index < bytes.count, bytes[index] != UInt8(ascii: "]") {
                guard isIPLiteralByte(bytes[index]) else { return false }
                index += 1
            }
            guard index < bytes.count, index > 1 else { return false }
            index += 1
        } else {
            while index < bytes.count, bytes[index] != UInt8(ascii: ":") {
                guard isRegNameByte(bytes[index]) else { return false }
                index += 1
            }
        }
        guard index < bytes.count else { return true }
        guard bytes[index] == UInt8(ascii: ":") else { return false }
        for port in (index + 1)..<bytes.count where bytes[port] &- UInt8(ascii: "0") >= 10 { return false }
        return true
    }

    /// unreserved / pct-encoded / sub-delims (RFC 3986 section 3.2.2 reg-name).
    private static func isRegNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }

    /// What an IPv6 address or an IPvFuture literal is made of (RFC 3986 section 3.2.2).
    private static func isIPLiteralByte(_ byte: UInt8) -> Bool {
        isRegNameByte(byte) || byte == UInt8(ascii: ":")
    }

    /// Content-Length = 1*DIGIT (RFC 9110 section 8.6), with the list element's OWS removed.
    /// A valid number too large for an `Int` is `Int.max`: too large a body (413), not a bad
    /// request.
    fileprivate static func contentLength(_ element: UnsafeRawBufferPointer) throws(Stop) -> Int {
        var first = 0
        var end = element.count
        while first < end && (element[first] == sp || element[first] == htab) { first += 1 }
        while end > first && (element[end - 1] == sp || element[end - 1] == htab) { end -= 1 }
        guard first < end else { throw .failure(.invalidContentLength) }
        var value = 0
        for byte in element[first..<end] {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { throw .failure(.invalidContentLength) }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(Int(digit))
            value = overflow1 || overflow2 || value == .max ? .max : sum
        }
        return value
    }

    private static func methodRequiresLength(_ method: UnsafeRawBufferPointer) -> Bool {
        method.elementsEqual("POST".utf8) || method.elementsEqual("PUT".utf8) || method.elementsEqual("PATCH".utf8)
    }

    // MARK: Chunked body (RFC 9112 section 7.1)

    private mutating func chunkSizeLine(size: Int, framing: Int) throws(Stop) {
        let position = progress.position
        // The line may use what is left of the framing budget (keeping 2 bytes for its
        // CRLF), so an over-long line is refused before it is complete.
        let room = framingLimit - framing - 2
        let lineEnd = try self.lineEnd(
            maxLength: min(HTTPLimits.maxChunkLineBytes, room),
            tooLong: { room < HTTPLimits.maxChunkLineBytes ? .chunkFramingTooLarge($0) : .chunkLineTooLong })
        let framing = framing + lineEnd - position + 2
        let chunkSize = try self.chunkSize(from: position, to: lineEnd)

        if chunkSize == 0 {
            // last-chunk, then the trailer section.
            progress.advance(to: .trailerFields(size: size, sectionStart: lineEnd + 2, count: 0), at: lineEnd + 2)
            return
        }
        guard chunkSize <= limits.maxBodyBytes - size else { throw .failure(.bodyTooLarge(limits)) }
        // The CRLF after the data counts as framing; refuse before waiting for the data.
        guard framing + 2 <= framingLimit else { throw .failure(.chunkFramingTooLarge(limits)) }
        progress.advance(to: .chunkData(chunkSize: chunkSize, size: size, framing: framing), at: lineEnd + 2)
    }

    /// chunk-size [ chunk-ext ], where chunk-size = 1*HEXDIG and
    /// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ).
    /// Extensions carry nothing we use, so after the size only their start is checked; the
    /// line itself is bounded and free of control characters.
    private func chunkSize(from start: Int, to stop: Int) throws(Stop) -> Int {
        var index = start
        var value = 0
        while index < stop, let digit = HTTPRequest.hexValue(bytes[index]) {
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 16)
            let (sum, overflow2) = shifted.addingReportingOverflow(Int(digit))
            guard !overflow1 && !overflow2 else { throw .failure(.invalidChunkSize) }
            value = sum
            index += 1
        }
        guard index > start else { throw .failure(.invalidChunkSize) }
        if index < stop {
            while index < stop && isWhitespace(bytes[index]) { index += 1 }
            guard index < stop, bytes[index] == UInt8(ascii: ";") else { throw .failure(.invalidChunkSize) }
        }
        return value
    }

    /// The `size` bytes of data of the chunked body at `progress.bodyStart`, whose framing
    /// has all been checked: this pass only reads the sizes and copies, once.
    private mutating func decodeChunks(size: Int) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(size)
        var position = progress.bodyStart
        while body.count < size {
            var chunkSize = 0
            while let digit = HTTPRequest.hexValue(bytes[position]) {
                chunkSize = chunkSize &* 16 &+ Int(digit)
                position += 1
            }
            while bytes[position] != cr { position += 1 }
            position += 2
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[position..<(position + chunkSize)]))
            position += chunkSize + 2
        }
        examined += position - progress.bodyStart
        return body
    }

    // MARK: Bytes

    private func string(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}
@inline(__always)
func isWhitespace(_ byte: UInt8) -> Bool {
    byte == sp || byte == htab
}

/// request-target = origin-form / absolute-form / authority-form / asterisk-form (RFC 9112
/// section 3.2): `/path`, `scheme:…` (an authority `host:port` reads the same way) or `*`.
/// Anything else (`GET health`) is no target at all: `400`, not a `404` for a route.
func isRequestTargetForm(_ target: UnsafeRawBufferPointer) -> Bool {
    guard let first = target.first else { return false }
    if first == UInt8(ascii: "/") { return true }
    if target.count == 1 && first == UInt8(ascii: "*") { return true }
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":".
    guard (first | 0x20) &- UInt8(ascii: "a") < 26 else { return false }
    for byte in target.dropFirst() {
        if byte == UInt8(ascii: ":") { return true }
        let isSchemeByte = (byte | 0x20) &- UInt8(ascii: "a") < 26 || byte &- UInt8(ascii: "0") < 10
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        guard isSchemeByte else { return false }
    }
    return false
}

/// tchar (RFC 9110 section 5.6.2): the characters of a method or a field name.
@inline(__always)
func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"),
         UInt8(ascii: "A")...UInt8(ascii: "Z"),
         UInt8(ascii: "0")...UInt8(ascii: "9"),
         UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
         UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
         UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
         UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}
