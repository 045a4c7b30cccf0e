#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import JSON
import Signing

/// What the operator does to sources, as pure functions over `SourcesFile` (run by the CLI
/// under the state lock).
public enum SourceAdmin {
    /// A rotated-out secret keeps working this long, so senders can switch without a gap.
    public static let rotationGrace: Double = 24 * 3600

    public enum Failure: Error, Equatable {
        case unknownSource
        /// The change is refused for this source; the text says why, for the person.
        case refused(String)
    }

    /// A new secret in the form the scheme expects (Standard Webhooks: base64 after `whsec_`).
    public static func generateSecret(for scheme: SignatureScheme) -> String {
        switch scheme {
        case .standard: return "whsec_" + Base64.encode(SecureRandom.bytes(24))
        default: return CredentialGenerator.hmacSecret()
        }
    }

    public static func add(_ file: inout SourcesFile, name: String, scheme: SignatureScheme, secret: String,
                           callbackURL: String?, allowsPrivateCallback: Bool = false, now: Double) -> SourceRecord
    {
        var source = SourceRecord(id: CredentialGenerator.sourceID(), name: name, hmacSecret: secret,
                                  callbackURL: callbackURL, pairedAt: ISOTime.format(now), scheme: scheme,
                                  allowsPrivateCallback: allowsPrivateCallback && callbackURL != nil)
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

    /// Makes a source an approver or not (README "Permission relay"). Only a `webhook`-scheme source with a
    /// callback can be one: permission requests go to its callback, and its verdicts must be
    /// signed with the timestamp-bound `v1=` form, which provider schemes do not have.
    public static func setApprover(_ file: inout SourcesFile, id: String, on: Bool) throws(Failure) -> SourceRecord {
        guard let index = file.sources.firstIndex(where: { $0.id == id }) else { throw .unknownSource }
        let source = file.sources[index]
        if on, source.scheme != .webhook {
            throw .refused("\(source.id) (\(source.name)) uses the \(source.scheme.rawValue) scheme; only a webhook-scheme "
                + "source (paired with /pair) can be an approver.")
        }
        if on, source.callbackURL == nil {
            throw .refused("\(source.id) (\(source.name)) has no callback URL, so permission requests could not reach it; "
                + "pair it again with a callback_url.")
        }
        file.sources[index].approver = on
        file.sources[index].extra["approver"] = nil
        return file.sources[index]
    }

    /// Sets (or, with nil, clears) which event types of the source are notified (README "Filters").
    public static func setEventFilter(_ file: inout SourcesFile, id: String, filter: EventFilter?) throws(Failure) -> SourceRecord {
        guard let index = file.sources.firstIndex(where: { $0.id == id }) else { throw .unknownSource }
        file.sources[index].eventFilter = filter
        file.sources[index].extra["event_filter"] = nil
        return file.sources[index]
    }

    /// Rotated-out secrets kept at once besides the current one: every refused signature is
    /// checked against each of them, so a source rotated many times in a day must not make a
    /// forged request cost many HMACs of a 1 MiB body.
    public static let maxRetiredSecrets = 8

    /// What `rotate` did: the source with its new secret, and the grace periods that ended
    /// early because more than `maxRetiredSecrets` were running (oldest first).
    public struct Rotation: Sendable {
        public var source: SourceRecord
        public var droppedEarly: [RetiredSecret]
    }

    /// Gives the source `newSecret`; the replaced one is accepted until `previous_expires_at`
    /// (now + 24 h), and each secret replaced before it until its own expiry (`earlier_secrets`),
    /// so a second rotation never cuts short the grace period the first one promised. Expired
    /// ones are forgotten here.
    public static func rotate(_ file: inout SourcesFile, id: String, now: Double, newSecret: String) throws(Failure) -> Rotation {
        guard let index = file.sources.firstIndex(where: { $0.id == id }) else { throw .unknownSource }
        var source = file.sources[index]
        var retired: [RetiredSecret] = []
        if let previous = source.previousSecret {
            retired.append(RetiredSecret(secret: previous, expiresAt: source.previousExpiresAt ?? ""))
        }
        retired += source.earlierSecrets
        retired.removeAll { !$0.isAccepted(now: now) }
        let dropped = retired.count > maxRetiredSecrets - 1 ? Array(retired[(maxRetiredSecrets - 1)...].reversed()) : []
        source.earlierSecrets = Array(retired.prefix(maxRetiredSecrets - 1))
        source.extra["earlier_secrets"] = nil
        source.previousSecret = source.hmacSecret
        source.previousExpiresAt = ISOTime.format(now + rotationGrace)
        source.hmacSecret = newSecret
        file.sources[index] = source
        return Rotation(source: source, droppedEarly: dropped)
    }
}
