#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization
import Platform
import JSON
import Socket
import HTTP
import Signing
import MCP

/// What the two sides of the process share, where one thing happens at a time: it runs on the
/// HTTP event loop's thread (its executor), so HTTP handlers reach it synchronously and MCP
/// tools with `await`. It takes a webhook from its judgement (`WebhookIntake`) through the
/// duplicate memory to the event log and the notifications, in order. The sources
/// (`SourceDirectory`), pairing (`PairingDesk`) and replay (`EventReplay`) are types of their
/// own that it owns and calls on its executor, which is why they need no locks.
public actor ChannelState {
    /// What became of an accepted event at the end of its loop pass.
    public enum Commit: Sendable {
        /// Its line is in the event log and its notification on its way: answer `200`. With
        /// what that answer names, so a route's waiter needs nothing but its own answer (a
        /// closure holding one reference costs no allocation; one holding three does).
        case acknowledged(eventID: String, filtered: Bool)
        /// The event log could not be written: nothing was promised, the sender retries.
        case notWritten
        /// Claude Code closed stdout: no notification can reach this session any more, so
        /// it is not acknowledged (the process is on its way out; the sender retries).
        case sessionGone
        /// Logged and notified, but its duplicate key could not be journaled (a full disk):
        /// `503`, and its retry is answered once the journal can be written.
        case notJournaled
        /// Not logged: the log is full and rotating it would remove events a follower session
        /// has not passed on yet (`FollowerHold`). `503 backlog`, as when its queue is full.
        case backlog
    }

    public enum WebhookOutcome {
        /// Verified and queued for the log: `written` says, at the end of the loop pass,
        /// whether it may be acknowledged (`Commit`; its `acknowledged` names the event id and
        /// whether the source's event filter left it out, README "Filters").
        case accepted(written: Pending<Commit>)
        /// A permission verdict from an approver (README "Permission relay"): never an event, never logged.
        case verdict(PermissionRelay.VerdictOutcome)
        case duplicate
        /// A duplicate while the duplicate journal cannot be written (a full disk): retry later.
        case journalBehind
        /// Unknown source, bad or missing signature, stale timestamp: one answer for all.
        case unauthorized
        case invalidJSON
        /// The client has not initialised and the waiting room is full.
        case notReady
        /// Notifications are not being read fast enough: the sender should retry shortly.
        case backlog
        /// Slack's `url_verification`: answer the challenge, deliver nothing.
        case challenge(String)
    }

    nonisolated let loop: EventLoop
    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    /// `receiveWebhook` for the loop thread's HTTP route, on every webhook: what
    /// `assumeIsolated` does, for this one call. The same check (this is the loop thread, as
    /// `EventLoop.checkIsolated` asks) without the runtime's general one, which first asks
    /// whether the current executor is the main actor's (some 350 instructions); and a closure
    /// that captures nothing, so calling it as the plain function it is underneath allocates
    /// nothing (a capturing one, made escaping by `withoutActuallyEscaping`, cost two
    /// allocations a webhook).
    nonisolated func receiveWebhookOnLoopThread(pathSourceID: String?, headers: HTTPHeaders, body: [UInt8]) -> WebhookOutcome {
        precondition(loop.inLoopThread, "expected to run on the event loop thread")
        typealias Isolated = (isolated ChannelState, String?, HTTPHeaders, [UInt8]) -> WebhookOutcome
        typealias Unisolated = (ChannelState, String?, HTTPHeaders, [UInt8]) -> WebhookOutcome
        let receive: Isolated = { state, pathSourceID, headers, body in
            state.receiveWebhook(pathSourceID: pathSourceID, headers: headers, body: body)
        }
        return unsafeBitCast(receive, to: Unisolated.self)(self, pathSourceID, headers, body)
    }

    let store: SourcesStore
    let clock: any Clock
    let notifier: ChannelNotifier
    let log: Logger
    let eventLog: EventLog
    /// Permission prompts out to approvers, their verdicts back to Claude Code.
    public nonisolated let permissionRelay: PermissionRelay
    private let dedupeJournal: DedupeJournal
    /// `WEBHOOK_FSYNC=1`: answers also wait for `fdatasync` of the log.
    private let syncsLog: Bool
    /// Runs what may block, off the loop: `fdatasync`, unlinking rotated files.
    private let logWorker: SerialWorker
    /// The paired sources as `sources.json` says, and their counters.
    private let sources: SourceDirectory
    private let pairing: PairingDesk
    private let eventReplay: EventReplay
    /// Events accepted in this loop pass, waiting for their log line to be written.
    private var uncommitted: [Uncommitted] = []
    /// A batch's array once its events are committed, emptied, for the next pass's events.
    private var spareUncommitted: [Uncommitted] = []
    /// Written events whose notifications wait for the log worker (an `fdatasync` with
    /// `WEBHOOK_FSYNC=1`, or a digest to build), in order; and whether the worker has a batch.
    private var awaitingRelease: [Uncommitted] = []
    private var releaseInFlight = false
    /// The event log refused the last pass (a full disk, a removed state dir): until a write
    /// works again, passes are written to the log before they are notified, so the senders'
    /// retries meanwhile are refused without being notified each time
    /// (`canNotifyBeforeWriting`).
    private var logRefusedLastPass = false

    /// The hub's followers, once this process is the hub (`SessionCoordinator`).
    private(set) var fanOut: (any SessionFanOut)?

    /// A follower is taking the port over (`beginTakingOver`): its listener may take webhooks
    /// before its hub, with the wait for the old hub's other followers (`ReattachWait`), is
    /// installed (`becameHub`). Meanwhile the log does not rotate: left to a full log, the
    /// first of those webhooks rotated away what a follower on its way back still needed
    /// (about 310 events of a stalled one, in one of four orderly double hand-overs).
    private var takingOver = false

    /// Before a follower binds the port: hold rotation until `becameHub`.
    func beginTakingOver() {
        takingOver = true
    }

    /// The hub is settled: its followers (nil when `hub.sock` could not be served, or the
    /// port was not won after all) now say who holds rotation back.
    func becameHub(_ fanOut: (any SessionFanOut)?) {
        self.fanOut = fanOut
        takingOver = false
    }
    /// Only the hub opens (and writes) the event log; until then listings read the files.
    private var logsOpen = false

    /// What an accepted event is notified as.
    private enum Notification {
        /// Filtered: logged, not notified, no room reserved.
        case none
        case ready(ChannelEvent)
        /// A digest, built off the loop (parsing a large payload into a tree takes
        /// milliseconds the socket thread must not spend).
        case digest(EventRecord, ContentMode, SignatureScheme)
    }

    /// The events of the batches being answered that went to at least one follower (by their
    /// answer's identity); empty without followers. Loop only.
    private var sharedWithFollowers = Set<ObjectIdentifier>()

    private struct Uncommitted {
        var notification: Notification
        var weight: Int
        /// Whether room for it was reserved in this session's backlog: not when, taken, it
        /// went only to other sessions (a pinned source), whose own room was asked instead.
        var reservedHere: Bool
        /// The project the source is pinned to (`webhook-channel route`), if any.
        var route: String?
        var sourceID: String
        var replayKeys: [String]
        /// The duplicate memory's digests of `replayKeys`, for the journal once written.
        var remembered: [UInt64]
        var receivedAt: Double
        var eventID: String
        /// Logged and not notified (the source's filter left its type out).
        var filtered: Bool
        var written: Pending<Commit>
        /// The event log generation its line went into (once written).
        var logGeneration = 0
        /// The 200 went out already (without `WEBHOOK_FSYNC`, as soon as the log holds it).
        var answered = false
    }

    /// The duplicate memory: delivery ids and signatures seen (not `EventReplay`, which
    /// delivers a logged event again on purpose).
    private var replay = ReplayMemory()

    /// Seconds a `sources.json` change made for an HTTP request (`/pair`, `/pair/complete`, a
    /// claim) waits for another process's lock on the state dir. A lock held for good (a CLI
    /// command stopped mid-change) then costs the client a `503 state_busy` to retry, not a
    /// connection that never hears back, and does not keep every later change queued on the
    /// `state-files` worker behind it. The CLI, run by a person who can see it wait, waits.
    public static let defaultLockWait: Double = 5

    public init(loop: EventLoop, store: SourcesStore, clock: any Clock, notifier: ChannelNotifier, syncsLog: Bool = false,
                lockWait: Double = ChannelState.defaultLockWait, log: Logger)
    {
        self.loop = loop
        self.store = store
        self.clock = clock
        self.notifier = notifier
        self.log = log
        self.syncsLog = syncsLog
        logWorker = SerialWorker(name: "log-sync")
        let fileWorker = SerialWorker(name: "state-files")
        eventLog = EventLog(directory: store.directory, background: logWorker, log: log)
        sources = SourceDirectory(store: store, loop: loop, fileWorker: fileWorker, lockWait: lockWait, log: log)
        pairing = PairingDesk(sources: sources, clock: clock, log: log)
        eventReplay = EventReplay(eventLog: eventLog, sources: sources, notifier: notifier, loop: loop, fileWorker: fileWorker)
        permissionRelay = PermissionRelay(notifier: notifier, log: log)
        dedupeJournal = DedupeJournal(directory: store.directory, capacity: replay.capacity, background: logWorker, log: log)
    }

    /// Starts watching the state dir for `SourceDirectory`, once the directory exists.
    public func watchStateDirectory() {
        sources.watchStateDirectory()
    }

    /// At start-up: opens the event log and the duplicate memory's journal (repairing a torn
    /// last line of either), rebuilds per-source counters from the log and the duplicate
    /// memory from the journal, which holds the keys of acknowledged events only: an event
    /// the log holds but whose `200` never went out (the process died in between) was never
    /// delivered, so its sender's retry must be taken, not called a duplicate.
    /// `ownSessionInside`: whether this session gets an event of a source pinned to that
    /// route (see `startOwnCatchUp`).
    public func openLogs(ownSessionInside: @escaping @Sendable (String) -> Bool = { _ in true }) {
        guard !logsOpen else { return }
        logsOpen = true
        // Every record was read, with its body; only the index and the counters stay.
        defer { FreedMemory.returnToSystem() }
        let now = clock.now()
        let journaled = dedupeJournal.open()
        let followed = lastFollowedEventID.withLock { value -> String? in
            defer { value = nil }
            return value
        }
        if followed != nil { sources.refreshIfChanged() }
        // One record at a time, none kept (a whole log's records with their bodies took three
        // times the log's size): counted, caught up, their keys restored.
        var stats: [String: SourceStats] = [:]
        var lastID: String?
        var followedIsLogged = false
        eventLog.open { record in
            SourceDirectory.count(record, into: &stats)
            lastID = record.id
            if record.id == followed { followedIsLogged = true }
            // A state dir from before the journal: start the memory, and the journal, from the log.
            if journaled == nil {
                for key in record.replayKeys {
                    let expiresAt = record.receivedAt + replay.lifetime
                    replay.restore(key: key, expiresAt: expiresAt, now: now)
                    dedupeJournal.append(digest: ReplayMemory.digest(key), expiresAt: expiresAt)
                }
            }
        }
        if let followed, let lastID, followed != lastID {
            // No trace of the last event passed on: rotation removed it, so every event the log
            // holds came after it. (This session had stopped reading while the hub went on.)
            if !followedIsLogged {
                log.warning("the last event this session was passed is no longer in the log; it is notified of every "
                    + "logged event, and may have missed older ones rotated away")
            }
            startOwnCatchUp(after: followed, through: lastID, inside: ownSessionInside)
        }
        sources.stats = stats
        // Whatever the log holds was notified by the hub that wrote it (or is being caught up).
        lastReleasedEventID = lastID
        if let journaled {
            for entry in journaled { replay.restore(digest: entry.digest, expiresAt: entry.expiresAt, now: now) }
        } else {
            dedupeJournal.writePending()
        }
    }

    /// The last event notified (loop only): a follower attaching catches up to it; what comes
    /// after is shared with it when released.
    private var lastReleasedEventID: String?
    /// Webhooks are refused because the log cannot rotate (said once per episode).
    private var rotationHeldBack = false

    /// What a follower that attaches to this hub missed: the events logged after `eventID`
    /// (the last it was passed) up to the last one released, that a session in a project for
    /// which `inside` says yes gets. `register` runs in the same loop job, so every later event
    /// is shared with it when released: none is missed or sent twice. Waits for the loop
    /// (called on a hub link's thread); the lines are read and built by the caller
    /// (`FollowerCatchUp.lines`).
    public nonisolated func catchUpForFollower(after eventID: String, inside: @escaping @Sendable (String) -> Bool,
                                               register: @escaping @Sendable (Int?) -> Void) -> FollowerCatchUp
    {
        let result = Mutex<(catchUp: FollowerCatchUp?, abandoned: Bool)>((nil, false))
        let done = ConditionSignal()
        loop.execute { [self] in
            let (catchUp, generation) = assumeIsolated { state in
                (state.catchUp(after: eventID, inside: inside), state.eventLog.file.generation)
            }
            let registered = result.withLock { state -> Bool in
                guard !state.abandoned else { return false }
                state.catchUp = catchUp
                return true
            }
            // The log keeps the generations the catch-up reads until the follower passed it on.
            if registered { register(catchUp.isEmpty ? nil : generation - 1) }
            done.signal()
        }
        for _ in 0..<10 where result.withLock({ $0.catchUp == nil }) { done.wait(timeoutMilliseconds: 1000) }
        let catchUp = result.withLock { state -> FollowerCatchUp? in
            if state.catchUp == nil { state.abandoned = true }
            return state.catchUp
        }
        guard let catchUp else {
            register(nil)
            return .nothing
        }
        return catchUp
    }

    private func catchUp(after eventID: String, inside: @escaping @Sendable (String) -> Bool) -> FollowerCatchUp {
        guard let lastReleasedEventID, lastReleasedEventID != eventID else { return .nothing }
        let missed: FollowerCatchUp.Missed = eventLog.entries(after: eventID, through: lastReleasedEventID).map { .indexed($0) }
            ?? .logRange(after: eventID, through: lastReleasedEventID)
        return FollowerCatchUp(missed: missed, sources: sourcesByID, inside: inside)
    }

    /// The sources as they are now, by id, for a catch-up read on another thread.
    private var sourcesByID: [String: SourceRecord] {
        Dictionary(sources.file.sources.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The id of the last event this session received from the hub it followed (set by
    /// `HubFollower`), for `catchUp` should this process become the hub.
    public nonisolated let lastFollowedEventID = Mutex<String?>(nil)

    /// A follower that becomes the hub notifies its own session of the events the old hub
    /// acknowledged after the last one it passed on: a hub that exits drops what it still
    /// queued for a follower whose session was not reading (up to 8 MiB), and those events
    /// were acknowledged. They are in the log, in order, after that id.
    ///
    /// Read on a thread of its own, a chunk at a time, each once the notification bound has
    /// room for it (`ChannelNotifier.reserveWhenRoom`): a session that is still not reading
    /// holds one bound's worth, not the whole log (two generations of it took a stalled
    /// follower that became the hub to 74 MiB). Meanwhile events for this session are
    /// refused `503 backlog`, so none overtakes the catch-up, and the log does not rotate
    /// away what is still to be read (`commitUncommitted`).
    private func startOwnCatchUp(after followed: String, through lastID: String,
                                 inside: @escaping @Sendable (String) -> Bool)
    {
        ownCatchUpPending = true
        let catchUp = FollowerCatchUp(missed: .logRange(after: followed, through: lastID), sources: sourcesByID, inside: inside)
        let (notifier, directory, loop, log) = (self.notifier, store.directory, self.loop, self.log)
        DetachedThread.start(name: "own-catch-up") {
            let count = catchUp.lines(directory: directory, chunkBytes: Self.ownCatchUpChunkBytes) { chunk in
                guard notifier.reserveWhenRoom(weight: chunk.count) else { return false }
                loop.execute {
                    // One message of several lines: the newline after the last is the queue's.
                    notifier.deliver(encoded: Array(chunk.dropLast()), weight: chunk.count)
                    notifier.writeDelivered()
                }
                return true
            }
            loop.execute { [self] in
                assumeIsolated { $0.ownCatchUpPending = false }
                if count > 0 { log.info("notified \(count) event(s) the previous hub acknowledged but had not passed on to this session") }
            }
        }
    }

    /// Notification lines per chunk of this session's catch-up: a fraction of the bound, so
    /// that the next chunk is read while the session takes the last.
    static let ownCatchUpChunkBytes = 256 << 10

    /// This session's catch-up from the log is still being read (`startOwnCatchUp`).
    private var ownCatchUpPending = false

    // MARK: Sources, pairing (forwards: the routes and tools call the actor)

    /// Picks up changes other processes made to `sources.json` (`SourceDirectory`).
    public func refreshIfChanged() {
        sources.refreshIfChanged()
    }

    public var sourceCount: Int { sources.file.sources.count }
    public var pendingCount: Int { pairing.pendingCount }
    public var isClientConnected: Bool { notifier.isInitialized }

    public func source(id: String) -> SourceRecord? {
        sources.source(id: id)
    }

    /// The sources permission requests go to (README "Permission relay"), as the file says now.
    public func approvers() -> [SourceRecord] {
        sources.approvers()
    }

    /// The sources with their counters. A follower (which does not hold the log) counts from
    /// the log files, read on the caller's thread.
    public nonisolated func allSources() async -> [(SourceRecord, SourceStats)] {
        let (sources, counted) = await sourcesAndStats()
        let stats = counted ?? SourceDirectory.stats(of: EventLog.readAll(directory: store.directory))
        return sources.map { ($0, stats[$0.id] ?? SourceStats()) }
    }

    private func sourcesAndStats() -> ([SourceRecord], [String: SourceStats]?) {
        sources.sourcesAndStats(counted: logsOpen)
    }

    func requestPairing(name: String, callbackURL: String?) -> Pending<Result<PendingPairing, PairingDesk.Failure>> {
        pairing.request(name: name, callbackURL: callbackURL)
    }

    /// `peer` is the address the request came from (failures are limited per peer).
    func completePairing(code: String, peer: String) -> Pending<Result<PairingDesk.Credentials, PairingDesk.Failure>> {
        pairing.complete(code: code, peer: peer)
    }

    func pairingStatus(code: String, pollToken: String?) -> Pending<Result<(PairingBook.Status, PairingDesk.Credentials?), PairingDesk.Failure>> {
        pairing.status(code: code, pollToken: pollToken)
    }

    // MARK: Webhooks

    /// Verifies and delivers one webhook. `pathSourceID` is set for `/webhook/{id}`, where the
    /// source's scheme decides the headers; `/webhook` uses the seed's headers.
    public func receiveWebhook(pathSourceID: String?, headers: HTTPHeaders, body: [UInt8]) -> WebhookOutcome {
        refreshIfChanged()
        let now = clock.now()
        let candidate: WebhookIntake.Candidate
        switch WebhookIntake.judge(WebhookIntake.Request(pathSourceID: pathSourceID, headers: headers, body: body), now: now,
                                   source: { sources.pairedSource(id: $0) }) {
        case .unauthorized: return .unauthorized
        case .invalidJSON: return .invalidJSON
        case .challenge(let challenge): return .challenge(challenge)
        case .candidate(let verified): candidate = verified
        }
        // The source by reference, its fields read one by one (`PairedSource`).
        let source = candidate.source, replayKeys = candidate.replayKeys, type = candidate.type
        // Each key's digest made once, for the question and the insert below.
        let replayDigests = replayKeys.map(ReplayMemory.digest)
        // Loops, not `contains(where:)` and `compactMap` with closures: a closure made here is
        // isolated to this actor, and Swift 6 checks the executor each time one runs (a few
        // hundred instructions a webhook for these two).
        var seenBefore = false
        for digest in replayDigests where replay.contains(digest: digest, now: now) {
            seenBefore = true
            break
        }
        if seenBefore {
            // "Already received" is an acknowledgement too: not while the duplicate journal
            // could not be written (a restart would take the delivery for new).
            if dedupeJournal.isBehind && !dedupeJournal.writePending() { return .journalBehind }
            return .duplicate
        }
        if let verdict = candidate.verdict {
            return .verdict(permissionRelay.answer(requestID: verdict.requestID, behavior: verdict.behavior))
        }

        let record = EventRecord(
            id: CredentialGenerator.eventID(), sourceID: source.id, sourceName: source.name, deliveryID: candidate.deliveryID,
            type: type, receivedAt: now, contentType: candidate.contentType,
            headers: EventLog.keptHeaders(from: headers), body: body, replayKeys: replayKeys,
            filtered: !source.notifies(eventType: type))
        // A filtered event reserves no room: it never waits to be written to stdout.
        var notification = Notification.none
        var weight = 0
        var reservedHere = false
        var bodyLiteral: [UInt8]? = nil
        if !record.filtered {
            if source.contentMode.prefersDigest(bodyBytes: body.count) {
                notification = .digest(record, source.contentMode, candidate.scheme)
                weight = DigestWriter.maxBytes + 1024
            } else {
                var event = EventNotification.channelEvent(for: record, replay: false, contentMode: source.contentMode,
                                                           scheme: candidate.scheme, bodyIsUTF8: candidate.bodyIsUTF8)
                // The body escaped once, for the notification and the log line alike.
                if event.contentIsStored(in: body) { bodyLiteral = event.makeContentLiteral() }
                // Weighed first, then moved in: the other way round, the event was copied into the
                // notification (its parts retained) to be weighed, then released.
                weight = ChannelNotifier.weight(of: event)
                notification = .ready(consume event)
            }
            // This session's backlog counts only when the event goes to this session: a
            // session that stopped reading does not hold back events pinned to another.
            reservedHere = fanOut?.reachesOwnSession(pinnedTo: source.route) ?? true
            // Not ahead of what this session is still being caught up on (`startOwnCatchUp`).
            if reservedHere && ownCatchUpPending { return .backlog }
            if reservedHere {
                switch notifier.admit(weight: weight) {
                case .admitted: break
                case .notReady: return .notReady
                case .backlog: return .backlog
                }
            }
            // A follower session that stopped reading counts as this one would.
            if let fanOut, !fanOut.hasRoom(pinnedTo: source.route) {
                if reservedHere { notifier.cancel(weight: weight) }
                return .backlog
            }
        }

        // The keys asked about, and those only remembered (a `sha256=` part that came with
        // the `v1=` one), are remembered alike, and forgotten alike if the event is not taken.
        let allKeys = candidate.rememberedKeys.isEmpty ? replayKeys : replayKeys + candidate.rememberedKeys
        // Every key asked about is new (above), so they are the keys remembered: the same
        // array, cut only if a key came twice.
        var remembered = replayDigests
        var kept = 0
        for (index, digest) in replayDigests.enumerated() where replay.insert(digest: digest, now: now) != nil {
            if kept != index { remembered[kept] = digest }
            kept += 1
        }
        if kept < remembered.count { remembered.removeLast(remembered.count - kept) }
        for key in candidate.rememberedKeys {
            if let digest = replay.insert(key, now: now) { remembered.append(digest) }
        }
        let eventID = record.id, filtered = record.filtered
        eventLog.append(consume record, bodyIsUTF8: candidate.bodyIsUTF8, bodyLiteral: bodyLiteral)
        source.counter.stats.count(receivedAt: now)
        let written = Pending<Commit>()
        uncommitted.append(Uncommitted(notification: notification, weight: weight, reservedHere: reservedHere, route: source.route, sourceID: source.id,
                                       replayKeys: allKeys, remembered: remembered, receivedAt: now,
                                       eventID: eventID, filtered: filtered, written: written))
        return .accepted(written: written)
    }

    /// At the end of every loop pass: the events the pass accepted are notified, written to
    /// the event log with one `write`, and only then acknowledged (`commitNotifyingFirst`).
    /// With `WEBHOOK_FSYNC=1` (or a digest to build) the log is written first and an
    /// `fdatasync` or the digest, on the log worker, comes before the notifications. If the
    /// log cannot be written, none of them is acknowledged: they are forgotten again and
    /// their senders get a 503.
    public func commitAcceptedEvents() {
        // An answer lets the connection read the next pipelined request at once, which may be
        // accepted in turn: commit until nothing is left, or it would wait for the next pass.
        while !uncommitted.isEmpty { commitUncommitted() }
    }

    /// Writes the keys of the events about to be answered to the duplicate memory's journal
    /// (one `write`), after their notifications and before their `200`s: after a restart,
    /// a delivery is a duplicate only if its sender may have been told it arrived.
    /// False when the journal could not be written: the events stay remembered (a retry is
    /// a duplicate, not a second notification) but are not acknowledged yet.
    private func journalBeforeAnswering(_ batch: [Uncommitted], where owed: (Uncommitted) -> Bool) -> Bool {
        for index in batch.indices where owed(batch[index]) {
            for digest in batch[index].remembered {
                dedupeJournal.append(digest: digest, expiresAt: batch[index].receivedAt + replay.lifetime)
            }
        }
        return dedupeJournal.writePending()
    }

    private func commitUncommitted() {
        // The pass's array becomes the batch (moved, not copied: marking it below would
        // otherwise copy every event in it); the next pass gets the one the last batch left
        // empty (`spareUncommitted`), not a new allocation a pass.
        var batch = uncommitted
        uncommitted = spareUncommitted
        spareUncommitted = []
        // A follower that stopped reading may hold events in the generation a rotation would
        // remove (and one still re-attaching after a hand-over may need it): should the hub
        // die, they are read from the log again. Until then nothing that would rotate the log
        // is taken. Nor while this session's own catch-up is still being read from the log.
        let holder = !eventLog.wouldRotate ? nil
            : ownCatchUpPending ? "this session has not yet taken the events the previous hub had not passed on to it"
            : takingOver ? "this session is taking the port over and the previous hub's followers have not re-attached yet"
            : fanOut?.rotationHolder(loggedIn: eventLog.file.generation - 1)
        let heldBack = holder != nil
        if heldBack != rotationHeldBack {
            rotationHeldBack = heldBack
            if let holder {
                log.warning("the event log is full and cannot rotate yet: \(holder); "
                    + "webhooks are answered 503 backlog until then")
            }
        }
        if heldBack { eventLog.discardPending() }
        if !heldBack && canNotifyBeforeWriting(batch) {
            commitNotifyingFirst(&batch)
            batch.removeAll(keepingCapacity: batch.capacity <= 4096)
            spareUncommitted = batch
            return
        }
        // With WEBHOOK_FSYNC=1 the notifications wait for the log worker anyway: the write is
        // confirmed at once. Otherwise after the notifications are written (`answer`).
        guard !heldBack, eventLog.writeUnconfirmed(), !syncsLog || eventLog.confirmWritten() else {
            for accepted in batch where accepted.reservedHere { notifier.cancel(weight: accepted.weight) }
            if !heldBack { logRefusedLastPass = true }
            forget(batch, answering: heldBack ? .backlog : .notWritten) { _ in true }
            return
        }
        logRefusedLastPass = false
        let generation = eventLog.file.generation
        for index in batch.indices { batch[index].logGeneration = generation }
        if !syncsLog {
            // In the log as far as the kernel is concerned: that is what a 200 promises. The
            // answers go after the notifications are written (below), not before them.
            for index in batch.indices { batch[index].answered = true }
        }
        if awaitingRelease.isEmpty { awaitingRelease = batch } else { awaitingRelease += batch }
        releaseInOrder()
        if !syncsLog { answer(batch, confirmingLog: true) { _ in true } }
    }

    /// Whether a pass's batch can go out the quick way (`commitNotifyingFirst`): no
    /// `fdatasync` to wait for, no digest to build, and nothing released ahead of it still
    /// waiting (notifications keep the order the events were accepted in).
    private func canNotifyBeforeWriting(_ batch: [Uncommitted]) -> Bool {
        !logRefusedLastPass && !releaseInFlight && awaitingRelease.isEmpty && !needsLogWorker(batch)
    }

    /// Whether releasing `batch` waits for the log worker: an `fdatasync` (`WEBHOOK_FSYNC=1`)
    /// or a digest to build.
    private func needsLogWorker(_ batch: [Uncommitted]) -> Bool {
        syncsLog || batch.contains {
            if case .digest = $0.notification { return true }
            return false
        }
    }

    /// The common case, in the order that gets the notification out soonest: this session's
    /// notifications are written to stdout first, then the event log (one `write`), then the
    /// followers are sent theirs (`fanOut.endOfPass`), and the answers go out last. SPEC 9
    /// asks that a `200` follow the log's write, and it still does; the log's `write` no
    /// longer delays the notification (6–7 µs of a 60 µs notification when webhooks come a
    /// millisecond apart, the step timings in bench/HISTORY.md). Followers get the lines only
    /// once they are in the log, since a follower's tools read the hub's files. If the log
    /// cannot be written (a full disk) the senders are answered `503` after this session heard
    /// of their events, and their retries will be notified again; later passes write the log
    /// first until it works (`logRefusedLastPass`), so that happens once, not at every retry.
    /// An event is never acknowledged unlogged; a crash between the two writes leaves an event
    /// notified and not acknowledged, whose sender retries.
    private func commitNotifyingFirst(_ batch: inout [Uncommitted]) {
        let generation = eventLog.generationOfNextWrite
        for index in batch.indices {
            batch[index].logGeneration = generation
            batch[index].answered = true
        }
        release(&batch, sendingToFollowers: false)
        let ownSessionReached = notifier.writeDelivered()
        let logged = eventLog.writeUnconfirmed()
        fanOut?.endOfPass()
        guard logged else {
            refuseUnlogged(batch) { _ in true }
            return
        }
        acknowledge(batch, ownSessionReached: ownSessionReached, confirmingLog: true) { _ in true }
    }

    /// The log did not take a batch that was notified already: the events `owed` an answer are
    /// forgotten and answered `503` (a retry is a new delivery), and passes write the log first
    /// until it takes one again.
    private func refuseUnlogged(_ batch: [Uncommitted], where owed: (Uncommitted) -> Bool) {
        logRefusedLastPass = true
        forget(batch, answering: .notWritten, where: owed)
        for index in batch.indices { sharedWithFollowers.remove(ObjectIdentifier(batch[index].written)) }
    }

    /// Events taken back: their keys forgotten (a retry is a new delivery), their count undone,
    /// their senders answered `outcome` (a 503 to retry).
    private func forget(_ batch: [Uncommitted], answering outcome: Commit, where owed: (Uncommitted) -> Bool) {
        for index in batch.indices where owed(batch[index]) {
            for key in batch[index].replayKeys { replay.remove(key) }
            sources.uncount(sourceID: batch[index].sourceID)
            batch[index].written.fulfil(outcome)
        }
    }

    /// Notifies written events in the order they were accepted. A batch that needs the log
    /// worker (an `fdatasync`, a digest to build) goes there, and everything after it waits
    /// its turn; otherwise the notifications go out in this pass. One `fdatasync` covers every
    /// pass written while the previous one ran (group commit).
    private func releaseInOrder() {
        guard !releaseInFlight, !awaitingRelease.isEmpty else { return }
        var batch = awaitingRelease
        awaitingRelease = []
        guard needsLogWorker(batch) else {
            release(&batch)
            return
        }
        releaseInFlight = true
        // The event log only: the journal is written after the sync, just before the answers,
        // and a power cut that loses its tail costs at most a second notification of a retry,
        // while syncing it too doubled the syncs a pass.
        let descriptors = syncsLog ? [eventLog.file.descriptor] : []
        let loop = self.loop
        logWorker.async { [batch] in
            for descriptor in descriptors where descriptor >= 0 { _ = fdatasync(descriptor) }
            var built = batch
            for index in built.indices {
                if case .digest(let record, let mode, let scheme) = built[index].notification {
                    built[index].notification = .ready(
                        EventNotification.channelEvent(for: record, replay: false, contentMode: mode, scheme: scheme))
                }
            }
            loop.execute { [built] in
                self.assumeIsolated { state in
                    state.releaseInFlight = false
                    var built = built
                    state.release(&built)
                    state.releaseInOrder()
                }
            }
        }
    }

    /// Notifies a batch (this session and the followers), then answers what is still owed: a
    /// notification is on its way no later than its sender's `200`.
    /// `sendingToFollowers` false leaves the lines shared with followers for the caller to
    /// send (`fanOut.endOfPass`) once they are in the log.
    /// Each event is moved out of the batch (its `notification` left `.none`): copied, it was
    /// retained for the output and released again with the batch, its buffers freed by
    /// whichever let go last.
    private func release(_ batch: inout [Uncommitted], sendingToFollowers: Bool = true) {
        if let last = batch.last { lastReleasedEventID = last.eventID }
        // By index, as in `commitUncommitted`: only the fields used are copied.
        for index in batch.indices {
            var notification = Notification.none
            swap(&notification, &batch[index].notification)
            if case .ready(let event) = consume notification {
                let weight = batch[index].weight
                let (ownSession, line) = fanOut?.share(event, pinnedTo: batch[index].route,
                                                       loggedIn: batch[index].logGeneration) ?? (true, nil)
                // Remembered until the answer, unless that was given already (a batch released
                // after its answers, behind a digest).
                if line != nil && !batch[index].written.isFulfilled { sharedWithFollowers.insert(ObjectIdentifier(batch[index].written)) }
                // The sessions connected may have changed since the event was taken: room
                // reserved and not needed is given back; room needed and not reserved is
                // taken now (one event over the bound at most, never refused once answered).
                if !ownSession {
                    if batch[index].reservedHere { notifier.cancel(weight: weight) }
                    continue
                }
                if !batch[index].reservedHere { notifier.reserve(weight: weight) }
                if let line {
                    notifier.deliver(encoded: line, weight: weight)
                } else {
                    notifier.deliver(event, weight: weight)
                }
            }
        }
        if sendingToFollowers { fanOut?.endOfPass() }
        guard batch.contains(where: { !$0.answered }) else { return }
        answer(batch) { !$0.answered }
    }

    /// Writes the notifications, journals the keys of the events `owed` an answer, then answers
    /// them `200`. When the write finds Claude Code gone (stdout closed), they are answered
    /// `503` instead and forgotten by the duplicate memory: their senders retry, and a retry
    /// after the restart is delivered (their lines are in the log, their keys not journaled).
    /// An event another session received (`sharedWithFollowers`) was delivered whatever this
    /// session's stdout did, so it is acknowledged either way: a `503` would have its retry
    /// notified to that session a second time.
    ///
    /// `confirmingLog`: the event log's write of this batch is confirmed first, right after the
    /// notifications (`EventLog.confirmWritten`, one `fstat` the notifications need not wait
    /// for). If `events.log` was removed and the batch cannot be written to a new one, nothing
    /// is acknowledged: their senders retry, and Claude Code may hear of those events twice.
    private func answer(_ batch: [Uncommitted], confirmingLog: Bool = false, owed: (Uncommitted) -> Bool) {
        acknowledge(batch, ownSessionReached: notifier.writeDelivered(), confirmingLog: confirmingLog, where: owed)
    }

    /// `answer` once the notifications are written: `ownSessionReached` is what that write found.
    private func acknowledge(
        _ batch: [Uncommitted], ownSessionReached: Bool, confirmingLog: Bool, where owed: (Uncommitted) -> Bool
    ) {
        if confirmingLog && !eventLog.confirmWritten() {
            refuseUnlogged(batch, where: owed)
            return
        }
        if !ownSessionReached {
            for index in batch.indices where owed(batch[index]) && !sharedWithFollowers.contains(ObjectIdentifier(batch[index].written)) {
                for key in batch[index].replayKeys { replay.remove(key) }
                batch[index].written.fulfil(.sessionGone)
            }
        }
        func acknowledged(_ event: Uncommitted) -> Bool {
            owed(event) && (ownSessionReached || sharedWithFollowers.contains(ObjectIdentifier(event.written)))
        }
        let journaled = journalBeforeAnswering(batch, where: acknowledged)
        // By index: a `for … in` copies each element, every string and array in it retained.
        for index in batch.indices where acknowledged(batch[index]) {
            batch[index].written.fulfil(journaled ? .acknowledged(eventID: batch[index].eventID, filtered: batch[index].filtered)
                                                  : .notJournaled)
        }
        if !sharedWithFollowers.isEmpty {
            for index in batch.indices where owed(batch[index]) { sharedWithFollowers.remove(ObjectIdentifier(batch[index].written)) }
        }
    }

    // MARK: Event log

    /// The most recent events (no bodies), newest first, from the in-memory index.
    /// Nil when this process does not hold the log (a follower): read the files instead.
    public func recentEvents(sourceID: String?, limit: Int) -> [EventRecord]? {
        logsOpen ? eventLog.recent(sourceID: sourceID, limit: limit) : nil
    }

    /// Where the event's line is; reading it is the caller's (off the loop).
    public func eventLocation(id: String) -> EventLocation? {
        eventLog.location(of: id)
    }

    public nonisolated var stateDirectory: StateDirectory { store.directory }

    /// One logged event in full. The file is read on the caller's thread, never on the loop.
    public nonisolated func event(id: String) async -> EventRecord? {
        let location = await eventLocation(id: id)
        return EventLog.read(eventID: id, at: location, directory: store.directory)
    }

    /// Delivers a logged event again, marked `replay: "true"` (`EventReplay`).
    func replayEvent(id: String) -> Pending<EventReplay.Outcome> {
        eventReplay.replay(id: id)
    }
}
