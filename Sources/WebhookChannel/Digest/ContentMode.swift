import Signing

/// What Claude reads for a source's events (README "Digests"): the body itself, a digest of it, or the
/// body while it is small and a digest once it is not.
public enum ContentMode: String, Sendable, CaseIterable {
    case full, digest, auto

    /// `auto` delivers a body up to this size as it is: below it a digest saves little.
    public static let autoDigestThreshold = 2048

    /// A provider's payload is written for machines, so its sources start in `auto`; the seed's
    /// own senders write short bodies meant to be read as they are.
    public static func defaultMode(for scheme: SignatureScheme) -> ContentMode {
        scheme == .webhook ? .full : .auto
    }

    /// Whether a body of `bodyBytes` bytes is worth a digest in this mode.
    public func prefersDigest(bodyBytes: Int) -> Bool {
        switch self {
        case .full: return false
        case .digest: return true
        case .auto: return bodyBytes > Self.autoDigestThreshold
        }
    }
}
