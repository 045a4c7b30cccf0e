#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import HTTP
import JSON
import Signing
import Platform

/// The pure part of receiving one webhook: a request and the source it names in, a judgement
/// out — refused, a Slack challenge, a permission verdict, or an event to record — with no
/// state changed and no I/O, so every rule can be tested with values. `ChannelState` does
/// what must be serial around it: the duplicate memory, the notification bound, the log.
enum WebhookIntake {
    struct Request {
        /// Set for `/webhook/{id}`, where the source's scheme decides the headers; nil for
        /// `/webhook`, which uses the seed's headers.
        var pathSourceID: String?
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// A verified event, before the duplicate memory has seen it.
    struct Candidate {
        /// By reference: its fields are read in place (`PairedSource`).
        var source: PairedSource
        /// The scheme its signature was checked with.
        var scheme: SignatureScheme
        var deliveryID: String?
        var type: String?
        var contentType: String
        /// What the duplicate memory is asked about and then remembers.
        var replayKeys: [String]
        /// What it remembers without asking (`SignatureDetails.accompanyingSeedSignature`).
        var rememberedKeys: [String] = []
        /// A permission verdict from an approver (`v1=`-signed, seed route), else nil.
        var verdict: (requestID: String?, behavior: String?)?
        /// The body passed the JSON check, so it is valid UTF-8 (JSON outside strings is
        /// ASCII, and the check validates every string): not validated again for the log line
        /// and the notification.
        var bodyIsUTF8 = false
    }

    enum Judgement {
        /// Unknown source, bad or missing signature, stale timestamp: one answer for all.
        case unauthorized
        case invalidJSON
        /// Slack's `url_verification`: answer the challenge, deliver nothing.
        case challenge(String)
        case candidate(Candidate)
    }

    /// The top-level body members the channel reads: the event type (`type`, `event`),
    /// Stripe's `id`, Slack's `challenge`, and a permission verdict's `request_id` and `behavior`.
    static let bodyFieldNames = ["type", "event", "id", "challenge", "request_id", "behavior"]

    static func judge(_ request: Request, now: Double, source findSource: (String) -> PairedSource?) -> Judgement {
        let headers = request.headers
        guard let sourceID = request.pathSourceID ?? headers["X-Source-Id"], let paired = findSource(sourceID) else {
            return .unauthorized
        }
        // `/webhook` speaks the seed's scheme, for sources that use it; a provider's source is
        // reached at its own URL with its own scheme, and nothing else signed with its secret.
        if request.pathSourceID == nil && paired.scheme != .webhook { return .unauthorized }
        let scheme = paired.scheme
        let verdict = SignatureScheme.verify(
            scheme: scheme, secrets: paired.acceptedSecrets(now: now),
            input: SignatureInput(headerLookup: { headers[$0] }, body: request.body, now: Int64(now)))
        guard case .valid(let details) = verdict else { return .unauthorized }

        let contentType = headers["Content-Type"] ?? ""
        // Only a few top-level strings of a body are ever read, so it is validated, not parsed.
        var fields: JSONParser.NamedStrings? = nil
        if request.pathSourceID == nil || MediaType.isJSON(contentType, allowSuffix: true) {
            do {
                fields = try request.body.withUnsafeBufferPointer { bytes throws(JSONParseError) in
                    try JSONParser.validate(bytes, collectingStrings: bodyFieldNames)
                }
            } catch {
                // A provider's body that is not JSON is still its event (kept as sent); one
                // nested past the limit is refused everywhere (SPEC 9).
                if request.pathSourceID == nil || error.isTooDeep { return .invalidJSON }
            }
        }
        if scheme == .slack, fields?["type"] == "url_verification", let challenge = fields?["challenge"] {
            return .challenge(challenge)
        }

        let deliveryID = Self.deliveryID(headers: headers, bodyFields: fields, scheme: scheme)
        var replayKeys: [String] = []
        if let deliveryID { replayKeys.append(deliveryKey(sourceID: paired.id, deliveryID: deliveryID)) }
        if let seedSignature = details.seedSignature {
            replayKeys.append(seedSignatureKey(seedSignature, sourceID: paired.id))
        }
        var rememberedKeys: [String] = []
        if let accompanying = details.accompanyingSeedSignature {
            rememberedKeys.append(seedSignatureKey(accompanying, sourceID: paired.id))
        }

        // Only on the seed route, only from an approver, and only when signed with `v1=`, which
        // binds the timestamp: a `sha256=` signature alone could be replayed for 24 h after a
        // restart forgot it. The same body from any other source is an ordinary event.
        var permissionVerdict: (requestID: String?, behavior: String?)? = nil
        if request.pathSourceID == nil, paired.isApprover, fields?["type"] == PermissionRelay.verdictType {
            guard details.seedSignature == nil else { return .unauthorized }
            permissionVerdict = (fields?["request_id"], fields?["behavior"])
        }
        return .candidate(Candidate(
            source: paired, scheme: scheme, deliveryID: deliveryID, type: eventType(headers: headers, bodyFields: fields),
            contentType: contentType, replayKeys: replayKeys, rememberedKeys: rememberedKeys, verdict: permissionVerdict,
            bodyIsUTF8: fields != nil))
    }

