import JSON

/// Standard Webhooks, Slack and the seed's own senders have no fixed payload: a digest lists
/// the scalar fields of the top level and of the objects one level down (README "Digests"), as
/// `key: value` and `object.key: value`, in the payload's order, until the budget is full.
enum GenericDigest {
    /// Top-level fields already in the header, or meaning nothing to a reader (Slack's
    /// deprecated verification token).
    static let skippedKeys: Set<String> = ["type", "action", "token"]

    static func write(_ payload: JSONObject, into writer: inout DigestWriter) {
        for member in payload where member.value.objectValue == nil && !skippedKeys.contains(member.key) {
            guard !writer.isFull else { return }
            writer.field(PayloadText.clean(member.key, limit: 60), member.value)
        }
        for member in payload {
            guard case .object(let object) = member.value else { continue }
            let prefix = PayloadText.clean(member.key, limit: 60)
            for inner in object {
                guard !writer.isFull else { return }
                writer.field("\(prefix).\(PayloadText.clean(inner.key, limit: 60))", inner.value)
            }
        }
    }
}
