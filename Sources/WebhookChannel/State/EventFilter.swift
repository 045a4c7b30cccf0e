#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// Which event types of a source reach Claude (README "Filters"). The others are still verified,
/// logged and deduplicated, only not notified. Set with `webhook-channel filter`.
public struct EventFilter: Sendable, Equatable {
    /// Exact event types, or prefixes written with a trailing `*`; a lone `*` matches every
    /// event, also one without a type.
    public let patterns: [String]

    public init?(patterns: [String]) {
        guard !patterns.isEmpty, patterns.allSatisfy(Self.isValidPattern) else { return nil }
        self.patterns = patterns
    }

    /// Parses the CLI's comma-separated list (spaces around items are ignored, duplicates dropped).
    public init?(list: String) {
        var seen: [String] = []
        for item in list.split(separator: ",") {
            let pattern = item.trimmingWhitespace()
            if !pattern.isEmpty, !seen.contains(pattern) { seen.append(pattern) }
        }
        self.init(patterns: seen)
    }

    /// A `*` anywhere but at the end would suggest a glob this does not do; control characters
    /// and 200+ characters cannot be an event type (those are cut to 200).
    static func isValidPattern(_ pattern: String) -> Bool {
        !pattern.isEmpty && pattern.count <= 200 && !pattern.dropLast().contains("*")
            && !pattern.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// Whether an event of this type is notified. An event without a type passes only `*`.
    public func passes(_ type: String?) -> Bool {
        patterns.contains { pattern in
            guard pattern.hasSuffix("*") else { return pattern == type }
            guard let type else { return pattern == "*" }
            return type.hasPrefix(pattern.dropLast())
        }
    }

    public var list: String { patterns.joined(separator: ",") }
}