    /// The duplicate memory's key for a delivery id: `d:<source id>:<delivery id>`, made with
    /// one allocation (string interpolation appended piece by piece, ~1,100 instructions).
    static func deliveryKey(sourceID: String, deliveryID: String) -> String {
        sourceID.withUTF8Bytes { sourceBytes in
            deliveryID.withUTF8Bytes { deliveryBytes in
                String(unsafeUninitializedCapacity: 3 + sourceBytes.count + deliveryBytes.count) { out in
                    out[0] = UInt8(ascii: "d")
                    out[1] = UInt8(ascii: ":")
                    let base = out.baseAddress!
                    if let source = sourceBytes.baseAddress { (base + 2).update(from: source, count: sourceBytes.count) }
                    var at = 2 + sourceBytes.count
                    out[at] = UInt8(ascii: ":")
                    at += 1
                    if let delivery = deliveryBytes.baseAddress { (base + at).update(from: delivery, count: deliveryBytes.count) }
                    return at + deliveryBytes.count
                }
            }
        }
    }

    /// The duplicate memory's key for a seed `sha256=` signature: remembered (and logged) only
    /// as a digest, so a signature never reaches a file.
    static func seedSignatureKey(_ signature: String, sourceID: String) -> String {
        let digest = Hex.encode(HMACSHA256.mac(key: Array("replay-memory".utf8), message: Array(signature.utf8)))
        return "s:\(sourceID):\(digest)"
    }

    /// README "HTTP API": the first present of these headers, or Stripe's body `id`.
    /// Static: an array literal in the function would be allocated on every call.
    private static let deliveryIDHeaders = ["X-Webhook-Id", "X-Delivery-Id", "X-GitHub-Delivery", "webhook-id", "svix-id"]
    private static let eventTypeHeaders = ["X-GitHub-Event", "X-Event-Type"]
    private static let eventTypeMembers = ["type", "event"]

    static func deliveryID(headers: HTTPHeaders, bodyFields: JSONParser.NamedStrings?, scheme: SignatureScheme) -> String? {
        for name in deliveryIDHeaders {
            if let value = headers[name], !value.isEmpty { return value.truncated(toCharacters: 200) }
        }
        // An empty id is no id: taken as one, every later event with an empty id would be
        // called a duplicate of the first.
        if scheme == .stripe, let id = bodyFields?["id"], !id.isEmpty { return id.truncated(toCharacters: 200) }
        return nil
    }

    static func eventType(headers: HTTPHeaders, bodyFields: JSONParser.NamedStrings?) -> String? {
        for name in eventTypeHeaders {
            if let value = headers[name], !value.isEmpty { return value.truncated(toCharacters: 200) }
        }
        for name in eventTypeMembers {
            if let type = bodyFields?[name], !type.isEmpty { return type.truncated(toCharacters: 200) }
        }
        return nil
    }
}
