import Platform

/// Why a byte sequence is not JSON. The message names a position, never echoes input bytes
/// (input may carry secrets).
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public let offset: Int
    public var description: String { "\(reason) at byte \(offset)" }

    static let tooDeepReason = "nesting too deep"
    /// Well-formed as far as it was read, but nested deeper than `JSONParser.maxDepth`: a
    /// message refused for its shape rather than unreadable text.
    public var isTooDeep: Bool { reason == Self.tooDeepReason }
}

/// A strict RFC 8259 parser over raw bytes: UTF-8 is validated, nesting depth is bounded so a
/// hostile `[[[[…` cannot exhaust the stack, and trailing garbage is refused.
public enum JSONParser {
    public static let maxDepth = 256

    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { buffer throws(JSONParseError) in
            try parse(buffer)
        }
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    public static func parse(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        var reader = Reader(bytes: buffer)
        reader.skipWhitespace()
        let value = try reader.parseValue(depth: 0)
        reader.skipWhitespace()
        guard reader.index == buffer.count else { throw reader.error("unexpected data after the JSON value") }
        return value
    }

    /// What `fields(in:named:)` found among the top-level members of a JSON value.
    public struct TopLevelFields: Sendable {
        /// The value was an object.
        public var isObject = false
        /// Named members whose value is a string (the last one wins, as in `parse`).
        public var strings = NamedStrings()
        /// Named members present with a value that is neither a string nor null.
        public var otherValues: Set<String> = []
    }

    /// A few names and their string values, looked up by name: a list, not a dictionary, since
    /// a webhook body has one or two of the names asked for and hashing them cost more than the
    /// lookups. The first pair is kept inline: nearly every webhook has one (its `type`), and an
    /// array for it was an allocation a webhook; nothing is allocated for up to one pair.
    public struct NamedStrings: Sendable, Equatable, ExpressibleByDictionaryLiteral {
        private struct Pair: Sendable {
            var name: String
            var value: String
        }

        private var first: Pair?
        /// The pairs after the first, in the order they were set (empty while `first` is nil).
        private var rest: [Pair] = []

        public init() {}

        public init(dictionaryLiteral elements: (String, String)...) {
            for (name, value) in elements { self[name] = value }
        }

        public var isEmpty: Bool { first == nil }
        public var count: Int { first == nil ? 0 : 1 + rest.count }

        public subscript(name: String) -> String? {
            get {
                // Read in place: `if let first` copied the pair (two retains and releases).
                if first?.name == name { return first?.value }
                return rest.first { $0.name == name }?.value
            }
            set {
                if first?.name == name {
                    if let newValue { first?.value = newValue } else { first = rest.isEmpty ? nil : rest.removeFirst() }
                } else if let at = rest.firstIndex(where: { $0.name == name }) {
                    if let newValue { rest[at].value = newValue } else { rest.remove(at: at) }
                } else if let newValue {
                    if first == nil { first = Pair(name: name, value: newValue) } else { rest.append(Pair(name: name, value: newValue)) }
                }
            }
        }

        /// The same names with the same values, in any order.
        public static func == (a: NamedStrings, b: NamedStrings) -> Bool {
            guard a.count == b.count else { return false }
            if let first = a.first, b[first.name] != first.value { return false }
            return a.rest.allSatisfy { b[$0.name] == $0.value }
        }
    }

    /// Checks that `buffer` is exactly one JSON value, accepting what `parse` accepts, and
    /// returns those top-level members named in `names` whose values are strings. Builds no
    /// tree: a webhook body is checked on every request and only a few of its top-level
    /// fields are read.
    public static func validate(_ buffer: UnsafeBufferPointer<UInt8>, collectingStrings names: [String])
        throws(JSONParseError) -> NamedStrings
    {
        try fields(in: buffer, named: names).strings
    }

