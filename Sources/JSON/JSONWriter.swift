import Platform

/// The one JSON encoder setup of the project: compact for protocol lines and HTTP bodies,
/// 2-space pretty (as JavaScript's `JSON.stringify(v, null, 2)`, which wrote the seed's files)
/// for state files. Non-ASCII text is written as UTF-8; control characters are escaped, so a
/// protocol line never contains a raw newline.
public enum JSONWriter {
    public static func compact(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out, indent: nil)
        return out
    }

    public static func compactString(_ value: JSONValue) -> String {
        String(decoding: compact(value), as: UTF8.self)
    }

    public static func pretty(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        write(value, into: &out, indent: 0)
        out.append(0x0A)
        return out
    }

    public static func write(_ value: JSONValue, into out: inout [UInt8], indent: Int?) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            if d.isFinite {
                if d.rounded() == d, abs(d) < 1e15 {
                    out.append(contentsOf: String(Int64(d)).utf8)
                } else {
                    out.append(contentsOf: String(d).utf8)
                }
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .number(let text): out.append(contentsOf: text.utf8)
        case .string(let s): appendString(s, into: &out)
        case .array(let elements):
            if elements.isEmpty { out.append(contentsOf: "[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (n, element) in elements.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                newline(into: &out, indent: indent.map { $0 + 1 })
                write(element, into: &out, indent: indent.map { $0 + 1 })
            }
            newline(into: &out, indent: indent)
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            if object.isEmpty { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            for (n, member) in object.members.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                newline(into: &out, indent: indent.map { $0 + 1 })
                appendString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(UInt8(ascii: " ")) }
                write(member.value, into: &out, indent: indent.map { $0 + 1 })
            }
            newline(into: &out, indent: indent)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(into out: inout [UInt8], indent: Int?) {
        guard let indent else { return }
        out.append(0x0A)
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
    }

    public static func appendString(_ s: String, into out: inout [UInt8]) {
        s.withUTF8Bytes { bytes in
            // Most strings a request writes are short names and values with nothing to
            // escape: checked and copied a word at a time, into room reserved once.
            if bytes.count <= shortStringBytes, let base = bytes.baseAddress, !hasByteToEscape(bytes) {
                let count = bytes.count
                out.append(addingCapacity: count + 2) { span in
                    span.withUnsafeMutableBufferPointer { buffer, initialized in
                        let to = buffer.baseAddress!
                        to[0] = UInt8(ascii: "\"")
                        ByteWords.copy(from: base, count: count, to: to + 1)
                        to[count + 1] = UInt8(ascii: "\"")
                        initialized = count + 2
                    }
                }
            } else {
                appendString(utf8: bytes, into: &out)
            }
        }
    }

    private static let shortStringBytes = 64

    /// Whether any byte needs an escape, a word at a time.
    @inline(__always)
    private static func hasByteToEscape(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        ByteWords.anyWord(bytes) { escapeMask($0) }
    }

    /// Writes already-valid UTF-8 as a JSON string literal. The caller guarantees validity.
    ///
    /// This is the per-webhook cost of putting a body into a log line and a notification, and
    /// of some thirty short strings around it. The literal is written straight into `out`'s
    /// spare capacity; runs that need no escaping are found sixteen bytes at a time and copied
    /// whole. Room is reserved for the input plus an eighth (a JSON body escapes a quote every
    /// few dozen bytes); text with more to escape takes one more reservation per filled one.
    public static func appendString(utf8 bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            out.append(contentsOf: emptyLiteral)
            return
        }
        var done = 0
        var opened = false
        while true {
            let remaining = Swift.min(bytes.count - done, escapeBlockBytes)
            var closed = false
            out.append(addingCapacity: remaining + remaining / 8 + 2 * maxEscapeBytes) { span in
                span.withUnsafeMutableBufferPointer { buffer, initialized in
                    let start = buffer.baseAddress!
                    var to = start
                    if !opened {
                        to.pointee = UInt8(ascii: "\"")
                        to += 1
                        opened = true
                    }
                    // One byte kept for the closing quote.
                    (done, to) = writeEscaped(base, from: done, count: bytes.count, to: to, limit: start + buffer.count - 1)
                    if done == bytes.count {
                        to.pointee = UInt8(ascii: "\"")
                        to += 1
                        closed = true
                    }
                    initialized = to - start
                }
            }
            if closed { return }
        }
    }

    /// Escapes input from `from` on, writing at `to` and never past `limit`; returns how far
    /// the input and the output got (a run is split where the room ends, an escape is never).
    @inline(__always)
    static func writeEscaped(
        _ input: UnsafePointer<UInt8>, from: Int, count: Int, to start: UnsafeMutablePointer<UInt8>,
        limit: UnsafeMutablePointer<UInt8>
    ) -> (Int, UnsafeMutablePointer<UInt8>) {
        let raw = UnsafeRawPointer(input)
        var to = start
        var runStart = from
        var index = from
        while true {
            index = firstEscaped(in: raw, from: index, count: count)
            guard index < count else { break }
            let byte = input[index]
            index += 1
            let run = index - 1 - runStart
            if run > limit - to {
                let fits = limit - to
                to.update(from: input + runStart, count: fits)
                return (runStart + fits, to + fits)
            }
            if run <= 16 && runStart + 16 <= count && limit - to >= 16 {
                // A short run (between two quotes of a JSON body, most are) is copied as two
                // words: the bytes past the run land in room reserved and not yet written,
                // and the next write covers them. A `memcpy` call cost more than the copy.
                let source = raw + runStart
                let target = UnsafeMutableRawPointer(to)
                target.storeBytes(of: source.loadUnaligned(as: UInt64.self), as: UInt64.self)
                target.storeBytes(of: source.loadUnaligned(fromByteOffset: 8, as: UInt64.self), toByteOffset: 8, as: UInt64.self)
            } else {
                ByteWords.copy(from: input + runStart, count: run, to: to)
            }
            to += run
            runStart = index - 1
            if limit - to < maxEscapeBytes { return (runStart, to) }
            to += writeEscape(byte, to: to)
            runStart = index
        }
        let run = Swift.min(count - runStart, limit - to)
        ByteWords.copy(from: input + runStart, count: run, to: to)
        return (runStart + run, to + run)
    }

    private static let emptyLiteral: [UInt8] = [UInt8(ascii: "\""), UInt8(ascii: "\"")]
    /// Input bytes per reservation of `appendString(utf8:into:)`: a 1 MiB body is written a
    /// block at a time.
    private static let escapeBlockBytes = 4096
    /// `\u00XX`
    private static let maxEscapeBytes = 6

    /// The escape for one byte that needs it, written at `to`; returns its length.
    @inline(__always)
    private static func writeEscape(_ byte: UInt8, to: UnsafeMutablePointer<UInt8>) -> Int {
        to[0] = 0x5C
        switch byte {
        case UInt8(ascii: "\""): to[1] = 0x22
        case UInt8(ascii: "\\"): to[1] = 0x5C
        case 0x0A: to[1] = UInt8(ascii: "n")
        case 0x0D: to[1] = UInt8(ascii: "r")
        case 0x09: to[1] = UInt8(ascii: "t")
        case 0x08: to[1] = UInt8(ascii: "b")
        case 0x0C: to[1] = UInt8(ascii: "f")
        default:
            to[1] = UInt8(ascii: "u")
            to[2] = UInt8(ascii: "0")
            to[3] = UInt8(ascii: "0")
            to[4] = hexDigits[Int(byte >> 4)]
            to[5] = hexDigits[Int(byte & 0xF)]
            return 6
        }
        return 2
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Whether one byte needs an escape: a control character, `"` or `\`.
    @inline(__always)
    static func isEscaped(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// Where the first byte from `from` on that needs an escape (a control character, `"` or
    /// `\`) is, or `count` when none does: the writer's escaping and the parser's string
    /// reading both go from one such byte to the next. Sixteen bytes at a time, straight to the
    /// first one in the block: a JSON body escaped into a string has a quote every few bytes,
    /// and going on byte by byte from the word that held one cost ~17 instructions a byte.
    @inline(__always)
    static func firstEscaped(in bytes: UnsafeRawPointer, from: Int, count: Int) -> Int {
        var bits: UInt64 = 0
        return firstEscaped(in: bytes, from: from, count: count, orBits: &bits)
    }

    /// The same, also ORing into `orBits` every word it read: no high bit there means every
    /// byte passed was ASCII (a string's reader then skips checking the run as UTF-8). Bytes
    /// after the one found may be in it too, so a high bit only means "look".
    @inline(__always)
    static func firstEscaped(in bytes: UnsafeRawPointer, from: Int, count: Int, orBits: inout UInt64) -> Int {
        var index = from
        // Sixteen bytes at a time as one vector (SSE2 or NEON compares, about half the
        // instructions of two words' bit tricks), each byte that needs an escape flagged as
        // 0xFF: the first flagged byte of the lower or upper half is the one. The constants
        // are made outside the loop: written inline, the compiler does each lane on its own.
        let quote = SIMD16<UInt8>(repeating: UInt8(ascii: "\"")), backslash = SIMD16<UInt8>(repeating: UInt8(ascii: "\\"))
        let topThreeBits = SIMD16<UInt8>(repeating: 0xE0)  // none set: below 0x20, a control character
        var seen = SIMD16<UInt8>()
        defer {
            let halves = unsafeBitCast(seen, to: SIMD2<UInt64>.self)
            orBits |= halves[0] | halves[1]
        }
        while index &+ 16 <= count {
            let block = bytes.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self)
            seen |= block
            let flags = (block .== quote) .| (block .== backslash) .| ((block & topThreeBits) .== .zero)
            let halves = unsafeBitCast(flags, to: SIMD2<UInt64>.self)
            let low = UInt64(littleEndian: halves[0]), high = UInt64(littleEndian: halves[1])
            if low | high != 0 {
                return index + (low != 0 ? low.trailingZeroBitCount >> 3 : 8 + high.trailingZeroBitCount >> 3)
            }
            index &+= 16
        }
        while index + 8 <= count {
            // Little-endian order, so that the lowest bits are the first byte.
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            orBits |= word
            let mask = escapeMask(word)
            if mask != 0 { return index + mask.trailingZeroBitCount >> 3 }
            index += 8
        }
        if index < count && count - from >= 8 {
            // The last one to seven bytes as the word ending at `count`, overlapping bytes
            // already passed: those are from `from` on and need no escape, so the lowest flag
            // is still the first byte that does (a flag runs on only above one that does).
            // Most strings written are short, and byte by byte cost ~10 instructions a byte.
            let start = count - 8
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self))
            orBits |= word
            let mask = escapeMask(word)
            return mask != 0 ? start + mask.trailingZeroBitCount >> 3 : count
        }
        while index < count {
            let byte = bytes.load(fromByteOffset: index, as: UInt8.self)
            orBits |= UInt64(byte)
            if isEscaped(byte) { break }
            index += 1
        }
        return index
    }

    /// Nonzero when any of the eight bytes is a control character, `"` or `\` (high bits of
    /// the bytes that may; no false negatives: the classic "has a zero byte" and "has a byte
    /// less than n" word tricks).
    /// The lowest flag is exact (a byte is flagged falsely only above one that needs it, where
    /// a borrow ran on), so `trailingZeroBitCount / 8` of a little-endian load is the first
    /// byte that needs an escape.
    @inline(__always)
    static func escapeMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = word ^ 0x2222_2222_2222_2222
        let backslash = word ^ 0x5C5C_5C5C_5C5C_5C5C
        let below0x20 = (word &- 0x2020_2020_2020_2020) & ~word
        let hasQuote = (quote &- ones) & ~quote
        let hasBackslash = (backslash &- ones) & ~backslash
        return (below0x20 | hasQuote | hasBackslash) & 0x8080_8080_8080_8080
    }
}
