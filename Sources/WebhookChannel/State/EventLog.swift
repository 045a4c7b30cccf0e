#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import JSON
import HTTP
import Signing

/// One accepted event as the log keeps it: enough to list it, show its whole body, replay it,
/// and after a restart still recognise its delivery as a duplicate.
public struct EventRecord: Sendable, Equatable {
    public var id: String
    public var sourceID: String
    public var sourceName: String
    public var deliveryID: String?
    public var type: String?
    public let receivedAt: Double
    /// `receivedAt` as ISO 8601, formatted once: the log line and the notification both show it.
    public let receivedAtText: String
    public var contentType: String
    public var headers: KeptHeaders
    public var body: [UInt8]
    /// Digests of the keys the replay memory holds for this event (never a raw signature).
    public var replayKeys: [String]
    /// The body's size (kept when a listing leaves the body out).
    public var size: Int
    /// Logged but not notified: the source's event filter left its type out (README "Filters").
    public var filtered: Bool

    /// Keeps what a listing needs: everything but the body, headers and keys. In place: a
    /// copy retained every field (and the body, headers and keys only to release them again;
    /// every webhook makes one), and so did a `consuming` method's `return self`.
    mutating func dropBody() {
        body = []
        headers = KeptHeaders()
        replayKeys = []
    }
}

extension EventRecord {
    /// Delegates to the memberwise initialiser (which builds the value directly): an
    /// initialiser that assigned the fields one by one built it in a temporary the optimiser
    /// then copied out (every string retained) and released, ten atomic operations a webhook.
    public init(id: String, sourceID: String, sourceName: String, deliveryID: String?, type: String?, receivedAt: Double,
                contentType: String, headers: KeptHeaders, body: [UInt8], replayKeys: [String], filtered: Bool = false)
    {
        self.init(id: id, sourceID: sourceID, sourceName: sourceName, deliveryID: deliveryID, type: type,
                  receivedAt: receivedAt, receivedAtText: ISOTime.format(receivedAt), contentType: contentType,
                  headers: headers, body: body, replayKeys: replayKeys, size: body.count, filtered: filtered)
    }
}

/// Where an event's line is in the log, for reading it back off the event loop thread.
public struct EventLocation: Sendable {
    public var path: String
    public var offset: Int
    public var length: Int
}

/// The event log: JSON lines in the state dir (mode 0600), at most `maxFileBytes` in
/// `events.log` plus the older `events.log.1`.
///
/// The events a loop pass accepts are appended with one `write` at the end of the pass, and
/// only then answered (`IntakeCommit`): an acknowledged event is in the file as far as the
/// kernel is concerned, so a crash of this process cannot lose it. Listings come from an
/// in-memory index of the most recent events (metadata and the line's place in the file);
/// bodies are read back by whoever asks, on their own thread, never on the loop.
final class EventLog {
    static let fileName = "events.log"
    /// How many recent events the index keeps for listings (a tool lists at most 500).
    static let indexCapacity = 5_000
    /// Headers worth keeping: who sent it and what it is. Signature headers, Authorization and
    /// cookies are never written.
    static let keptHeaderNames: [String] = [
        "content-type", "user-agent", "x-github-event", "x-github-delivery", "x-github-hook-id", "x-event-type",
        "x-webhook-id", "x-delivery-id", "webhook-id", "webhook-timestamp", "svix-id", "svix-timestamp", "x-timestamp",
        "x-slack-request-timestamp", "x-source-id",
    ]

    /// The same, for matching every header of every webhook against them.
    private static let keptNames = HTTPFieldNameSet(keptHeaderNames)

    private struct IndexEntry {
        /// The record without its body and headers.
        var summary: EventRecord
        var generation: Int
        var offset: Int
        var length: Int

        /// The entry for `record`, its body, headers and keys dropped in place.
        init(summarizing record: consuming EventRecord, generation: Int, offset: Int, length: Int) {
            record.dropBody()
            summary = record
            self.generation = generation
            self.offset = offset
            self.length = length
        }
    }

    let file: RotatingLineFile
    private let directory: StateDirectory
    /// Oldest first, in batches (a loop pass's entries, or a run of records read at start):
    /// a pass's list becomes one batch as it is, where appending its entries one by one
    /// copied each (retaining every string it holds) only for the pass's list to release
    /// them. Whole batches are trimmed from the front when past twice the capacity.
    private var index: [[IndexEntry]] = []
    private var indexCount = 0
    private var indexed: FlattenSequence<[[IndexEntry]]> { index.joined() }
    /// Lines accepted in this loop pass and not yet written, and their index entries
    /// (offsets relative to the start of `pendingLines`).
    private var pendingLines: [UInt8] = []
    private var pendingEntries: [IndexEntry] = []
    /// Where `writeUnconfirmed` put the lines it wrote, until `confirmWritten`.
    private var unconfirmed: (generation: Int, offset: Int)?