    /// Like `validate`, and also says whether the value was an object and which named members
    /// held something other than a string or null. The unauthenticated JSON routes read their
    /// parameters this way: time linear in the body, memory for the named strings only.
    public static func fields(in buffer: UnsafeBufferPointer<UInt8>, named names: [String])
        throws(JSONParseError) -> TopLevelFields
    {
        var reader = Reader(bytes: buffer)
        var found = TopLevelFields()
        reader.skipWhitespace()
        if !reader.atEnd, reader.current == UInt8(ascii: "{") {
            found.isObject = true
            try reader.readObject(depth: 1) { reader, member throws(JSONParseError) in
                guard let name = try reader.matching(member, in: names) else { return try reader.skipValue(depth: 1) }
                // The last member of a name wins. Each removal hashes the name: skipped when
                // the table is empty, as it nearly always is.
                if !found.otherValues.isEmpty { found.otherValues.remove(name) }
                if !reader.atEnd, reader.current == UInt8(ascii: "\"") {
                    found.strings[name] = try reader.parseString()
                } else {
                    if !found.strings.isEmpty { found.strings[name] = nil }
                    let isNull = !reader.atEnd && reader.current == UInt8(ascii: "n")
                    try reader.skipValue(depth: 1)
                    if !isNull { found.otherValues.insert(name) }
                }
            }
        } else {
            try reader.skipValue(depth: 0)
        }
        reader.skipWhitespace()
        guard reader.index == buffer.count else { throw reader.error("unexpected data after the JSON value") }
        return found
    }

