#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// The media type of a `Content-Type` value (RFC 9110 §8.3.1): parameters such as `charset`
/// are ignored, letter case too.
public enum MediaType {
    /// `application/json`, and with `allowSuffix` also any `…/…+json` (RFC 6839).
    public static func isJSON(_ contentType: String?, allowSuffix: Bool) -> Bool {
        guard let type = essence(contentType) else { return false }
        return type == "application/json" || (allowSuffix && type.hasSuffix("+json"))
    }

    /// `application/x-www-form-urlencoded`: HTML forms, and GitHub hooks set to that type.
    public static func isFormURLEncoded(_ contentType: String?) -> Bool {
        essence(contentType) == "application/x-www-form-urlencoded"
    }

    /// `type/subtype`, lowercased, without parameters.
    private static func essence(_ contentType: String?) -> String? {
        guard let contentType else { return nil }
        return contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingWhitespace().lowercased() } ?? ""
    }
}