    init(directory: StateDirectory, maxFileBytes: Int = 8 << 20, background: SerialWorker, log: Logger) {
        self.directory = directory
        file = RotatingLineFile(name: Self.fileName, directory: directory, maxBytes: maxFileBytes, background: background,
                                log: log)
    }

    static func keptHeaders(from headers: HTTPHeaders) -> KeptHeaders {
        var kept = KeptHeaders(capacity: min(headers.count, keptHeaderNames.count))
        // A name equal to a kept one ignoring ASCII case is ASCII itself.
        headers.forEachField(in: keptNames) { name, value in
            kept.setASCIINamed(name, value.truncated(toCharacters: 500))
        }
        return kept
    }

    static func isKept(_ name: String) -> Bool {
        keptNames.contains(name)
    }

    /// At start-up: repairs a torn last line, then reads every record, oldest first, hands
    /// each to `visit` and indexes the most recent ones.
    func open(_ visit: (EventRecord) -> Void = { _ in }) {
        file.open()
        var batch: [IndexEntry] = []
        for (path, generation) in [(file.olderPath, file.generation - 1), (file.path, file.generation)] {
            Self.scan(path: path) { record, offset, length in
                visit(record)
                batch.append(IndexEntry(summarizing: record, generation: generation, offset: offset, length: length))
                if batch.count == 1024 {
                    addToIndex(batch)
                    batch = []
                }
                return true
            }
        }
        addToIndex(batch)
    }

    /// Queues one record for the end of the pass.
    /// `bodyIsUTF8`: the body was checked already (it passed the JSON check).
    /// `bodyLiteral`: the body as a JSON string literal, made already (for its notification).
    func append(_ record: consuming EventRecord, bodyIsUTF8: Bool = false, bodyLiteral: [UInt8]? = nil) {
        assert(unconfirmed == nil, "a record queued between writeUnconfirmed and confirmWritten")
        let offset = pendingLines.count
        Self.appendLine(record, into: &pendingLines, bodyIsUTF8: bodyIsUTF8, bodyLiteral: bodyLiteral)
        pendingEntries.append(IndexEntry(summarizing: record, generation: 0, offset: offset,
                                         length: pendingLines.count - offset))
    }

    var hasPending: Bool { !pendingLines.isEmpty }

    /// Whether writing the queued records would rotate the log (and drop `events.log.1`).
    var wouldRotate: Bool { file.wouldRotate(appending: pendingLines.count) }

    /// The generation the queued records will be written in (`writeUnconfirmed`): the next
    /// one when their write rotates the log first.
    var generationOfNextWrite: Int { file.generation + (wouldRotate ? 1 : 0) }

    /// Forgets the queued records (they were refused).
    func discardPending() {
        pendingLines.removeAll(keepingCapacity: pendingLines.capacity <= 1 << 20)
        pendingEntries.removeAll(keepingCapacity: true)
    }

    /// Writes the queued records with one `write`, in a file the state dir names. False when
    /// they could not be written (none of them is then in the file).
    func writePending() -> Bool {
        writeUnconfirmed() && confirmWritten()
    }

    /// `writePending` in two halves, for the notifications to go out between them: the write,
    /// then (`confirmWritten`, before they are acknowledged) whether the file is still named.
    /// Nothing is queued in between.
    func writeUnconfirmed() -> Bool {
        assert(unconfirmed == nil, "writeUnconfirmed twice without confirmWritten")
        guard let (generation, start) = file.write(pendingLines) else {
            discardPending()
            return false
        }
        // In place, by index: a `for var` copies each entry (and retains all it holds) once more.
        for index in pendingEntries.indices {
            pendingEntries[index].generation = generation
            pendingEntries[index].offset += start
        }
        // The list itself becomes a batch of the index; the next pass starts a new one, with
        // room for as many.
        let count = pendingEntries.count
        addToIndex(pendingEntries)
        pendingEntries = []
        pendingEntries.reserveCapacity(count)
        if !pendingLines.isEmpty { unconfirmed = (generation, start) }
        return true
    }

    /// The lines `writeUnconfirmed` wrote, confirmed to be in a file the state dir still names:
    /// if `events.log` was removed meanwhile, they are written to a new one (and their index
    /// entries moved there). False when that write failed: they are then in no named file,
    /// and must not be acknowledged.
    func confirmWritten() -> Bool {
        guard let written = unconfirmed else { return true }
        defer {
            unconfirmed = nil
            discardPending()
        }
        guard let now = file.confirm(pendingLines, placedAt: (written.generation, written.offset)) else { return false }
        // Their entries are the index's last batch (`addToIndex` trims only from the front).
        if now.generation != written.generation, let batch = index.indices.last {
            for entry in index[batch].indices {
                index[batch][entry].generation = now.generation
                index[batch][entry].offset += now.offset - written.offset
            }
        }
        return true
    }

