import JSON
import Signing

/// A paired sender, as stored in `sources.json`. Fields the seed wrote come first; fields this
/// version adds are optional so a seed-written file loads unchanged, and unknown fields are
/// kept as they were.
public struct SourceRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var hmacSecret: String {
        didSet { currentSecretAlone = [hmacSecret] }
    }
    /// `[hmacSecret]`, made when the secret is set: what `acceptedSecrets` returns for nearly
    /// every webhook, where a new array each time was an allocation per webhook.
    private var currentSecretAlone: [String]
    public var callbackURL: String?
    public var pairedAt: String
    /// Absent in seed files: those sources use the seed's own headers.
    public var scheme: SignatureScheme
    /// The secret the last `rotate` replaced, accepted until `previousExpiresAt`.
    public var previousSecret: String?
    public var previousExpiresAt: String?
    /// Secrets replaced by rotations before the last one whose grace periods had not ended then,
    /// newest first: each is accepted until its own expiry. Stored as `"earlier_secrets":
    /// [{"secret": …, "expires_at": …}]`, beside the `previous_*` fields an earlier version of
    /// this product reads.
    public var earlierSecrets: [RetiredSecret]
    /// Set by `webhook-channel content`; absent, the scheme's default (`contentMode`).
    public var chosenContentMode: ContentMode?
    /// Set by `webhook-channel approver`: permission requests go to its callback, and its
    /// `v1=`-signed verdicts answer them (README "Permission relay"). Stored as `"approver": true`.
    public var approver: Bool
    /// Set by `webhook-channel filter`: only these event types are notified (README "Filters").
    /// Stored as `"event_filter": ["type", "prefix*", …]`.
    public var eventFilter: EventFilter?
    /// Set by `add --callback URL --allow-private`: replies to this source's callback may go to
    /// a private network address (the server's `WEBHOOK_ALLOW_PRIVATE_CALLBACKS` for one source).
    /// Stored as `"allow_private_callback": true`.
    public var allowsPrivateCallback: Bool = false
    public var extra: JSONObject

    public init(id: String, name: String, hmacSecret: String, callbackURL: String?, pairedAt: String,
                scheme: SignatureScheme = .webhook, previousSecret: String? = nil, previousExpiresAt: String? = nil,
                earlierSecrets: [RetiredSecret] = [], chosenContentMode: ContentMode? = nil, approver: Bool = false,
                allowsPrivateCallback: Bool = false, eventFilter: EventFilter? = nil, extra: JSONObject = JSONObject())
    {
        self.id = id
        self.name = name
        self.hmacSecret = hmacSecret
        currentSecretAlone = [hmacSecret]
        self.callbackURL = callbackURL
        self.pairedAt = pairedAt
        self.scheme = scheme
        self.previousSecret = previousSecret
        self.previousExpiresAt = previousExpiresAt
        self.earlierSecrets = earlierSecrets
        self.chosenContentMode = chosenContentMode
        self.approver = approver
        self.allowsPrivateCallback = allowsPrivateCallback
        self.eventFilter = eventFilter
        self.extra = extra
    }

    /// The project this source's events are pinned to (`webhook-channel route`): only sessions
    /// whose directory is inside it get them. Kept with the other added fields in `extra`.
    public var route: String? {
        get { extra["route"]?.stringValue }
        set { extra["route"] = newValue.map(JSONValue.string) }
    }

    /// What Claude reads for this source's events (README "Digests").
    public var contentMode: ContentMode { chosenContentMode ?? ContentMode.defaultMode(for: scheme) }

    /// Only a seed-scheme source with a callback can take permission requests and answer them;
    /// a flag left on a source that lost either (a hand-edited file) counts for nothing.
    public var isApprover: Bool { approver && scheme == .webhook && callbackURL != nil }

    /// Whether an event of this type is notified (no filter: every event).
    public func notifies(eventType: String?) -> Bool { eventFilter?.passes(eventType) ?? true }

    /// What `sources --json` and `webhook_sources` show of a source: never a secret.
    public var listing: JSONObject {
        [
            "source_id": .string(id), "name": .string(name), "scheme": .string(scheme.rawValue),
            "content_mode": .string(contentMode.rawValue), "callback_url": .optionalString(callbackURL),
            "paired_at": .string(pairedAt), "approver": .bool(isApprover),
            "event_filter": eventFilter.map { .array($0.patterns.map(JSONValue.string)) } ?? .null,
            "route": .optionalString(route),
        ]
    }

    /// The secrets a signature may be made with now: the current one, then each rotated-out
    /// one whose own grace period lasts, newest first.
    public func acceptedSecrets(now: Double) -> [String] {
        guard previousSecret != nil || !earlierSecrets.isEmpty else { return currentSecretAlone }
        var secrets = currentSecretAlone
        if let previousSecret, RetiredSecret(secret: previousSecret, expiresAt: previousExpiresAt ?? "").isAccepted(now: now) {
            secrets.append(previousSecret)
        }
        for earlier in earlierSecrets where earlier.isAccepted(now: now) { secrets.append(earlier.secret) }
        return secrets
    }
}

