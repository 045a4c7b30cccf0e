import JSON
import Platform

/// One event as Claude sees it: the body text and string-only meta attributes.
public struct ChannelEvent: Sendable, Equatable {
    /// Claude Code shows at most this much; the full body stays in the event log.
    public static let maxContentBytes = 16 * 1024

    /// The content's UTF-8. Kept as bytes: the usual content is the webhook's body, whose
    /// storage this shares instead of copying it into a `String` (a 1 KiB allocation, a copy
    /// and a validation per event, for text that only goes back out as bytes).
    public private(set) var contentUTF8: [UInt8]
    public var content: String { String(decoding: contentUTF8, as: UTF8.self) }
    /// Ordered key/value pairs. Keys match `[A-Za-z0-9_]+`; every value is a string, because
    /// Claude Code drops the whole message otherwise.
    public var meta: [(key: String, value: String)]
    /// The whole notification line, when it was encoded already (see `init(encodedNotification:)`).
    private var encoded: [UInt8]?

    /// Meta values a sender chooses (`delivery_id`, `event_type`, …) are cut to this many characters.
    public static let maxMetaValueCharacters = 200

    /// `content` is sender text: every `<channel` / `</channel` in it is defused (see
    /// `neutralizingChannelTags`). Meta values lose control and bidi-override characters and
    /// are cut to 200 characters; keys that Claude Code would reject are dropped.
    public init(content: String, meta: [(key: String, value: String)]) {
        self.init(contentUTF8: Array(content.utf8), meta: meta)
    }

    /// The same from content that is UTF-8 already (the caller has checked it is valid).
    public init(contentUTF8: [UInt8], meta: [(key: String, value: String)]) {
        self.contentUTF8 = Self.neutralizingChannelTags(utf8: contentUTF8)
        var cleaned: [(key: String, value: String)] = []
        cleaned.reserveCapacity(meta.count)
        for pair in meta where ChannelEvent.isValidMetaKey(pair.key) {
            cleaned.append((pair.key, Self.cleanMetaValue(pair.value)))
        }
        self.meta = cleaned
    }

    /// An event whose notification line was encoded elsewhere (once, for this session and
    /// the hub's followers); `writeNotification` writes it as it is.
    public init(encodedNotification line: [UInt8]) {
        contentUTF8 = []
        meta = []
        encoded = line
    }

    /// Claude Code escapes meta values but writes the content as it is between
    /// `<channel …>` and `</channel>`: a body holding `</channel><channel source="…">` would
    /// close the real tag and open a forged one. The `<` of every `<channel` and `</channel`
    /// (any letter case) becomes `&lt;`; nothing else changes. The event log and
    /// `webhook_event` keep the body as sent.
    public static func neutralizingChannelTags(_ text: String) -> String {
        String(decoding: neutralizingChannelTags(utf8: Array(text.utf8)), as: UTF8.self)
    }

