#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import MCP
import Signing

/// What Claude Code is sent for a logged event: the body (cut at 16 KiB) or its digest, and
/// the string meta of the `<channel>` tag. The same for a first delivery and a replay.
enum EventNotification {
    /// The notification for an event, the same for a first delivery and a replay: the body, or
    /// its digest when the source's content mode calls for one (README "Digests").
    /// `bodyIsUTF8`: the body was checked already (it passed the JSON check).
    static func channelEvent(for record: EventRecord, replay: Bool, contentMode: ContentMode = .full,
                             scheme: SignatureScheme = .webhook, bodyIsUTF8: Bool = false) -> ChannelEvent
    {
        let digest = EventDigest.notificationText(for: record, mode: contentMode, scheme: scheme)
        // A digest is defused like a body (it quotes the payload); at 1,536 bytes it is never cut.
        let (content, truncated) = ChannelEvent.contentUTF8(
            fromBody: digest.map { Array($0.utf8) } ?? record.body, contentType: record.contentType,
            knownValid: digest != nil || bodyIsUTF8)
        var meta: [ChannelEvent.MetaPair] = []
        meta.reserveCapacity(11)  // at most eleven pairs: one allocation, not one per doubling
        meta.append(.init("source_id", record.sourceID))
        meta.append(.init("source_name", record.sourceName))
        meta.append(.init("event_id", record.id))
        if let type = record.type { meta.append(.init("event_type", type)) }
        if let deliveryID = record.deliveryID { meta.append(.init("delivery_id", deliveryID)) }
        meta.append(.init("received_at", record.receivedAtText))
        meta.append(.init("content_type", record.contentType.isEmpty ? "application/octet-stream" : record.contentType))
        if truncated { meta.append(.init("truncated", "true")) }
        if digest != nil {
            meta.append(.init("digest", "true"))
            meta.append(.init("body_bytes", String(record.body.count)))
        }
        if replay { meta.append(.init("replay", "true")) }
        return ChannelEvent(defusedContentUTF8: content, validKeyedMeta: meta)
    }
}
