import Platform

/// Writes JSON text into room reserved once in a byte array (`Array.appendJSON`): the
/// per-webhook lines (the event log's, the notification's) are some thirty strings and
/// literals each, and appending them one by one asked the array for uniqueness and room
/// thirty times. Here each write is a store or a copy. The caller reserves enough: its
/// literals, 20 bytes a number, and `room(for:)` for each string (every byte escaped as
/// `\u00XX`, and the quotes); `appendJSON` checks the writer stayed inside.
public struct ReservedJSONWriter {
    @usableFromInline var at: UnsafeMutablePointer<UInt8>
    @usableFromInline let end: UnsafeMutablePointer<UInt8>

    @usableFromInline init(at: UnsafeMutablePointer<UInt8>, end: UnsafeMutablePointer<UInt8>) {
        self.at = at
        self.end = end
    }

    /// The most `string` can take written as a JSON string.
    @inline(__always)
    public static func room(for string: String) -> Int { string.utf8.count * 6 + 2 }

    /// The same for an optional string (`null` when absent).
    @inline(__always)
    public static func room(for string: String?) -> Int { string.map { room(for: $0) } ?? 4 }

    @inline(__always)
    public mutating func literal(_ text: StaticString) {
        ByteWords.copy(from: text.utf8Start, count: text.utf8CodeUnitCount, to: at)
        at += text.utf8CodeUnitCount
    }

    @inline(__always)
    public mutating func byte(_ byte: UInt8) {
        at.pointee = byte
        at += 1
    }

    /// `text` as a JSON string literal (already valid UTF-8, as every `String` is).
    /// `releasenone`: it only reads the string's bytes and writes raw memory, which lets a
    /// caller in another module pass a string it holds in an array or a struct without
    /// retaining it around the call (two atomic operations a string, dozens a webhook).
    @inline(__always) @_effects(releasenone)
    public mutating func string(_ text: String) {
        text.withUTF8Bytes { bytes in
            at.pointee = UInt8(ascii: "\"")
            at += 1
            if let base = bytes.baseAddress {
                let (done, to) = JSONWriter.writeEscaped(base, from: 0, count: bytes.count, to: at, limit: at + 6 * bytes.count)
                precondition(done == bytes.count, "ReservedJSONWriter: a string did not fit in its room")
                at = to
            }
            at.pointee = UInt8(ascii: "\"")
            at += 1
        }
    }

    /// The string, or `null`.
    @inline(__always)
    public mutating func string(_ text: String?) {
        if let text { string(text) } else { literal("null") }
    }

    /// A member's name (with its punctuation, as one literal) and its string or `null`.
    @inline(__always)
    public mutating func member(_ name: StaticString, _ value: String?) {
        literal(name)
        string(value)
    }

    /// A non-negative integer in decimal (at most 20 bytes).
    @inline(__always)
    public mutating func decimal(_ value: Int) {
        at += writeDecimal(value, to: at)
    }
}

extension Array where Element == UInt8 {
    /// Runs `write` with room for `bound` more bytes, and keeps what it wrote.
    @inline(__always)
    public mutating func appendJSON(bound: Int, _ write: (inout ReservedJSONWriter) -> Void) {
        append(addingCapacity: bound) { span in
            span.withUnsafeMutableBufferPointer { buffer, initialized in
                let start = buffer.baseAddress!
                var writer = ReservedJSONWriter(at: start, end: start + buffer.count)
                write(&writer)
                // After the fact, but a writer past its room is a bug that must not go on.
                precondition(writer.at <= writer.end, "ReservedJSONWriter: wrote past the room reserved")
                initialized = writer.at - start
            }
        }
    }
}
