/// Size limits the request parser enforces (README "Security model").
///
/// Every limit bounds how much a connection has to buffer before the parser either
/// finishes the request or refuses it, so one client can never make the server hold an
/// unbounded amount of memory.
public struct HTTPLimits: Sendable, Equatable {
    /// Longest request line, without its CRLF; longer → `414`.
    public var maxRequestLineBytes: Int
    /// Largest header section: the field lines with their CRLFs, without the request line
    /// and without the empty line that ends the head; larger → `431`.
    /// The trailer section of a chunked body gets the same budget.
    public var maxHeaderBytes: Int
    /// Most header fields (and, separately, trailer fields); more → `431`.
    public var maxHeaderCount: Int
    /// Largest body after chunked decoding; larger → `413`.
    public var maxBodyBytes: Int

    public init(
        maxRequestLineBytes: Int = 8192,
        maxHeaderBytes: Int = 16384,
        maxHeaderCount: Int = 100,
        maxBodyBytes: Int = 1 << 20
    ) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }

    public static let standard = HTTPLimits()

    /// Longest chunk-size line (hex size plus chunk extensions, without CRLF). Extensions
    /// carry nothing we use, but they still have to be bounded (RFC 9112 section 7.1.1).
    public static let maxChunkLineBytes = 4096

    /// Bytes a chunked body may spend on framing: chunk-size lines, extensions and CRLFs up
    /// to and including the last-chunk line (the trailer section has its own budget).
    /// Proportional to the body limit so ordinary chunk sizes always fit, while a flood of
    /// tiny or empty-looking chunks cannot grow the buffer without end.
    public var maxChunkFramingBytes: Int {
        Self.adding(maxBodyBytes, Self.maxChunkLineBytes)
    }

    /// An upper bound on the bytes of one request on the wire. The parser never answers
    /// `needMore` for an input longer than this, so a connection can cap its buffer here.
    public var maxRequestBytes: Int {
        let head = Self.adding(Self.adding(maxRequestLineBytes, maxHeaderBytes), 6)
        let chunked = Self.adding(Self.adding(Self.adding(maxBodyBytes, maxChunkFramingBytes), maxHeaderBytes), 2)
        return Self.adding(head, max(maxBodyBytes, chunked))
    }

    /// `a + b`, or `Int.max` when that overflows (limits may be configured huge). Not
    /// variadic: these are read per request, and a variadic call allocates its array.
    private static func adding(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }
}