/// A secret a rotation replaced, and when its grace period ends (ISO 8601 UTC).
public struct RetiredSecret: Sendable, Equatable {
    public var secret: String
    public var expiresAt: String

    public init(secret: String, expiresAt: String) {
        self.secret = secret
        self.expiresAt = expiresAt
    }

    /// An expiry that does not parse ends the grace period: a secret is never accepted for longer
    /// than the file says.
    public func isAccepted(now: Double) -> Bool {
        guard let expiry = ISOTime.parse(expiresAt) else { return false }
        return now < expiry
    }
}

/// A code waiting for the person at the terminal (seed schema plus the device-flow token).
public struct PendingPairing: Sendable, Equatable {
    public var code: String
    public var name: String
    public var callbackURL: String?
    public var createdAt: String
    public var pollToken: String?
    public var extra: JSONObject
}

/// A code that was approved, kept for a while so the holder of its poll token can collect the
/// credentials once (RFC 8628-style device flow).
public struct ApprovedPairing: Sendable, Equatable {
    public var code: String
    public var sourceID: String
    public var approvedAt: String
    public var pollToken: String?
    public var claimed: Bool
}

/// The whole of `sources.json`.
public struct SourcesFile: Sendable, Equatable {
    public static let fileName = "sources.json"

    public var sources: [SourceRecord] = []
    public var pending: [PendingPairing] = []
    public var approved: [ApprovedPairing] = []
    /// Top-level keys this version does not know, written back untouched.
    public var extra = JSONObject()

    public init() {}

    public func source(id: String) -> SourceRecord? { sources.first { $0.id == id } }

    public struct DecodeError: Error, CustomStringConvertible {
        public let description: String
    }

