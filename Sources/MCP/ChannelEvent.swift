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
    public var meta: [MetaPair]

    /// One meta attribute. A struct, not a tuple: an array of tuples is destroyed through the
    /// runtime's generic tuple witness, element by element and string by string (some 300
    /// instructions an event), an array of a struct by its own compiled witness.
    public struct MetaPair: Sendable, Equatable {
        public var key: String
        public var value: String

        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }
    /// What was written already, if anything. One field for the two cases, so that an event
    /// is three words and fits in an existential's inline buffer: queued for stdout as `any
    /// DeferredMessage` (`ProtocolOutput.enqueue`) it is stored in place, not in a heap box
    /// made, copied and freed once per event.
    private var prepared: Prepared?

    private enum Prepared {
        /// The whole notification line, encoded elsewhere (see `init(encodedNotification:)`).
        case notification([UInt8])
        /// The content as a JSON string literal (quotes and escapes), once made: the event
        /// log writes the same literal when the content is the body, and one escape serves both.
        case contentLiteral([UInt8])
    }

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
        self.init(defusedContentUTF8: Self.neutralizingChannelTags(utf8: contentUTF8), meta: meta)
    }

    /// The same from content that is defused already: what `contentUTF8(fromBody:…)` returns.
    public init(defusedContentUTF8: [UInt8], meta: [(key: String, value: String)]) {
        self.contentUTF8 = defusedContentUTF8
        var cleaned: [MetaPair] = []
        cleaned.reserveCapacity(meta.count)
        for pair in meta where ChannelEvent.isValidMetaKey(pair.key) {
            cleaned.append(MetaPair(pair.key, Self.cleanMetaValue(pair.value)))
        }
        self.meta = cleaned
    }

    /// The same with meta keys the caller wrote itself (literals, all valid): only the values
    /// are looked at, as every event's are. Nearly always every value is clean: then the pairs
    /// are kept as they came (their storage shared), not copied into a new array per event.
    public init(defusedContentUTF8: [UInt8], validKeyedMeta meta: [MetaPair]) {
        assert(meta.allSatisfy { Self.isValidMetaKey($0.key) })
        self.contentUTF8 = defusedContentUTF8
        if !meta.contains(where: { Self.metaValueNeedsCleaning($0.value) }) {
            self.meta = meta
            return
        }
        self.meta = meta.map { MetaPair($0.key, Self.cleanMetaValue($0.value)) }
    }

    /// An event whose notification line was encoded elsewhere (once, for this session and
    /// the hub's followers); `writeNotification` writes it as it is.
    public init(encodedNotification line: [UInt8]) {
        contentUTF8 = []
        meta = []
        prepared = .notification(line)
    }

    /// Claude Code escapes meta values but writes the content as it is between
    /// `<channel …>` and `</channel>`: a body holding `</channel><channel source="…">` would
    /// close the real tag and open a forged one. The `<` of every `<channel` and `</channel`
    /// (any letter case) becomes `&lt;`; nothing else changes. The event log and
    /// `webhook_event` keep the body as sent.
    public static func neutralizingChannelTags(_ text: String) -> String {
        String(decoding: neutralizingChannelTags(utf8: Array(text.utf8)), as: UTF8.self)
    }

    /// The same, at most `maxBytes` UTF-8 bytes: cut at a character boundary, and never inside
    /// an `&lt;` (a digest line, measured as Claude will read it).
    public static func neutralizingChannelTags(_ text: String, maxBytes: Int) -> String {
        let bytes = Array(text.utf8)
        let (defused, _) = bytes.withUnsafeBufferPointer { Self.defused($0, limit: max(0, maxBytes)) }
        return defused.map { String(decoding: $0, as: UTF8.self) } ?? text
    }

    /// The same over UTF-8 bytes; returns `bytes` itself (no copy) when there is nothing to defuse.
    public static func neutralizingChannelTags(utf8 bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBufferPointer { defused($0, limit: .max).utf8 } ?? bytes
    }

    /// `text` (UTF-8) defused, then at most `limit` bytes: cut at a character boundary, and
    /// before the `<` of a tag whose `&lt;` would not fit whole (never inside the escape).
    /// Defusing comes first so that the escapes count towards the limit. `nil` stands for
    /// `text` itself, the usual case (no tag, within the limit), which allocates nothing.
    static func defused(_ text: UnsafeBufferPointer<UInt8>, limit: Int) -> (utf8: [UInt8]?, truncated: Bool) {
        var tag = nextChannelTag(in: text, from: 0)
        guard tag != nil || text.count > limit else { return (nil, false) }
        var out: [UInt8] = []
        out.reserveCapacity(min(text.count + 16, limit))
        var copied = 0
        while true {
            let end = tag ?? text.count
            let room = limit - out.count
            if end - copied > room {
                var cut = copied + room
                // Step back over continuation bytes (10xxxxxx) to the start of a character.
                while cut > copied && text[cut] & 0xC0 == 0x80 { cut -= 1 }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: text[copied..<cut]))
                return (out, true)
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[copied..<end]))
            guard let at = tag else { return (out, false) }
            if limit - out.count < 4 { return (out, true) }
            out.appendLiteral("&lt;")
            copied = at + 1
            tag = nextChannelTag(in: text, from: copied)
        }
    }

    /// Where the next `<channel` or `</channel` (any letter case) starts, from `start`.
    static func nextChannelTag(in text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard let base = text.baseAddress else { return nil }
        var index = start
        // memchr: most bodies have no `<` at all, and this runs on every webhook's content.
        while index < text.count, let found = memchr(base + index, Int32(UInt8(ascii: "<")), text.count - index) {
            let at = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
            var name = at + 1
            if name < text.count && text[name] == UInt8(ascii: "/") { name += 1 }
            if text.count - name >= 7 {
                var matched = true
                for letter in "channel".utf8 where matched {
                    matched = text[name] | 0x20 == letter  // any letter case
                    name += 1
                }
                if matched { return at }
            }
            index = at + 1
        }
        return nil
    }

    /// No control characters (a newline in an attribute), no bidi overrides (text that reads
    /// differently from what it is), at most 200 characters.
    static func cleanMetaValue(_ value: String) -> String {
        guard metaValueNeedsCleaning(value) else { return value }
        var scalars = String.UnicodeScalarView()
        var characters = 0
        for scalar in value.unicodeScalars where !isUnsafeInAttribute(scalar) {
            scalars.append(scalar)
            characters += 1
            if characters == maxMetaValueCharacters { break }
        }
        return String(scalars)
    }

    /// Whether `cleanMetaValue` could change `value`: past 200 bytes, or holding a control
    /// character or a character that may be a C1 control or a bidi mark (anything from U+0080).
    static func metaValueNeedsCleaning(_ value: String) -> Bool {
        value.withUTF8Bytes { bytes in
            // A byte from 0x80 is either a lead byte from 0xC2 or a continuation byte after
            // one (the string is valid UTF-8): any of them is something to look at.
            bytes.count > maxMetaValueCharacters || ByteWords.hasControlDeleteOrNonASCII(bytes)
        }
    }

    /// Control characters (C0, DEL, C1) and the bidi embedding, override and isolate marks.
    public static func isUnsafeInAttribute(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }

    /// The line given to `init(encodedNotification:)`, if this event was made from one.
    private var encodedLine: [UInt8]? {
        if case .notification(let line) = prepared { return line }
        return nil
    }

    public static func == (lhs: ChannelEvent, rhs: ChannelEvent) -> Bool {
        lhs.contentUTF8 == rhs.contentUTF8 && lhs.meta == rhs.meta && lhs.encodedLine == rhs.encodedLine
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

    /// The body as content, as Claude reads it: UTF-8 text defused (`neutralizingChannelTags`)
    /// and at most `maxContentBytes`, cut at a character boundary and never inside an `&lt;`;
    /// or a note for binary bodies. The body itself (its storage shared, not copied) when it
    /// has no tag and fits. Returns whether it was cut.
    /// `knownValid`: the caller has checked the body is UTF-8.
    public static func contentUTF8(fromBody body: [UInt8], contentType: String, knownValid: Bool = false)
        -> (utf8: [UInt8], truncated: Bool)
    {
        // Not `String(validating:)`: it looks up generic metadata on every call.
        let valid = knownValid || body.withUnsafeBufferPointer { UTF8Validation.isValid($0) }
        let text = valid ? body
            : Array("[binary body: \(body.count) bytes, content-type \(binaryNoteContentType(contentType))]".utf8)
        let (defused, truncated) = text.withUnsafeBufferPointer { Self.defused($0, limit: maxContentBytes) }
        return (defused ?? text, truncated)
    }

    /// The content type a binary body's note names: as the `content_type` meta shows it (cut
    /// to 200 characters, control characters removed, `application/octet-stream` when none was
    /// sent), so the note stays short whatever the sender put in the header.
    static func binaryNoteContentType(_ contentType: String) -> String {
        contentType.isEmpty ? "application/octet-stream" : cleanMetaValue(contentType)
    }

    /// Whether the content is `bytes` themselves (the same storage: the body, neither cut nor
    /// defused).
    public func contentIsStored(in bytes: [UInt8]) -> Bool {
        contentUTF8.count == bytes.count && contentUTF8.withUnsafeBufferPointer { content in
            bytes.withUnsafeBufferPointer { $0.baseAddress == content.baseAddress }
        }
    }

    /// The content as a JSON string literal, escaped once and kept for the notification line.
    public mutating func makeContentLiteral() -> [UInt8] {
        if case .contentLiteral(let literal) = prepared { return literal }
        var literal: [UInt8] = []
        contentUTF8.withUnsafeBufferPointer { JSONWriter.appendString(utf8: $0, into: &literal) }
        // Never in place of a whole line (that event's content is not its own).
        if prepared == nil { prepared = .contentLiteral(literal) }
        return literal
    }

    /// Writes the notification line straight into an output buffer.
    public func writeNotification(into out: inout [UInt8]) {
        if case .notification(let line) = prepared {
            out.append(contentsOf: line)
            return
        }
        out.appendLiteral(#"{"jsonrpc":"2.0","method":"notifications/claude/channel","params":{"content":"#)
        if case .contentLiteral(let literal) = prepared {
            out.append(contentsOf: literal)
        } else {
            contentUTF8.withUnsafeBufferPointer { JSONWriter.appendString(utf8: $0, into: &out) }
        }
        // `,"meta":{` and `}}}`: 12 bytes; then each pair's strings and punctuation.
        let bound = meta.reduce(12) { $0 + ReservedJSONWriter.room(for: $1.key) + ReservedJSONWriter.room(for: $1.value) + 2 }
        out.appendJSON(bound: bound) { line in
            line.literal(#","meta":{"#)
            for (index, pair) in meta.enumerated() {
                if index > 0 { line.byte(UInt8(ascii: ",")) }
                line.string(pair.key)
                line.byte(UInt8(ascii: ":"))
                line.string(pair.value)
            }
            line.literal("}}}")
        }
    }
}

/// Queued for stdout as it is (`ChannelNotifier.deliver`): its notification line is written
/// when the queue is, straight into the output buffer.
extension ChannelEvent: DeferredMessage {
    public func write(into bytes: inout [UInt8]) {
        writeNotification(into: &bytes)
    }
}
