#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Signing

/// What a follower re-attaching to this hub missed: worked out in one loop job (with the
/// follower's registration, so no later event is missed or sent twice), then read from the log
/// and turned into notification lines on the hub link's own thread.
public struct FollowerCatchUp: Sendable {
    enum Missed: Sendable {
        case nothing
        /// The common case (a hand-over takes a second or two): the index has every missed
        /// event, and where its line is.
        case indexed([(summary: EventRecord, location: EventLocation)])
        /// More than the index holds or hands out, from a follower that had fallen far behind
        /// (its session not reading while the old hub queued for it): the log is read for the
        /// events after `after` through `through`.
        case logRange(after: String, through: String)
    }

    let missed: Missed
    /// The sources as the hub had them, by id: which events the follower gets, and how.
    let sources: [String: SourceRecord]
    /// Whether a session in the follower's project gets an event of a source with this route.
    let inside: @Sendable (String) -> Bool

    static let nothing = FollowerCatchUp(missed: .nothing, sources: [:], inside: { _ in true })

    var isEmpty: Bool {
        if case .nothing = missed { return true }
        return false
    }

    /// The source of an event the follower gets; nil for one it does not (filtered out, of a
    /// source no longer paired, or pinned to another project).
    private func source(for record: EventRecord) -> SourceRecord? {
        guard !record.filtered, let source = sources[record.sourceID], source.route.map(inside) ?? true else { return nil }
        return source
    }

    /// The notification lines (each with its newline), oldest first, handed to `take` in
    /// chunks of about `chunkBytes` (a far-behind follower's catch-up is tens of megabytes of
    /// lines: they are never all in one more array). `take` returns false when no more is
    /// wanted (the follower went away): the log is not read further. Returns how many lines
    /// were handed over. Reads the log: not on the loop thread.
    /// `rotatedAway` is called when the follower's last event is no longer in the log: what
    /// came between it and the oldest logged event cannot be sent.
    @discardableResult
    func lines(directory: StateDirectory, chunkBytes: Int = 1 << 20, rotatedAway: () -> Void = {},
               _ take: ([UInt8]) -> Bool) -> Int {
        var bytes: [UInt8] = []
        var count = 0
        var wanted = true
        func append(_ record: EventRecord, from source: SourceRecord) {
            EventNotification.channelEvent(for: record, replay: false, contentMode: source.contentMode, scheme: source.scheme)
                .writeNotification(into: &bytes)
            bytes.append(0x0A)
            count += 1
            if bytes.count >= chunkBytes {
                wanted = take(bytes)
                bytes.removeAll(keepingCapacity: true)
            }
        }
        switch missed {
        case .nothing:
            break
        case .indexed(let items):
            for (summary, location) in items {
                guard wanted else { break }
                guard let source = source(for: summary),
                      let record = EventLog.read(eventID: summary.id, at: location, directory: directory) else { continue }
                append(record, from: source)
            }
        case .logRange(let after, let through):
            let found = Self.forEachRecord(after: after, through: through, directory: directory) { record in
                if let source = source(for: record) { append(record, from: source) }
                return wanted
            }
            if !found { rotatedAway() }
            FreedMemory.returnToSystem()
        }
        if wanted, !bytes.isEmpty { _ = take(bytes) }
        return count
    }

    /// Visits the logged events after `after` up to and including `through`, oldest first.
    /// When `after` is no longer in the log (rotated away), every event through `through` was
    /// missed; when it comes after `through`, none was. Two reads of the log, the first for
    /// the positions only, so that no record is held longer than its visit.
    /// `visit` returns false to stop. Returns whether `after` is in the log.
    @discardableResult
    static func forEachRecord(after: String, through: String, directory: StateDirectory, _ visit: (EventRecord) -> Bool)
        -> Bool
    {
        var position = 0
        var afterPosition: Int?
        var throughPosition: Int?
        EventLog.forEachRecord(directory: directory) { record in
            defer { position += 1 }
            if record.id == after { afterPosition = position }
            if record.id == through { throughPosition = position }
            return afterPosition == nil || throughPosition == nil
        }
        guard let throughPosition else { return afterPosition != nil }
        let first = afterPosition.map { $0 + 1 } ?? 0
        guard first <= throughPosition else { return afterPosition != nil }
        position = 0
        EventLog.forEachRecord(directory: directory) { record in
            defer { position += 1 }
            if position >= first, !visit(record) { return false }
            return position < throughPosition
        }
        return afterPosition != nil
    }
}
