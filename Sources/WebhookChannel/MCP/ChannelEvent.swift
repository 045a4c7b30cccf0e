/// One event as Claude sees it: the body text and string-only meta attributes.
public struct ChannelEvent: Sendable, Equatable {
    /// Claude Code shows at most this much; the full body stays in the event log.
    public static let maxContentBytes = 16 * 1024

    public var content: String
    /// Ordered key/value pairs. Keys match `[A-Za-z0-9_]+`; every value is a string, because
    /// Claude Code drops the whole message otherwise.
    public var meta: [(key: String, value: String)]

    public init(content: String, meta: [(key: String, value: String)]) {
        self.content = content
        self.meta = meta.filter { ChannelEvent.isValidMetaKey($0.key) }
    }

    public static func == (lhs: ChannelEvent, rhs: ChannelEvent) -> Bool {
        lhs.content == rhs.content && lhs.meta.elementsEqual(rhs.meta, by: { $0 == $1 })
    }

    public static func isValidMetaKey(_ key: String) -> Bool {
        // "source" is the tag's own attribute (<channel source="webhook">); never shadow it.
        !key.isEmpty && key != "source" && key.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x5F
        }
    }

    /// The body as content: UTF-8 text cut at a character boundary, or a note for binary bodies.
    /// Returns whether it was cut.
    public static func content(fromBody body: UnsafeRawBufferPointer, contentType: String) -> (text: String, truncated: Bool) {
        let bytes = body.bindMemory(to: UInt8.self)
        guard let whole = String(validating: bytes, as: UTF8.self) else {
            return ("[binary body: \(body.count) bytes, content-type \(contentType.isEmpty ? "unknown" : contentType)]", false)
        }
        guard body.count > maxContentBytes else { return (whole, false) }
        var cut = maxContentBytes
        // Step back over continuation bytes (10xxxxxx) to the start of a character.
        while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        return (String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<cut]), as: UTF8.self), true)
    }

    /// Writes the notification line straight into an output buffer.
    public func writeNotification(into out: inout [UInt8]) {
        out.append(contentsOf: #"{"jsonrpc":"2.0","method":"notifications/claude/channel","params":{"content":"#.utf8)
        JSONWriter.appendString(content, into: &out)
        out.append(contentsOf: #","meta":{"#.utf8)
        for (index, pair) in meta.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(pair.key, into: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.appendString(pair.value, into: &out)
        }
        out.append(contentsOf: "}}}".utf8)
    }
}