    /// The same over UTF-8 bytes; returns `bytes` itself (no copy) when there is nothing to defuse.
    public static func neutralizingChannelTags(utf8 bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBufferPointer { bytes -> [UInt8]? in
            // memchr: most bodies have no `<` at all, and this runs on every webhook's content.
            guard let base = bytes.baseAddress, memchr(base, Int32(UInt8(ascii: "<")), bytes.count) != nil else { return nil }
            let name = Array("channel".utf8)
            var out: [UInt8] = []
            var changed = false
            out.reserveCapacity(bytes.count + 16)
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "<") {
                    var start = index + 1
                    if start < bytes.count && bytes[start] == UInt8(ascii: "/") { start += 1 }
                    if start + name.count <= bytes.count,
                       name.indices.allSatisfy({ bytes[start + $0] | 0x20 == name[$0] })
                    {
                        out.append(contentsOf: "&lt;".utf8)
                        changed = true
                        index += 1
                        continue
                    }
                }
                out.append(byte)
                index += 1
            }
            return changed ? out : nil
        } ?? bytes
    }

    /// No control characters (a newline in an attribute), no bidi overrides (text that reads
    /// differently from what it is), at most 200 characters.
    static func cleanMetaValue(_ value: String) -> String {
        let needsWork = value.withUTF8Bytes { bytes in
            bytes.count > maxMetaValueCharacters || bytes.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 >= 0xC2 })
        }
        guard needsWork else { return value }
        var scalars = String.UnicodeScalarView()
        var characters = 0
        for scalar in value.unicodeScalars where !isUnsafeInAttribute(scalar) {
            scalars.append(scalar)
            characters += 1
            if characters == maxMetaValueCharacters { break }
        }
        return String(scalars)
    }

    /// Control characters (C0, DEL, C1) and the bidi embedding, override and isolate marks.
    public static func isUnsafeInAttribute(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    public static func == (lhs: ChannelEvent, rhs: ChannelEvent) -> Bool {
        lhs.contentUTF8 == rhs.contentUTF8 && lhs.meta.elementsEqual(rhs.meta, by: { $0 == $1 }) && lhs.encoded == rhs.encoded
    }

    public static func isValidMetaKey(_ key: String) -> Bool {
        // "source" is the tag's own attribute (<channel source="webhook">); never shadow it.
        key.withUTF8Bytes { bytes in
            !bytes.isEmpty && !(bytes.count == 6 && bytes.elementsEqual("source".utf8)) && bytes.allSatisfy(isMetaKeyByte)
        }
    }

    /// `[A-Za-z0-9_]` as bits of two words, one test a byte (this runs for every meta key of
    /// every event).
    @inline(__always)
    static func isMetaKeyByte(_ byte: UInt8) -> Bool {
        let digits: UInt64 = 0x03FF_0000_0000_0000  // 0x30...0x39
        let letters: UInt64 = 0x07FF_FFFE_87FF_FFFE  // 0x41...0x5A, 0x5F, 0x61...0x7A (as 0x40...0x7F)
        switch byte {
        case 0..<64: return digits >> UInt64(byte) & 1 == 1
        case 64..<128: return letters >> UInt64(byte - 64) & 1 == 1
        default: return false
        }
    }

    /// The body as content, as UTF-8: the body itself (its storage shared, not copied) when it
    /// is UTF-8 text within `maxContentBytes`, cut at a character boundary when longer, or a
    /// note for binary bodies. Returns whether it was cut.
    /// `knownValid`: the caller has checked the body is UTF-8.
    public static func contentUTF8(fromBody body: [UInt8], contentType: String, knownValid: Bool = false)
        -> (utf8: [UInt8], truncated: Bool)
    {
        let valid = knownValid || body.withUnsafeBufferPointer { UTF8Validation.isValid($0) }
        if valid && body.count <= maxContentBytes { return (body, false) }
        let (text, truncated) = body.withUnsafeBytes { content(fromBody: $0, contentType: contentType) }
        return (Array(text.utf8), truncated)
    }

    /// The body as content: UTF-8 text cut at a character boundary, or a note for binary bodies.
    /// Returns whether it was cut.
    public static func content(fromBody body: UnsafeRawBufferPointer, contentType: String) -> (text: String, truncated: Bool) {
        let bytes = body.bindMemory(to: UInt8.self)
        // Not `String(validating:)`: it looks up generic metadata on every call.
        guard UTF8Validation.isValid(bytes) else {
            return ("[binary body: \(body.count) bytes, content-type \(contentType.isEmpty ? "unknown" : contentType)]", false)
        }
        let whole = String(decoding: bytes, as: UTF8.self)
        guard body.count > maxContentBytes else { return (whole, false) }
        var cut = maxContentBytes
        // Step back over continuation bytes (10xxxxxx) to the start of a character.
        while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        return (String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<cut]), as: UTF8.self), true)
    }

    /// Writes the notification line straight into an output buffer.
    public func writeNotification(into out: inout [UInt8]) {
        if let encoded {
            out.append(contentsOf: encoded)
            return
        }
        out.appendLiteral(#"{"jsonrpc":"2.0","method":"notifications/claude/channel","params":{"content":"#)
        contentUTF8.withUnsafeBufferPointer { JSONWriter.appendString(utf8: $0, into: &out) }
        out.appendLiteral(#","meta":{"#)
        for (index, pair) in meta.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(pair.key, into: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.appendString(pair.value, into: &out)
        }
        out.appendLiteral("}}}")
    }
}
