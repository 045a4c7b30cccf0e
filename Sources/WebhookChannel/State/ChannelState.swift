import Foundation

/// Everything the two sides of the process share: paired sources, pending pairings, replay
/// memory and per-source counters, plus the verifier. It runs on the HTTP event loop's thread
/// (its executor), so HTTP handlers reach it synchronously and MCP tools with `await`.
public actor ChannelState {
    public enum WebhookOutcome: Equatable, Sendable {
        case accepted(eventID: String)
        case duplicate
        /// Unknown source, bad or missing signature, stale timestamp: one answer for all.
        case unauthorized
        case invalidJSON
        /// The client has not initialised and the waiting queue is full.
        case notReady
        /// Slack's `url_verification`: answer the challenge, deliver nothing.
        case challenge(String)
    }

    public enum PairingError: Error, Equatable, Sendable {
        case tooManyPending
        case unknownCode
        case expiredCode
        case tooManyFailures
        case storage(String)
    }

    public struct Credentials: Sendable, Equatable {
        public let sourceID: String
        public let secret: String
    }

    public struct SourceStats: Sendable {
        public var eventCount = 0
        public var lastEventAt: Double?
    }

    /// Failed `/pair/complete` attempts allowed per window before answering 429, so the
    /// 32^6 code space cannot be walked from a loopback process.
    static let maxFailedCompletions = 10
    static let failedCompletionWindow: Double = 60

    nonisolated let loop: EventLoop
    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    let store: SourcesStore
    let clock: any WallClock
    let notifier: ChannelNotifier
    let log: Logger
    let eventLog: EventLog

    private(set) var file = SourcesFile()
    private var fileIdentity: FileIdentity?
    /// The loop round of the last `refreshIfChanged` stat (0: none yet; rounds start at 1).
    private var refreshedInRound: UInt64 = 0
    /// Inotify on the state dir; without it (unavailable), every round stats the file.
    private var directoryWatch: StateDirectoryWatch?
    private var replay = ReplayMemory()
    private(set) var stats: [String: SourceStats] = [:]
    private var failedCompletions: [Double] = []

    /// `writer` is the background thread that writes the event log (shared with the protocol
    /// output, so a burst of webhooks wakes one thread).
    public init(loop: EventLoop, store: SourcesStore, clock: any WallClock, notifier: ChannelNotifier, writer: SerialWorker,
                log: Logger)
    {
        self.loop = loop
        self.store = store
        self.clock = clock
        self.notifier = notifier
        self.log = log
        let eventLog = EventLog(directory: store.directory, writer: writer, log: log)
        self.eventLog = eventLog
        // Records accepted during a loop pass go to the writer together when the pass ends.
        loop.addEndOfPassAction { eventLog.flush() }
    }

    /// Starts watching the state dir (on the loop thread, once the directory exists), so that
    /// requests need no `stat` while nothing there changes.
    public func watchStateDirectory() {
        guard directoryWatch == nil else { return }
        directoryWatch = StateDirectoryWatch(path: store.directory.path, loop: loop)
        if directoryWatch == nil { log.warning("cannot watch the state directory; sources.json is checked on every request") }
    }

    /// Rebuilds the replay memory and per-source counters from the event log, so a delivery
    /// seen before a restart is still a duplicate after it.
    public func restoreFromEventLog() {
        let now = clock.now()
        for record in EventLog.readAll(directory: store.directory) {
            stats[record.sourceID, default: SourceStats()].eventCount += 1
            stats[record.sourceID, default: SourceStats()].lastEventAt = record.receivedAt
            for key in record.replayKeys {
                replay.restore(key: key, expiresAt: record.receivedAt + replay.lifetime, now: now)
            }
        }
    }

    // MARK: Sources file

    /// Picks up changes another process (the CLI, the seed's skill) made. With the state dir
    /// watched (inotify), nothing is read while nothing there changed; otherwise one `stat()`
    /// per event-loop round. What a round handles was received before the round began
    /// (`EventLoop.round`), or at most the round's own microseconds after, and the check comes
    /// after it began: a change the CLI finished before a request was sent is seen.
    public func refreshIfChanged() {
        guard loop.round != refreshedInRound else { return }
        if let directoryWatch, !directoryWatch.takeChange() { return }
        refreshedInRound = loop.round
        let identity = store.identity()
        guard identity != fileIdentity else { return }
        let (loaded, loadedIdentity) = store.load()
        file = loaded
        fileIdentity = loadedIdentity
    }

    private func mutate<T>(_ change: (inout SourcesFile) throws -> T) throws -> T {
        let (result, written, identity) = try store.mutate(change)
        file = written
        fileIdentity = identity
        return result
    }

    public var sourceCount: Int { file.sources.count }
    public var pendingCount: Int { PairingBook.livePending(file, now: clock.now()).count }
    public var isClientConnected: Bool { notifier.isInitialized }

    public func source(id: String) -> SourceRecord? {
        refreshIfChanged()
        return file.source(id: id)
    }

    public func allSources() -> [(SourceRecord, SourceStats)] {
        refreshIfChanged()
        return file.sources.map { ($0, stats[$0.id] ?? SourceStats()) }
    }

    // MARK: Pairing

    public func requestPairing(name: String, callbackURL: String?) throws(PairingError) -> PendingPairing {
        do {
            return try mutate { file in
                try PairingBook.request(&file, name: name, callbackURL: callbackURL, now: clock.now(),
                                        generateCode: CredentialGenerator.pairingCode,
                                        pollToken: CredentialGenerator.pollToken())
            }
        } catch let failure as PairingBook.Failure {
            throw Self.map(failure)
        } catch {
            throw .storage(String(describing: error))
        }
    }

    public func completePairing(code: String) throws(PairingError) -> Credentials {
        let now = clock.now()
        failedCompletions.removeAll { now - $0 > Self.failedCompletionWindow }
        guard failedCompletions.count < Self.maxFailedCompletions else { throw .tooManyFailures }
        do {
            let source = try mutate { file in
                try PairingBook.approve(&file, code: code, now: now, sourceID: CredentialGenerator.sourceID(),
                                        secret: CredentialGenerator.hmacSecret())
            }
            log.info("paired source \(source.id) (\(source.name.prefix(64)))")
            return Credentials(sourceID: source.id, secret: source.hmacSecret)
        } catch let failure as PairingBook.Failure {
            failedCompletions.append(now)
            throw Self.map(failure)
        } catch {
            throw .storage(String(describing: error))
        }
    }

    /// The device-flow poll. With the right poll token, the first `paired` answer carries the
    /// credentials; later ones do not.
    public func pairingStatus(code: String, pollToken: String?) -> (PairingBook.Status, Credentials?) {
        refreshIfChanged()
        let normalized = code.trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
        let status = PairingBook.status(file, code: normalized, now: clock.now())
        guard case .paired(let sourceID, true) = status, let pollToken,
              let approval = file.approved.first(where: { $0.code == normalized }),
              let expected = approval.pollToken,
              ConstantTime.equals(Array(expected.utf8), Array(pollToken.utf8))
        else { return (status, nil) }
        do {
            let source: SourceRecord? = try mutate { file in
                guard let index = file.approved.firstIndex(where: { $0.code == normalized }), !file.approved[index].claimed else {
                    return nil
                }
                file.approved[index].claimed = true
                return file.source(id: sourceID)
            }
            guard let source else { return (status, nil) }
            return (status, Credentials(sourceID: source.id, secret: source.hmacSecret))
        } catch {
            log.error("cannot record collected credentials: \(error)")
            return (status, nil)
        }
    }

    private static func map(_ failure: PairingBook.Failure) -> PairingError {
        switch failure {
        case .tooManyPending: return .tooManyPending
        case .unknownCode: return .unknownCode
        case .expiredCode: return .expiredCode
        }
    }

    // MARK: Webhooks

    /// Verifies and delivers one webhook. `pathSourceID` is set for `/webhook/{id}`, where the
    /// source's scheme decides the headers; `/webhook` uses the seed's headers.
    public func receiveWebhook(pathSourceID: String?, headers: HTTPHeaders, body: [UInt8]) -> WebhookOutcome {
        refreshIfChanged()
        let now = clock.now()
        guard let sourceID = pathSourceID ?? headers["X-Source-Id"], let source = file.source(id: sourceID) else {
            return .unauthorized
        }
        let scheme = pathSourceID == nil ? SignatureScheme.webhook : source.scheme
        let verdict = SignatureScheme.verify(scheme: scheme, secrets: source.acceptedSecrets(now: now),
                                             input: SignatureInput(headerLookup: { headers[$0] }, body: body, now: Int64(now)))
        guard case .valid(let details) = verdict else { return .unauthorized }

        let contentType = headers["Content-Type"] ?? ""
        // Only a few top-level strings of a body are ever read, so it is validated, not parsed.
        var fields: [String: String]? = nil
        if pathSourceID == nil || Self.looksLikeJSON(contentType) {
            fields = try? body.withUnsafeBufferPointer { bytes throws(JSONParseError) in
                try JSONParser.validate(bytes, collectingStrings: Self.bodyFieldNames)
            }
            if fields == nil && pathSourceID == nil { return .invalidJSON }
        }
        if scheme == .slack, fields?["type"] == "url_verification", let challenge = fields?["challenge"] {
            return .challenge(challenge)
        }

        let deliveryID = Self.deliveryID(headers: headers, bodyFields: fields, scheme: scheme)
        var replayKeys: [String] = []
        if let deliveryID { replayKeys.append("d:\(source.id):\(deliveryID)") }
        if let seedSignature = details.seedSignature {
            // Remembered (and logged) only as a digest: a signature never reaches a file.
            let digest = Hex.encode(HMACSHA256.mac(key: Array("replay-memory".utf8), message: Array(seedSignature.utf8)))
            replayKeys.append("s:\(source.id):\(digest)")
        }
        if replayKeys.contains(where: { replay.contains($0, now: now) }) { return .duplicate }

        let record = EventRecord(
            id: CredentialGenerator.eventID(), sourceID: source.id, sourceName: source.name, deliveryID: deliveryID,
            type: Self.eventType(headers: headers, bodyFields: fields), receivedAt: now, contentType: contentType,
            headers: EventLog.keptHeaders(from: headers), body: body, replayKeys: replayKeys)
        let contentMode = source.contentMode
        guard notifier.deliver(building: { Self.channelEvent(for: record, replay: false, contentMode: contentMode, scheme: scheme) })
        else { return .notReady }

        for key in replayKeys { _ = replay.insert(key, now: now) }
        eventLog.append(record)
        stats[source.id, default: SourceStats()].eventCount += 1
        stats[source.id, default: SourceStats()].lastEventAt = now
        return .accepted(eventID: record.id)
    }

    // MARK: Event log

    /// At exit: returns once every accepted event is in the log file.
    public nonisolated func finishEventLog() {
        eventLog.waitUntilWritten()
    }

    public func recentEvents(sourceID: String?, limit: Int) -> [EventRecord] {
        eventLog.waitUntilWritten()
        let all = EventLog.readAll(directory: store.directory)
        return Array(all.reversed().filter { sourceID == nil || $0.sourceID == sourceID }.prefix(limit))
    }

    public func event(id: String) -> EventRecord? {
        eventLog.waitUntilWritten()
        return EventLog.readAll(directory: store.directory).last { $0.id == id }
    }

    public enum ReplayOutcome: Equatable, Sendable { case replayed, unknownEvent, notReady }

    /// Delivers a logged event again, marked `replay: "true"`.
    public func replayEvent(id: String) -> ReplayOutcome {
        guard let record = event(id: id) else { return .unknownEvent }
        // A revoked source's events replay in full: there is no mode left to follow.
        let source = self.source(id: record.sourceID)
        let contentMode = source?.contentMode ?? .full, scheme = source?.scheme ?? .webhook
        return notifier.deliver(building: { Self.channelEvent(for: record, replay: true, contentMode: contentMode, scheme: scheme) })
            ? .replayed : .notReady
    }

    /// The notification for an event, the same for a first delivery and a replay: the body, or
    /// its digest when the source's content mode calls for one (SPEC 14).
    static func channelEvent(for record: EventRecord, replay: Bool, contentMode: ContentMode = .full,
                             scheme: SignatureScheme = .webhook) -> ChannelEvent
    {
        let digest = EventDigest.notificationText(for: record, mode: contentMode, scheme: scheme)
        let (content, truncated) = digest.map { ($0, false) }
            ?? record.body.withUnsafeBytes { ChannelEvent.content(fromBody: $0, contentType: record.contentType) }
        var meta: [(key: String, value: String)] = [
            ("source_id", record.sourceID), ("source_name", record.sourceName), ("event_id", record.id),
        ]
        if let type = record.type { meta.append(("event_type", type)) }
        if let deliveryID = record.deliveryID { meta.append(("delivery_id", deliveryID)) }
        meta.append(("received_at", ISOTime.format(record.receivedAt)))
        meta.append(("content_type", record.contentType.isEmpty ? "application/octet-stream" : record.contentType))
        if truncated { meta.append(("truncated", "true")) }
        if digest != nil { meta += [("digest", "true"), ("body_bytes", String(record.body.count))] }
        if replay { meta.append(("replay", "true")) }
        return ChannelEvent(content: content, meta: meta)
    }

    static func looksLikeJSON(_ contentType: String) -> Bool {
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return mediaType == "application/json" || mediaType.hasSuffix("+json")
    }

    /// The top-level body members the channel reads: the event type (`type`, `event`),
    /// Stripe's `id` and Slack's `challenge`.
    static let bodyFieldNames = ["type", "event", "id", "challenge"]

    /// SPEC section 4: the first present of these headers, or Stripe's body `id`.
    static func deliveryID(headers: HTTPHeaders, bodyFields: [String: String]?, scheme: SignatureScheme) -> String? {
        for name in ["X-Webhook-Id", "X-Delivery-Id", "X-GitHub-Delivery", "webhook-id"] {
            if let value = headers[name], !value.isEmpty { return value.truncated(toCharacters: 200) }
        }
        if scheme == .stripe, let id = bodyFields?["id"] { return id.truncated(toCharacters: 200) }
        return nil
    }

    static func eventType(headers: HTTPHeaders, bodyFields: [String: String]?) -> String? {
        for name in ["X-GitHub-Event", "X-Event-Type"] {
            if let value = headers[name], !value.isEmpty { return value.truncated(toCharacters: 200) }
        }
        if let type = bodyFields?["type"] ?? bodyFields?["event"] { return type.truncated(toCharacters: 200) }
        return nil
    }
}
