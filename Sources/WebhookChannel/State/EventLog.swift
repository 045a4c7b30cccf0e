import Foundation
import Synchronization

/// One accepted event as the log keeps it: enough to list it, show its whole body, replay it,
/// and after a restart still recognise its delivery as a duplicate.
public struct EventRecord: Sendable, Equatable {
    public var id: String
    public var sourceID: String
    public var sourceName: String
    public var deliveryID: String?
    public var type: String?
    public var receivedAt: Double
    public var contentType: String
    public var headers: [String: String]
    public var body: [UInt8]
    /// Digests of the keys the replay memory holds for this event (never a raw signature).
    public var replayKeys: [String]

    public var size: Int { body.count }
}

/// An append-only JSON-lines log in the state dir (mode 0600), rotated by size: at most
/// `maxFileBytes` in `events.log` plus one rotated `events.log.1`, so it is bounded.
///
/// Records are encoded and written on a background thread, in order: the event loop
/// only hands them over, so a burst of webhooks is answered without waiting for the disk.
public final class EventLog: @unchecked Sendable {
    public static let fileName = "events.log"
    /// Headers worth keeping: who sent it and what it is. Signature headers, Authorization and
    /// cookies are never written.
    static let keptHeaderNames: [String] = [
        "content-type", "user-agent", "x-github-event", "x-github-delivery", "x-github-hook-id", "x-event-type",
        "x-webhook-id", "x-delivery-id", "webhook-id", "webhook-timestamp", "x-timestamp", "x-slack-request-timestamp",
        "x-source-id",
    ]

    private let directory: StateDirectory
    private let maxFileBytes: Int
    private let log: Logger
    /// Records appended since the last `flush`.
    private let pending = Mutex<[EventRecord]>([])
    /// Encodes and writes; `fd`, `currentSize` and `line` are only touched on its thread.
    private let writer: SerialWorker
    private var fd: Int32 = -1
    private var currentSize = 0
    private var line: [UInt8] = []

    public init(directory: StateDirectory, maxFileBytes: Int = 8 << 20, writer: SerialWorker, log: Logger) {
        self.directory = directory
        self.writer = writer
        self.maxFileBytes = maxFileBytes
        self.log = log
    }

    deinit { if fd >= 0 { close(fd) } }

    static func keptHeaders(from headers: HTTPHeaders) -> [String: String] {
        var kept: [String: String] = [:]
        for (name, value) in headers where keptHeaderNames.contains(where: { HTTPHeaders.namesEqual($0, name) }) {
            kept[name] = value.truncated(toCharacters: 500)
        }
        return kept
    }

    /// Queues one record; `flush` hands what is queued to the writer. The server flushes at
    /// the end of every event-loop pass, so a burst of webhooks costs one hand-over and one
    /// `write` instead of one each.
    public func append(_ record: EventRecord) {
        pending.withLock { $0.append(record) }
    }

    /// Hands the queued records to the background writer.
    public func flush() {
        let batch = pending.withLock { queued -> [EventRecord] in
            defer { queued.removeAll(keepingCapacity: true) }
            return queued
        }
        guard !batch.isEmpty else { return }
        writer.async { [self] in write(batch) }
    }

    /// Returns once every record appended so far is in the file (before reading it back, and
    /// at exit).
    public func waitUntilWritten() {
        flush()
        writer.sync()
    }

    /// On the writer thread. A failure is logged, never fatal: the events were delivered.
    private func write(_ batch: [EventRecord]) {
        line.removeAll(keepingCapacity: line.capacity <= 1 << 20)
        for record in batch { Self.appendLine(record, into: &line) }
        if fd < 0 || currentSize + line.count > maxFileBytes { rotateIfNeeded(adding: line.count) }
        guard fd >= 0 else { return }
        let written = line.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        if written == line.count {
            currentSize += line.count
        } else {
            log.error("cannot append to \(EventLog.fileName): \(String(cString: strerror(errno)))")
        }
    }

