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
        guard let contentType else { return false }
        let type = contentType.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingWhitespace().lowercased()
        } ?? ""
        return type == "application/json" || (allowSuffix && type.hasSuffix("+json"))
    }
}
