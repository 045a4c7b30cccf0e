import HTTP
import JSON
import Signing

/// What Claude reads instead of a provider's payload (README "Digests"): plain text of at most 1,536
/// bytes with the provider, the event type and action, the fields a person acts on, and last
/// the body's size and how to get all of it. Pure: bytes in, text out; any input gives a
/// bounded digest.
public enum EventDigest {
    /// The digest of `body`, sent as `contentType`, an event of `eventType` (the `event_type`
    /// meta) from a source of `scheme`, logged as `eventID`.
    public static func text(scheme: SignatureScheme, eventType: String?, contentType: String, body: [UInt8],
                            eventID: String) -> String
    {
        var writer = DigestWriter()
        let payload = formPayload(scheme: scheme, contentType: contentType, body: body) ?? (try? JSONParser.parse(body))
        let type = eventType ?? payload?["type"]?.stringValue
        var header = "\(providerName(scheme)) event: " + (type.map { PayloadText.clean($0, limit: 100) } ?? "unknown")
        if let action = PayloadText.scalar(payload?["action"], limit: 100) { header += ", action: \(action)" }
        writer.line(header)

        switch payload {
        case .object(let object)?:
            switch scheme {
            case .github: GitHubDigest.write(event: eventType, payload: .object(object), into: &writer)
            case .stripe: StripeDigest.write(payload: .object(object), into: &writer)
            case .standard, .slack, .webhook: GenericDigest.write(object, into: &writer)
            }
        case .array(let items)?:
            writer.line("Body: a JSON array of \(PayloadText.grouped(items.count)) items, not an object")
        case let value?:
            writer.field("Body: a JSON value, not an object", value)
        case nil:
            if let text = String(validating: body, as: UTF8.self) {
                writer.line("Body: not JSON")
                writer.field("Text", text: PayloadText.clean(text))
            } else {
                writer.line("Body: binary, not UTF-8 text")
            }
        }
        let id = PayloadText.clean(eventID, limit: 100)
        // The size as plain digits, as `body_bytes` gives it: a reader or a script finds the
        // body's length in it as it is.
        return writer.text(footer: "Full payload: \(body.count) bytes — call webhook_event {\"event_id\":\"\(id)\"}")
    }

    /// The content of `record`'s notification when its source's `mode` calls for a digest;
    /// `nil` to deliver the body as it is. `digest` mode digests every body, a tiny one too
    /// (SPEC 14: the mode promises a digest, with its `digest` and `body_bytes` meta).
    static func notificationText(for record: EventRecord, mode: ContentMode, scheme: SignatureScheme) -> String? {
        guard mode.prefersDigest(bodyBytes: record.body.count) else { return nil }
        return text(scheme: scheme, eventType: record.type, contentType: record.contentType, body: record.body,
                    eventID: record.id)
    }

    /// What a form body (`application/x-www-form-urlencoded`) says, for the providers that send
    /// one: a GitHub hook set to that content type, and Slack interactions, send their JSON as
    /// the field `payload`; a Slack slash command sends plain fields (`command`, `text`,
    /// `user_name`, …), read as an object of strings with `type` `slash_command`. Nil (the
    /// body is read as it is) for another scheme or content type, a body that is not validly
    /// encoded, or a `payload` that is not JSON.
    static func formPayload(scheme: SignatureScheme, contentType: String, body: [UInt8]) -> JSONValue? {
        guard scheme == .github || scheme == .slack, MediaType.isFormURLEncoded(contentType),
              let fields = FormURLEncoded.fields(in: body)
        else { return nil }
        if let json = FormURLEncoded.value(of: "payload", in: fields) {
            return try? JSONParser.parse(json)
        }
        guard scheme == .slack, !fields.isEmpty else { return nil }
        var object = JSONObject()
        if FormURLEncoded.value(of: "command", in: fields) != nil { object["type"] = "slash_command" }
        for field in fields {
            let name = String(decoding: field.name, as: UTF8.self)
            if object[name] == nil { object[name] = .string(String(decoding: field.value, as: UTF8.self)) }
        }
        return .object(object)
    }

    static func providerName(_ scheme: SignatureScheme) -> String {
        switch scheme {
        case .github: return "GitHub"
        case .stripe: return "Stripe"
        case .standard: return "Standard Webhooks"
        case .slack: return "Slack"
        case .webhook: return "Webhook"
        }
    }
}