    /// A member name as read: where it stands (quotes included) and whether it holds escapes.
    /// A `String` is made of it only by a caller that keeps it: skipping a nested object, or
    /// looking for a few names among many, made and dropped one for every name in the body.
    private struct MemberName {
        let quoted: Range<Int>
        let hasEscapes: Bool
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        /// The name as a `String`, escapes decoded.
        func string(of name: MemberName) throws(JSONParseError) -> String {
            guard name.hasEscapes else {
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[(name.quoted.lowerBound + 1)..<(name.quoted.upperBound - 1)]),
                              as: UTF8.self)
            }
            var again = Reader(bytes: bytes, index: name.quoted.lowerBound)
            return try again.parseString()
        }

        /// The one of `names` that the member name equals, if any. An ASCII name without
        /// escapes is compared byte for byte; anything else as `String`s (whose equality is
        /// Unicode's canonical equivalence, which bytes alone would not give).
        func matching(_ member: MemberName, in names: [String]) throws(JSONParseError) -> String? {
            let raw = UnsafeBufferPointer(rebasing: bytes[(member.quoted.lowerBound + 1)..<(member.quoted.upperBound - 1)])
            guard !member.hasEscapes, raw.allSatisfy({ $0 < 0x80 }) else {
                let decoded = try string(of: member)
                return names.contains(decoded) ? decoded : nil
            }
            for name in names where name.utf8.count == raw.count {
                let equal = name.utf8.withContiguousStorageIfAvailable { $0.elementsEqual(raw) } ?? name.utf8.elementsEqual(raw)
                if equal { return name }
            }
            return nil
        }

        func error(_ reason: String) -> JSONParseError { JSONParseError(reason: reason, offset: index) }

        var atEnd: Bool { index >= bytes.count }
        var current: UInt8 { bytes[index] }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
            guard !atEnd else { throw error("unexpected end of input") }
            switch current {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
            case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
            case UInt8(ascii: "n"): try expectLiteral("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw error("unexpected character")
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - index >= count else { throw error("unexpected end of input") }
            let start = literal.utf8Start
            for offset in 0..<count where bytes[index + offset] != start[offset] {
                throw error("invalid literal")
            }
            index += count
        }

        mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
            // Duplicate names: the last one wins, as in JavaScript, which senders are written in.
            var object = JSONObject()
            try readObject(depth: depth) { reader, member throws(JSONParseError) in
                let name = try reader.string(of: member)
                object[name] = try reader.parseValue(depth: depth)
            }
            return .object(object)
        }

        mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
            var elements: [JSONValue] = []
            try readArray(depth: depth) { reader throws(JSONParseError) in
                elements.append(try reader.parseValue(depth: depth))
            }
            return .array(elements)
        }

        /// Reads `{ "name": value, … }`. `readValue` gets each name with the reader at its
        /// value, and must read that value.
        mutating func readObject(
            depth: Int, readValue: (inout Reader, MemberName) throws(JSONParseError) -> Void
        ) throws(JSONParseError) {
            guard depth <= JSONParser.maxDepth else { throw error(JSONParseError.tooDeepReason) }
            index += 1
            skipWhitespace()
            if !atEnd, current == UInt8(ascii: "}") {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                guard !atEnd, current == UInt8(ascii: "\"") else { throw error("expected a member name") }
                let nameStart = index
                let hasEscapes = try skipString()
                let name = MemberName(quoted: nameStart..<index, hasEscapes: hasEscapes)
                skipWhitespace()
                guard !atEnd, current == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
                try readValue(&self, name)
                skipWhitespace()
                guard !atEnd else { throw error("unexpected end of input") }
                if current == UInt8(ascii: ",") { index += 1; continue }
                if current == UInt8(ascii: "}") { index += 1; return }
                throw error("expected ',' or '}'")
            }
        }

        /// Reads `[ value, … ]`; `readElement` is called with the reader at each element.
        mutating func readArray(depth: Int, readElement: (inout Reader) throws(JSONParseError) -> Void) throws(JSONParseError) {
            guard depth <= JSONParser.maxDepth else { throw error(JSONParseError.tooDeepReason) }
            index += 1
            skipWhitespace()
            if !atEnd, current == UInt8(ascii: "]") {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                try readElement(&self)
                skipWhitespace()
                guard !atEnd else { throw error("unexpected end of input") }
                if current == UInt8(ascii: ",") { index += 1; continue }
                if current == UInt8(ascii: "]") { index += 1; return }
                throw error("expected ',' or ']'")
            }
        }

        /// Checks one value as `parseValue` would, keeping nothing.
        mutating func skipValue(depth: Int) throws(JSONParseError) {
            guard !atEnd else { throw error("unexpected end of input") }
            switch current {
            case UInt8(ascii: "{"):
                try readObject(depth: depth + 1) { reader, _ throws(JSONParseError) in try reader.skipValue(depth: depth + 1) }
            case UInt8(ascii: "["):
                try readArray(depth: depth + 1) { reader throws(JSONParseError) in try reader.skipValue(depth: depth + 1) }
            case UInt8(ascii: "\""): try skipString()
            case UInt8(ascii: "t"): try expectLiteral("true")
            case UInt8(ascii: "f"): try expectLiteral("false")
            case UInt8(ascii: "n"): try expectLiteral("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try skipNumber()
            default: throw error("unexpected character")
            }
        }

        /// Checks a string as `parseString` would (escapes, control characters, UTF-8) without
        /// building it, and says whether it held escapes. Runs with nothing special are
        /// skipped eight bytes at a time.
        @discardableResult
        mutating func skipString() throws(JSONParseError) -> Bool {
            index += 1  // opening quote
            let start = index
            var runStart = index
            var hasEscapes = false
            let raw = UnsafeRawPointer(bytes.baseAddress!)
            while true {
                var bits: UInt64 = 0
                index = JSONWriter.firstEscaped(in: raw, from: index, count: bytes.count, orBits: &bits)
                guard index < bytes.count else { throw error("unterminated string") }
                let byte = bytes[index]
                if byte < 0x20 { throw error("control character in string") }
                // Only a run with a byte from 0x80 needs checking as UTF-8.
                guard bits & 0x8080_8080_8080_8080 == 0
                    || UTF8Validation.isValid(UnsafeBufferPointer(rebasing: bytes[runStart..<index])) else {
                    throw JSONParseError(reason: "invalid UTF-8 in string", offset: start)
                }
                index += 1
                if byte == UInt8(ascii: "\"") { return hasEscapes }
                hasEscapes = true
                guard !atEnd else { throw error("unterminated string") }
                let escape = current
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    break
                case UInt8(ascii: "u"):
                    _ = try parseUnicodeEscape()
                default:
                    throw error("invalid escape")
                }
                runStart = index
            }
        }

        mutating func parseNumber() throws(JSONParseError) -> JSONValue {
            let start = index
            let isInteger = try skipNumber()
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if isInteger, let integer = Int64(text) { return .int(integer) }
            guard let double = Double(text) else { throw error("invalid number") }
            if isInteger || !double.isFinite || Self.significantDigits(text) > 17 { return .number(text) }
            return .double(double)
        }

        /// Digits of the mantissa, leading zeros left out (`0.000123` has 3).
        static func significantDigits(_ text: String) -> Int {
            var count = 0
            var leading = true
            for byte in text.utf8 {
                if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { break }
                guard byte &- UInt8(ascii: "0") < 10 else { continue }
                if leading && byte == UInt8(ascii: "0") { continue }
                leading = false
                count += 1
            }
            return count
        }

        /// Reads a number's grammar (RFC 8259 section 6) and returns whether it is an integer.
        mutating func skipNumber() throws(JSONParseError) -> Bool {
            var isInteger = true
            if current == UInt8(ascii: "-") { index += 1 }
            guard !atEnd else { throw error("invalid number") }
            if current == UInt8(ascii: "0") {
                index += 1
            } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(current) {
                while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) { index += 1 }
            } else {
                throw error("invalid number")
            }
            if !atEnd, current == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                let digitsStart = index
                while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) { index += 1 }
                guard index > digitsStart else { throw error("invalid number") }
            }
            if !atEnd, current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if !atEnd, current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                let digitsStart = index
                while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(current) { index += 1 }
                guard index > digitsStart else { throw error("invalid number") }
            }
            return isInteger
        }

        mutating func parseString() throws(JSONParseError) -> String {
            index += 1  // opening quote
            let start = index
            // Fast path: no escapes, only validate UTF-8 and find the closing quote.
            index = JSONWriter.firstEscaped(in: UnsafeRawPointer(bytes.baseAddress!), from: index, count: bytes.count)
            guard index < bytes.count else { throw error("unterminated string") }
            if bytes[index] == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                // Not `String(validating:)`: it looks up generic metadata on every call.
                guard UTF8Validation.isValid(slice) else {
                    throw JSONParseError(reason: "invalid UTF-8 in string", offset: start)
                }
                return String(decoding: slice, as: UTF8.self)
            }
            if bytes[index] < 0x20 { throw error("control character in string") }
            var scalars: [UInt8] = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    guard let string = String(validating: scalars, as: UTF8.self) else {
                        throw JSONParseError(reason: "invalid UTF-8 in string", offset: start)
                    }
                    return string
                case UInt8(ascii: "\\"):
                    index += 1
                    guard !atEnd else { throw error("unterminated string") }
                    let escape = current
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""): scalars.append(0x22)
                    case UInt8(ascii: "\\"): scalars.append(0x5C)
                    case UInt8(ascii: "/"): scalars.append(0x2F)
                    case UInt8(ascii: "b"): scalars.append(0x08)
                    case UInt8(ascii: "f"): scalars.append(0x0C)
                    case UInt8(ascii: "n"): scalars.append(0x0A)
                    case UInt8(ascii: "r"): scalars.append(0x0D)
                    case UInt8(ascii: "t"): scalars.append(0x09)
                    case UInt8(ascii: "u"):
                        let scalar = try parseUnicodeEscape()
                        scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default:
                        throw error("invalid escape")
                    }
                default:
                    if byte < 0x20 { throw error("control character in string") }
                    scalars.append(byte)
                    index += 1
                }
            }
            throw error("unterminated string")
        }

        mutating func parseHex4() throws(JSONParseError) -> UInt32 {
            guard bytes.count - index >= 4 else { throw error("invalid \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = current
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw error("invalid \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        /// A lone surrogate becomes U+FFFD rather than an error: JavaScript senders produce them and
        /// the event must still arrive.
        mutating func parseUnicodeEscape() throws(JSONParseError) -> Unicode.Scalar {
            let first = try parseHex4()
            if (0xD800...0xDBFF).contains(first) {
                if bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                    let save = index
                    index += 2
                    let second = try parseHex4()
                    if (0xDC00...0xDFFF).contains(second) {
                        let combined = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                        return Unicode.Scalar(combined) ?? "\u{FFFD}"
                    }
                    index = save
                }
                return "\u{FFFD}"
            }
            return Unicode.Scalar(first) ?? "\u{FFFD}"
        }
    }
}
