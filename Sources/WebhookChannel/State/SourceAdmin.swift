import Foundation

/// What the operator does to sources, as pure functions over `SourcesFile` (run by the CLI
/// under the state lock).
public enum SourceAdmin {
    /// A rotated-out secret keeps working this long, so senders can switch without a gap.
    public static let rotationGrace: Double = 24 * 3600

    public enum Failure: Error, Equatable {
        case unknownSource
    }

    /// A new secret in the form the scheme expects (Standard Webhooks: base64 after `whsec_`).
    public static func generateSecret(for scheme: SignatureScheme) -> String {
        switch scheme {
        case .standard: return "whsec_" + Base64.encode(SecureRandom.bytes(24))
        default: return CredentialGenerator.hmacSecret()
        }
    }

    public static func add(_ file: inout SourcesFile, name: String, scheme: SignatureScheme, secret: String,
                           callbackURL: String?, now: Double) -> SourceRecord
    {
        var source = SourceRecord(id: CredentialGenerator.sourceID(), name: name, hmacSecret: secret,
                                  callbackURL: callbackURL, pairedAt: ISOTime.format(now), scheme: scheme)
        // Written explicitly so the file says which headers this source uses.
        source.extra = JSONObject()
        file.sources.append(source)
        return source
    }

    public static func revoke(_ file: inout SourcesFile, id: String) throws(Failure) -> SourceRecord {
        guard let index = file.sources.firstIndex(where: { $0.id == id }) else { throw .unknownSource }
        return file.sources.remove(at: index)
    }

    /// Sets what Claude reads for the source's events; an unknown word left by a later version
    /// is replaced.
    public static func setContentMode(_ file: inout SourcesFile, id: String, mode: ContentMode) throws(Failure) -> SourceRecord {
        guard let index = file.sources.firstIndex(where: { $0.id == id }) else { throw .unknownSource }
        file.sources[index].chosenContentMode = mode
        file.sources[index].extra["content_mode"] = nil
        return file.sources[index]
    }

    /// Returns the new secret; the old one is accepted until `previous_expires_at`.
    public static func rotate(_ file: inout SourcesFile, id: String, now: Double, newSecret: String) throws(Failure) -> SourceRecord {
        guard let index = file.sources.firstIndex(where: { $0.id == id }) else { throw .unknownSource }
        file.sources[index].previousSecret = file.sources[index].hmacSecret
        file.sources[index].previousExpiresAt = ISOTime.format(now + rotationGrace)
        file.sources[index].hmacSecret = newSecret
        return file.sources[index]
    }
}
