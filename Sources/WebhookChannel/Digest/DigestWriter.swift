import JSON
import MCP

/// Collects a digest's lines, one field a line, and assembles them under the byte budget with
/// the footer always last and always whole.
struct DigestWriter {
    /// README "Digests": what a person would read in a notification, about a tenth of a 16 KiB cut.
    static let maxBytes = 1536

    private var lines: [String] = []
    private var byteCount = 0

    /// True once the lines already fill the budget: builders stop walking the payload then, so
    /// a huge array or object costs no more than a small one.
    var isFull: Bool { byteCount >= Self.maxBytes }

    mutating func line(_ text: String) {
        guard !isFull else { return }
        lines.append(text)
        byteCount += text.utf8.count + 1
    }

    /// `label: value`, left out when the value is missing, null, empty or not a scalar.
    mutating func field(_ label: String, _ value: JSONValue?, limit: Int = PayloadText.maxCharacters) {
        field(label, text: PayloadText.scalar(value, limit: limit))
    }

    mutating func field(_ label: String, text: String?) {
        guard let text, !text.isEmpty else { return }
        line("\(label): \(text)")
    }

    /// The lines, cut at a UTF-8 boundary where they must be, then `footer`. Each line is
    /// measured defused, as Claude reads it (`<channel` written `&lt;channel`), so the escapes
    /// count towards the budget and the digest Claude reads is never over it.
    func text(footer: String) -> String {
        let budget = Self.maxBytes - footer.utf8.count - 1
        var out = ""
        for line in lines {
            let separator = out.isEmpty ? 0 : 1
            let room = budget - out.utf8.count - separator
            guard room > 0 else { break }
            if separator == 1 { out.append("\n") }
            out.append(ChannelEvent.neutralizingChannelTags(line, maxBytes: room))
        }
        return out.isEmpty ? footer : out + "\n" + footer
    }
}
