import Platform

/// An HTTP/1.x version number (RFC 9112 section 2.3).
public struct HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let http10 = HTTPVersion(major: 1, minor: 0)
    public static let http11 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }
}

/// Header fields in the order they were received, with the sender's spelling of each name.
///
/// Order matters because some fields may repeat and their values combine in order
/// (RFC 9110 section 5.3). Lookups ignore ASCII case, since field names are
/// case-insensitive (RFC 9110 section 5.1). Two `HTTPHeaders` are equal when they hold the
/// same names (exact spelling) and values in the same order.
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (name: String, value: String)

    @usableFromInline struct Field: Sendable, Equatable {
        @usableFromInline var name: String
        @usableFromInline var value: String
        /// `lookupKey(name)`, kept so that a lookup compares whole names only where these agree.
        @usableFromInline var key: UInt32

        init(name: String, value: String) {
            self.init(name: name, value: value, key: HTTPHeaders.lookupKey(name))
        }

        init(name: String, value: String, key: UInt32) {
            self.name = name
            self.value = value
            self.key = key
        }

        @usableFromInline static func == (a: Field, b: Field) -> Bool { a.name == b.name && a.value == b.value }
    }

    @usableFromInline var fields: [Field] = []

    public init() {}

    public init(_ fields: [(String, String)]) {
        self.fields = fields.map { Field(name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    public var count: Int { fields.count }

    public var isEmpty: Bool { fields.isEmpty }

    /// The first value of the field `name`, or nil.
    public subscript(name: String) -> String? {
        let key = Self.lookupKey(name)
        for index in fields.indices where fields[index].key == key && Self.namesEqual(fields[index].name, name) {
            return fields[index].value
        }
        return nil
    }

    /// A name's length and its first and last bytes in lower case, as one number: names that
    /// differ in it cannot be equal ignoring case. A request is looked up a dozen times in
    /// all (framing, host, signature, delivery id, type), each time against every field.
    @inline(__always)
    static func lookupKey(_ name: String) -> UInt32 {
        name.withUTF8Bytes { lookupKey(bytes: UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    static func lookupKey(bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let first = bytes.first, let last = bytes.last else { return 0 }
        return UInt32(truncatingIfNeeded: bytes.count) << 16 | UInt32(asciiLowercased(first)) << 8
            | UInt32(asciiLowercased(last))
    }

    /// Every value of the field `name`, in order.
    public func values(for name: String) -> [String] {
        var result: [String] = []
        forEachValue(of: name) { result.append($0) }
        return result
    }

    /// Calls `body` with every value of the field `name`, in order, without collecting them
    /// into an array (an allocation a request, for `Connection`).
    public func forEachValue(of name: String, _ body: (String) -> Void) {
        let key = Self.lookupKey(name)
        for index in fields.indices where fields[index].key == key && Self.namesEqual(fields[index].name, name) {
            body(fields[index].value)
        }
    }

    public func contains(_ name: String) -> Bool {
        let key = Self.lookupKey(name)
        return fields.contains { $0.key == key && Self.namesEqual($0.name, name) }
    }

    /// Calls `body` with each field whose name is in `names`, in the order received. Each
    /// field's kept key is compared first, so a field that is not wanted costs a few
    /// instructions instead of a comparison with every wanted name. Inlinable, so that the
    /// caller's module specializes it (generic code across modules is not).
    @inlinable
    public func forEachField<Failure: Error>(
        in names: HTTPFieldNameSet, _ body: (_ name: String, _ value: String) throws(Failure) -> Void
    ) throws(Failure) {
        for index in fields.indices where names.contains(fields[index].name, key: fields[index].key) {
            try body(fields[index].name, fields[index].value)
        }
    }

    public mutating func append(name: String, value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// The same with the name's `lookupKey` made already (by the parser, from its bytes).
    mutating func append(name: String, value: String, key: UInt32) {
        fields.append(Field(name: name, value: value, key: key))
    }

    public mutating func reserveCapacity(_ capacity: Int) {
        fields.reserveCapacity(capacity)
    }

    public struct Iterator: IteratorProtocol {
        private var base: IndexingIterator<[Field]>

        fileprivate init(_ fields: [Field]) {
            base = fields.makeIterator()
        }

        public mutating func next() -> (name: String, value: String)? {
            guard let field = base.next() else { return nil }
            return (field.name, field.value)
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(fields)
    }

    public var underestimatedCount: Int { fields.count }

    /// ASCII case-insensitive comparison over the UTF-8 bytes; field names are tokens, so
    /// ASCII folding is all that is needed, and it allocates nothing. Runs some thirty times
    /// a request (every lookup that finds its field), so it compares eight bytes at a time,
    /// each word folded to lower case (`ByteWords.asciiLowercased`). `releasenone` as the
    /// `ByteWords` functions are (its callers then retain neither name).
    @_effects(releasenone)
    public static func namesEqual(_ a: String, _ b: String) -> Bool {
        a.withUTF8Bytes { x in
            b.withUTF8Bytes { y in
                guard x.count == y.count else { return false }
                guard let p = x.baseAddress, let q = y.baseAddress else { return true }
                return ByteWords.equalIgnoringASCIICase(UnsafeRawPointer(p), UnsafeRawPointer(q), count: x.count)
            }
        }
    }

    @inline(__always)
    public static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }
}

/// A fixed set of field names, matched ignoring ASCII case: for a caller that picks the
/// fields it wants out of every request (the event log keeps a dozen by name).
public struct HTTPFieldNameSet: Sendable {
    public let names: [String]
    /// `HTTPHeaders.lookupKey` of each name.
    @usableFromInline let keys: [UInt32]
    /// Bit `n` set when some name is `n` bytes long: most fields are ruled out by it alone.
    @usableFromInline let lengths: UInt64

    public init(_ names: [String]) {
        self.names = names
        keys = names.map(HTTPHeaders.lookupKey)
        lengths = names.reduce(0) { $0 | ($1.utf8.count < 64 ? 1 << UInt64($1.utf8.count) : 0) }
    }

    public func contains(_ name: String) -> Bool {
        contains(name, key: HTTPHeaders.lookupKey(name))
    }

    @inlinable @inline(__always)
    func contains(_ name: String, key: UInt32) -> Bool {
        // The key's length is the name's modulo 2^16; `namesEqual` compares whole lengths.
        let length = key >> 16
        guard length < 64, lengths >> UInt64(length) & 1 == 1 else { return false }
        for index in keys.indices where keys[index] == key && HTTPHeaders.namesEqual(names[index], name) {
            return true
        }
        return false
    }
}

/// One parsed HTTP/1.x request.
///
/// `path` and `query` are derived from `target` when the request is made, which is why
/// those three (and `method`, `version`) are constants; headers and body may be changed.
public struct HTTPRequest: Sendable, Equatable {
    public let method: String
    /// The request-target exactly as sent (RFC 9112 section 3.2).
    public let target: String
    /// `target` up to the first `?`.
    public let path: String
    /// `target` after the first `?`, still percent-encoded; nil when there is no `?`.
    public let query: String?
    /// The authority of an absolute-form target (`http://host:port/path`, RFC 9112 section
    /// 3.2.2), which then stands in for `Host`; nil for the usual origin form (`/path`).
    public let authority: String?
    public let version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(
        method: String,
        target: String,
        version: HTTPVersion = .http11,
        headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = []
    ) {
        self.method = method
        self.target = target
        var origin = Substring(target)
        authority = Self.absoluteFormAuthority(target, origin: &origin)
        if let mark = origin.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = String(origin[..<mark])
            query = String(origin[origin.index(after: mark)...])
        } else {
            path = String(origin)
            query = nil
        }
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// For `http://authority/rest` (scheme in any case): the authority, with `origin` set to
    /// `/rest` (`/` when there is none). Nil, leaving `origin` alone, for any other form.
    private static func absoluteFormAuthority(_ target: String, origin: inout Substring) -> String? {
        guard target.utf8.first != UInt8(ascii: "/") else { return nil }
        for scheme in ["http://", "https://"] where target.utf8.count > scheme.utf8.count
            && target.utf8.prefix(scheme.utf8.count).elementsEqual(scheme.utf8, by: { HTTPHeaders.asciiLowercased($0) == $1 })
        {
            let rest = target.dropFirst(scheme.count)
            let end = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            let pathPart = rest[end...]
            origin = pathPart.first == "/" ? pathPart : Substring("/" + pathPart)
            return String(rest[..<end])
        }
        return nil
    }

    /// Whether the connection stays open after the response (RFC 9112 section 9.3):
    /// HTTP/1.1 persists unless a `Connection` option says `close`; HTTP/1.0 persists only
    /// when a `Connection` option says `keep-alive` (and none says `close`).
    public var keepAlive: Bool {
        var close = false
        var keepAlive = false
        headers.forEachValue(of: "Connection") { value in
            value.withUTF8Bytes { bytes in
                Self.forEachListMember(bytes) { option in
                    if Self.equalsIgnoringASCIICase(option, "close") { close = true }
                    if Self.equalsIgnoringASCIICase(option, "keep-alive") { keepAlive = true }
                }
            }
        }
        if close { return false }
        if version == .http10 { return keepAlive }
        return true
    }

    /// The members of a comma-separated list (RFC 9110 section 5.6.1), the whitespace around
    /// each trimmed, empty ones skipped. Over bytes: `String.split` walks grapheme clusters,
    /// and a `Connection: close` cost ~7,800 instructions that way.
    static func forEachListMember(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: ",") { end += 1 }
            var first = start
            var last = end
            while first < last && isWhitespace(bytes[first]) { first += 1 }
            while last > first && isWhitespace(bytes[last - 1]) { last -= 1 }
            if first < last { body(UnsafeBufferPointer(rebasing: bytes[first..<last])) }
            start = end + 1
        }
    }

    /// Whether `bytes` spell `literal` (ASCII) in any letter case.
    static func equalsIgnoringASCIICase(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let expected = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        for index in 0..<bytes.count where HTTPHeaders.asciiLowercased(bytes[index]) != HTTPHeaders.asciiLowercased(expected[index]) {
            return false
        }
        return true
    }

    /// Whether the client waits for `100 Continue` before sending the body. An HTTP/1.0
    /// client cannot understand 100 Continue, so its expectation is ignored
    /// (RFC 9110 section 10.1.1).
    public var expectsContinue: Bool {
        Self.expectsContinue(version: version, headers: headers)
    }

    static func expectsContinue(version: HTTPVersion, headers: HTTPHeaders) -> Bool {
        guard version != .http10, let expect = headers["Expect"] else { return false }
        return HTTPHeaders.namesEqual(trimmingOWS(Substring(expect)), "100-continue")
    }

    /// The first query parameter called `name`, percent-decoded with `+` read as a space
    /// (the `application/x-www-form-urlencoded` convention browsers and curl use for
    /// queries). A parameter without `=` has the value "". A malformed `%` escape is kept
    /// as it was written rather than failing the whole lookup.
    public func queryParameter(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let rawName = pair[pair.startIndex..<(equals ?? pair.endIndex)]
            guard Self.percentDecoded(rawName) == name else { continue }
            guard let equals else { return "" }
            return Self.percentDecoded(pair[pair.index(after: equals)...])
        }
        return nil
    }

    /// OWS is spaces and tabs (RFC 9110 section 5.6.3).
    static func trimmingOWS(_ text: Substring) -> String {
        var slice = text.utf8[...]
        while let first = slice.first, first == 0x20 || first == 0x09 { slice = slice.dropFirst() }
        while let last = slice.last, last == 0x20 || last == 0x09 { slice = slice.dropLast() }
        return String(Substring(slice))
    }

    private static func percentDecoded(_ slice: Substring.UTF8View) -> String {
        let bytes = Array(slice)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "+") {
                out.append(0x20)
            } else if byte == UInt8(ascii: "%"), i + 2 < bytes.count,
                      let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 2
            } else {
                out.append(byte)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