    private func rotateIfNeeded(adding count: Int) {
        let path = directory.path(of: EventLog.fileName)
        if fd < 0 {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                log.error("cannot open \(EventLog.fileName): \(String(cString: strerror(errno)))")
                return
            }
            fchmod(fd, 0o600)
            currentSize = Int(directory.fileIdentity(EventLog.fileName)?.size ?? 0)
        }
        guard currentSize + count > maxFileBytes, currentSize > 0 else { return }
        close(fd)
        // Replacing events.log.1 frees its blocks, which takes milliseconds; this runs on the
        // writer thread, so only later log lines wait for it, never the event loop.
        rename(path, path + ".1")
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        fchmod(fd, 0o600)
        currentSize = 0
    }

    /// Every record in the log, oldest first. Unreadable lines are skipped.
    public static func readAll(directory: StateDirectory) -> [EventRecord] {
        var records: [EventRecord] = []
        for name in [fileName + ".1", fileName] {
            guard let bytes = try? directory.readFile(name) else { continue }
            for line in bytes.split(separator: 0x0A) {
                if let value = try? JSONParser.parse(Array(line)), let record = decode(value) { records.append(record) }
            }
        }
        return records
    }

    /// One JSON line (newline included), written straight into `out`: this runs for every
    /// webhook, so it builds no intermediate JSON tree.
    static func appendLine(_ record: EventRecord, into out: inout [UInt8]) {
        func member(_ key: String, _ value: String?) {
            out.append(contentsOf: key.utf8)
            if let value { JSONWriter.appendString(value, into: &out) } else { out.append(contentsOf: "null".utf8) }
        }
        member(#"{"id":"#, record.id)
        member(#","source_id":"#, record.sourceID)
        member(#","source_name":"#, record.sourceName)
        member(#","delivery_id":"#, record.deliveryID)
        member(#","type":"#, record.type)
        member(#","received_at":"#, ISOTime.format(record.receivedAt))
        member(#","content_type":"#, record.contentType)
        out.append(contentsOf: #","size":"#.utf8)
        out.append(contentsOf: String(record.size).utf8)
        out.append(contentsOf: #","headers":{"#.utf8)
        for (index, header) in record.headers.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(header.key, into: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.appendString(header.value, into: &out)
        }
        out.append(UInt8(ascii: "}"))
        let isText = record.body.withUnsafeBufferPointer { bytes in
            guard UTF8Validation.isValid(bytes) else { return false }
            out.append(contentsOf: #","body":"#.utf8)
            JSONWriter.appendString(utf8: bytes, into: &out)
            return true
        }
        if !isText { member(#","body_base64":"#, Base64.encode(record.body)) }
        if !record.replayKeys.isEmpty {
            out.append(contentsOf: #","replay_keys":["#.utf8)
            for (index, key) in record.replayKeys.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(key, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(contentsOf: "}\n".utf8)
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
        var headers: [String: String] = [:]
        for member in value["headers"]?.objectValue ?? JSONObject() {
            if let text = member.value.stringValue { headers[member.key] = text }
        }
        return EventRecord(
            id: id, sourceID: sourceID, sourceName: value["source_name"]?.stringValue ?? "",
            deliveryID: value["delivery_id"]?.stringValue, type: value["type"]?.stringValue, receivedAt: receivedAt,
            contentType: value["content_type"]?.stringValue ?? "", headers: headers, body: body,
            replayKeys: value["replay_keys"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// Metadata for listings (no body), newest first.
    static func summary(_ record: EventRecord) -> JSONValue {
        [
            "event_id": .string(record.id), "source_id": .string(record.sourceID), "source_name": .string(record.sourceName),
            "delivery_id": .optionalString(record.deliveryID), "event_type": .optionalString(record.type),
            "received_at": .string(ISOTime.format(record.receivedAt)), "content_type": .string(record.contentType),
            "size": .int(Int64(record.size)),
        ]
    }
}