    private func addToIndex(_ batch: [IndexEntry]) {
        guard !batch.isEmpty else { return }
        index.append(batch)
        indexCount += batch.count
        guard indexCount >= 2 * Self.indexCapacity else { return }
        var drop = 0
        while indexCount - index[drop].count >= Self.indexCapacity {
            indexCount -= index[drop].count
            drop += 1
        }
        index.removeFirst(drop)
    }

    /// The most recent events (bodies left out), newest first.
    func recent(sourceID: String?, limit: Int) -> [EventRecord] {
        var found: [EventRecord] = []
        for entry in indexed.reversed() where file.path(forGeneration: entry.generation) != nil {
            guard found.count < limit else { break }
            if sourceID == nil || entry.summary.sourceID == sourceID { found.append(entry.summary) }
        }
        return found
    }

    /// The events indexed after `eventID` up to and including `lastID`, oldest first, with
    /// where their lines are; nil when the index cannot say: it no longer has `eventID` or
    /// `lastID` after it, or more than `limit` come between (the caller reads the log).
    func entries(after eventID: String, through lastID: String, limit: Int = 4096)
        -> [(summary: EventRecord, location: EventLocation)]?
    {
        let entries = indexed
        guard let position = entries.lastIndex(where: { $0.summary.id == eventID }) else { return nil }
        var found: [(summary: EventRecord, location: EventLocation)] = []
        for entry in entries[entries.index(after: position)...] {
            guard found.count < limit else { return nil }
            guard let path = file.path(forGeneration: entry.generation) else { return nil }
            found.append((entry.summary, EventLocation(path: path, offset: entry.offset, length: entry.length)))
            if entry.summary.id == lastID { return found }
        }
        return nil
    }

    /// Where the event's line is, if the index still has it.
    func location(of eventID: String) -> EventLocation? {
        guard let entry = indexed.last(where: { $0.summary.id == eventID }),
              let path = file.path(forGeneration: entry.generation) else { return nil }
        return EventLocation(path: path, offset: entry.offset, length: entry.length)
    }

    /// Reads one event: from its indexed place when given (checked, since a rotation may have
    /// moved it since), else by reading the whole log. Does file I/O: not on the loop thread.
    static func read(eventID: String, at location: EventLocation?, directory: StateDirectory) -> EventRecord? {
        if let location, let record = readLine(at: location), record.id == eventID { return record }
        return readAll(directory: directory).last { $0.id == eventID }
    }