    /// A missing file is an empty state; anything that is not the expected shape is an error
    /// (the caller moves the file aside rather than guess).
    public static func decode(_ bytes: [UInt8]) throws -> SourcesFile {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw DecodeError(description: "not valid JSON (\(error))")
        }
        guard case .object(let root) = value else { throw DecodeError(description: "the top level is not an object") }
        var file = SourcesFile()
        for member in root {
            switch member.key {
            case "sources":
                guard let object = member.value.objectValue else { throw DecodeError(description: "\"sources\" is not an object") }
                file.sources = try object.map { try decodeSource(id: $0.key, $0.value) }
            case "pending_pairings":
                guard let object = member.value.objectValue else {
                    throw DecodeError(description: "\"pending_pairings\" is not an object")
                }
                file.pending = try object.map { try decodePending(code: $0.key, $0.value) }
            case "approved_pairings":
                // Only ours; a malformed entry is dropped rather than failing the whole file.
                file.approved = member.value.objectValue?.compactMap { decodeApproved(code: $0.key, $0.value) } ?? []
            default:
                file.extra[member.key] = member.value
            }
        }
        return file
    }

    private static func decodeSource(id: String, _ value: JSONValue) throws -> SourceRecord {
        guard var object = value.objectValue else { throw DecodeError(description: "source \(id) is not an object") }
        guard let name = object["name"]?.stringValue, let secret = object["hmac_secret"]?.stringValue else {
            throw DecodeError(description: "source \(id) lacks a name or hmac_secret")
        }
        var scheme = SignatureScheme.webhook
        if let text = object["scheme"]?.stringValue {
            guard let known = SignatureScheme(rawValue: text) else {
                throw DecodeError(description: "source \(id) has an unknown scheme")
            }
            scheme = known
        }
        let record = SourceRecord(
            id: id, name: name, hmacSecret: secret,
            callbackURL: object["callback_url"]?.stringValue,
            pairedAt: object["paired_at"]?.stringValue ?? "",
            scheme: scheme,
            previousSecret: object["previous_secret"]?.stringValue,
            previousExpiresAt: object["previous_expires_at"]?.stringValue,
            earlierSecrets: object["earlier_secrets"]?.arrayValue.map(decodeEarlierSecrets) ?? [],
            // A word a later version may add is kept as it was (in `extra`) and read as absent.
            chosenContentMode: object["content_mode"]?.stringValue.flatMap(ContentMode.init(rawValue:)),
            approver: object["approver"]?.boolValue ?? false,
            allowsPrivateCallback: object["allow_private_callback"]?.boolValue ?? false,
            eventFilter: object["event_filter"]?.arrayValue.flatMap { items in
                EventFilter(patterns: items.compactMap(\.stringValue)).flatMap { $0.patterns.count == items.count ? $0 : nil }
            })
        for key in ["name", "hmac_secret", "callback_url", "paired_at", "scheme", "previous_secret", "previous_expires_at"] {
            object[key] = nil
        }
        if object["earlier_secrets"]?.arrayValue != nil { object["earlier_secrets"] = nil }
        if record.chosenContentMode != nil { object["content_mode"] = nil }
        if object["approver"]?.boolValue != nil { object["approver"] = nil }
        if object["allow_private_callback"]?.boolValue != nil { object["allow_private_callback"] = nil }
        if record.eventFilter != nil { object["event_filter"] = nil }
        var withExtra = record
        withExtra.extra = object
        return withExtra
    }

    /// An entry that is not `{"secret": …, "expires_at": …}` (a hand edit) is dropped: nothing is
    /// accepted without an expiry.
    private static func decodeEarlierSecrets(_ items: [JSONValue]) -> [RetiredSecret] {
        items.compactMap { item in
            guard let secret = item["secret"]?.stringValue, let expiry = item["expires_at"]?.stringValue else { return nil }
            return RetiredSecret(secret: secret, expiresAt: expiry)
        }
    }

    private static func decodePending(code: String, _ value: JSONValue) throws -> PendingPairing {
        guard var object = value.objectValue else { throw DecodeError(description: "pending pairing is not an object") }
        let pending = PendingPairing(
            code: code.uppercased(),
            name: object["name"]?.stringValue ?? "",
            callbackURL: object["callback_url"]?.stringValue,
            createdAt: object["created_at"]?.stringValue ?? "",
            pollToken: object["poll_token"]?.stringValue,
            extra: JSONObject())
        for key in ["name", "callback_url", "created_at", "poll_token"] { object[key] = nil }
        var withExtra = pending
        withExtra.extra = object
        return withExtra
    }

    private static func decodeApproved(code: String, _ value: JSONValue) -> ApprovedPairing? {
        guard let object = value.objectValue, let sourceID = object["source_id"]?.stringValue else { return nil }
        return ApprovedPairing(
            code: code, sourceID: sourceID,
            approvedAt: object["approved_at"]?.stringValue ?? "",
            pollToken: object["poll_token"]?.stringValue,
            claimed: object["claimed"]?.boolValue ?? false)
    }

    /// 2-space pretty JSON in the seed's key order, new fields after the seed's.
    public func encode() -> [UInt8] {
        var root = JSONObject()
        var sourcesObject = JSONObject()
        for source in sources {
            var entry: JSONObject = [
                "name": .string(source.name),
                "hmac_secret": .string(source.hmacSecret),
                "callback_url": .optionalString(source.callbackURL),
                "paired_at": .string(source.pairedAt),
            ]
            if source.scheme != .webhook || source.extra["scheme"] != nil { entry["scheme"] = .string(source.scheme.rawValue) }
            if let previous = source.previousSecret { entry["previous_secret"] = .string(previous) }
            if let expiry = source.previousExpiresAt { entry["previous_expires_at"] = .string(expiry) }
            if !source.earlierSecrets.isEmpty {
                entry["earlier_secrets"] = .array(source.earlierSecrets.map {
                    .object(["secret": .string($0.secret), "expires_at": .string($0.expiresAt)])
                })
            }
            if let mode = source.chosenContentMode { entry["content_mode"] = .string(mode.rawValue) }
            if source.approver { entry["approver"] = true }
            if source.allowsPrivateCallback { entry["allow_private_callback"] = true }
            if let filter = source.eventFilter { entry["event_filter"] = .array(filter.patterns.map(JSONValue.string)) }
            for member in source.extra { entry[member.key] = member.value }
            sourcesObject[source.id] = .object(entry)
        }
        root["sources"] = .object(sourcesObject)
        var pendingObject = JSONObject()
        for pairing in pending {
            var entry: JSONObject = [
                "name": .string(pairing.name),
                "callback_url": .optionalString(pairing.callbackURL),
                "created_at": .string(pairing.createdAt),
            ]
            if let token = pairing.pollToken { entry["poll_token"] = .string(token) }
            for member in pairing.extra { entry[member.key] = member.value }
            pendingObject[pairing.code] = .object(entry)
        }
        root["pending_pairings"] = .object(pendingObject)
        if !approved.isEmpty {
            var approvedObject = JSONObject()
            for pairing in approved {
                var entry: JSONObject = ["source_id": .string(pairing.sourceID), "approved_at": .string(pairing.approvedAt)]
                if let token = pairing.pollToken { entry["poll_token"] = .string(token) }
                entry["claimed"] = .bool(pairing.claimed)
                approvedObject[pairing.code] = .object(entry)
            }
            root["approved_pairings"] = .object(approvedObject)
        }
        for member in extra { root[member.key] = member.value }
        return JSONWriter.pretty(.object(root))
    }
}
