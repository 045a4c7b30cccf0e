#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import MCP

/// A source's name is shown to the person approving it, in listings and in every event's
/// `source_name`: it must read as what it is.
public enum SourceName {
    public static let maxBytes = 200
    public static let rule = "a non-empty name of at most 200 bytes, without control or bidi-override characters"

    /// The name as kept (surrounding whitespace dropped), or nil when it is empty, too long,
    /// or holds a control character (a newline could fake a second line of a listing) or a
    /// bidi embedding/override/isolate mark (text that displays as something else).
    public static func validated(_ raw: String) -> String? {
        let name = raw.trimmingWhitespace()
        guard !name.isEmpty, name.utf8.count <= maxBytes,
              !name.unicodeScalars.contains(where: ChannelEvent.isUnsafeInAttribute)
        else { return nil }
        return name
    }
}