    private static func readLine(at location: EventLocation) -> EventRecord? {
        let fd = Platform.open(location.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var line = [UInt8](repeating: 0, count: location.length)
        let count = line.withUnsafeMutableBytes { pread(fd, $0.baseAddress, location.length, off_t(location.offset)) }
        guard count == location.length, let value = try? JSONParser.parse(line) else { return nil }
        return decode(value)
    }

    /// Every record in the log, oldest first. Unreadable lines are skipped.
    static func readAll(directory: StateDirectory) -> [EventRecord] {
        (try? readAllChecked(directory: directory)) ?? []
    }

    /// As `readAll`, but a log file that is there and cannot be read (permissions, a directory
    /// in its place) is an error rather than no events: the operator CLI says so and fails.
    static func readAllChecked(directory: StateDirectory) throws(Unreadable) -> [EventRecord] {
        var records: [EventRecord] = []
        for name in [fileName + ".1", fileName] {
            let path = directory.path(of: name)
            guard scan(path: path, { record, _, _ in records.append(record); return true }) else { throw Unreadable(path: path) }
        }
        return records
    }

    struct Unreadable: Error, CustomStringConvertible {
        let path: String
        var description: String { "cannot read \(path)" }
    }

    /// Every record of both generations, oldest first, until `visit` says stop (false).
    /// Unreadable lines are skipped. File I/O: not on the loop thread.
    static func forEachRecord(directory: StateDirectory, _ visit: (EventRecord) -> Bool) {
        var going = true
        for name in [fileName + ".1", fileName] where going {
            _ = scan(path: directory.path(of: name)) { record, _, _ in
                going = visit(record)
                return going
            }
        }
    }

    /// Each decodable line of a file with its offset and length (newline included), until
    /// `visit` says stop. False when the file exists and cannot be read (a directory, a file
    /// where the state dir should be, permissions); a missing file has no lines. Read a chunk
    /// at a time (`FileLines`): a log of many megabytes is never all in memory at once.
    @discardableResult
    private static func scan(path: String, _ visit: (EventRecord, Int, Int) -> Bool) -> Bool {
        do {
            try FileLines.forEach(path: path) { line, offset, length in
                guard let value = try? JSONParser.parse(line), let record = decode(value) else { return true }
                return visit(record, offset, length)
            }
            return true
        } catch {
            return false
        }
    }

    /// One JSON line (newline included), written straight into `out`: this runs for every
    /// webhook, so it builds no intermediate JSON tree, and the members around the body are
    /// written into room reserved once (`appendJSON`).
    static func appendLine(_ record: EventRecord, into out: inout [UInt8], bodyIsUTF8: Bool = false,
                           bodyLiteral: [UInt8]? = nil) {
        typealias Writer = ReservedJSONWriter
        // The member names and punctuation below come to 125 bytes, the size to 20 at most.
        var bound = 160 + Writer.room(for: record.id) + Writer.room(for: record.sourceID)
            + Writer.room(for: record.sourceName) + Writer.room(for: record.deliveryID) + Writer.room(for: record.type)
            + Writer.room(for: record.receivedAtText) + Writer.room(for: record.contentType)
        for header in record.headers { bound += Writer.room(for: header.name) + Writer.room(for: header.value) + 2 }
        out.appendJSON(bound: bound) { line in
            line.member(#"{"id":"#, record.id)
            line.member(#","source_id":"#, record.sourceID)
            line.member(#","source_name":"#, record.sourceName)
            line.member(#","delivery_id":"#, record.deliveryID)
            line.member(#","type":"#, record.type)
            line.member(#","received_at":"#, record.receivedAtText)
            line.member(#","content_type":"#, record.contentType)
            line.literal(#","size":"#)
            line.decimal(record.size)
            if record.filtered { line.literal(#","filtered":true"#) }
            line.literal(#","headers":{"#)
            for (index, header) in record.headers.enumerated() {
                if index > 0 { line.byte(UInt8(ascii: ",")) }
                line.string(header.name)
                line.byte(UInt8(ascii: ":"))
                line.string(header.value)
            }
            line.byte(UInt8(ascii: "}"))
        }
        let isText = record.body.withUnsafeBufferPointer { bytes in
            if let bodyLiteral {
                out.appendLiteral(#","body":"#)
                out.append(contentsOf: bodyLiteral)
                return true
            }
            guard bodyIsUTF8 || UTF8Validation.isValid(bytes) else { return false }
            out.appendLiteral(#","body":"#)
            JSONWriter.appendString(utf8: bytes, into: &out)
            return true
        }
        if !isText {
            out.appendLiteral(#","body_base64":"#)
            JSONWriter.appendString(Base64.encode(record.body), into: &out)
        }
        // `,"replay_keys":[`, `]`, `}` and the newline: 20 bytes.
        let keysBound = record.replayKeys.reduce(20) { $0 + Writer.room(for: $1) + 1 }
        out.appendJSON(bound: keysBound) { line in
            if !record.replayKeys.isEmpty {
                line.literal(#","replay_keys":["#)
                for (index, key) in record.replayKeys.enumerated() {
                    if index > 0 { line.byte(UInt8(ascii: ",")) }
                    line.string(key)
                }
                line.byte(UInt8(ascii: "]"))
            }
            line.literal("}\n")
        }
    }

    static func decode(_ value: JSONValue) -> EventRecord? {
        guard let id = value["id"]?.stringValue, let sourceID = value["source_id"]?.stringValue,
              let receivedAt = value["received_at"]?.stringValue.flatMap(ISOTime.parse) else { return nil }
        let body: [UInt8]
        if let text = value["body"]?.stringValue {
            body = Array(text.utf8)
        } else {
            body = value["body_base64"]?.stringValue.flatMap(Base64.decode) ?? []
        }
        var headers = KeptHeaders()
        for member in value["headers"]?.objectValue ?? JSONObject() {
            if let text = member.value.stringValue { headers.set(member.key, text) }
        }
        return EventRecord(
            id: id, sourceID: sourceID, sourceName: value["source_name"]?.stringValue ?? "",
            deliveryID: value["delivery_id"]?.stringValue, type: value["type"]?.stringValue, receivedAt: receivedAt,
            contentType: value["content_type"]?.stringValue ?? "", headers: headers, body: body,
            replayKeys: value["replay_keys"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            filtered: value["filtered"]?.boolValue ?? false)
    }

    /// Metadata for listings (no body), newest first.
    static func summary(_ record: EventRecord) -> JSONValue {
        [
            "event_id": .string(record.id), "source_id": .string(record.sourceID), "source_name": .string(record.sourceName),
            "delivery_id": .optionalString(record.deliveryID), "event_type": .optionalString(record.type),
            "received_at": .string(record.receivedAtText), "content_type": .string(record.contentType),
            "size": .int(Int64(record.size)), "filtered": .bool(record.filtered),
        ]
    }
}
