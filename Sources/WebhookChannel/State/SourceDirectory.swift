import Platform
import Socket

/// What one source has received, as far as the event log of this process says.
public struct SourceStats: Sendable {
    public var eventCount = 0
    public var lastEventAt: Double?

    /// One more event, received at `time`: one call, so the table is looked up (and the
    /// source id hashed) once per event, not once per field.
    mutating func count(receivedAt time: Double) {
        eventCount += 1
        lastEventAt = time
    }
}

/// The paired sources as `sources.json` says now, kept in memory for the event loop, and what
/// each has received. The file is shared: the CLI and the seed's skill change it from other
/// processes, so the copy here is refreshed when the state dir changed (inotify, else one
/// `stat` per loop round); this process's own changes lock, write, fsync and rename, all of
/// which may wait, so they run on the file worker and the written file becomes the copy here
/// once back on the loop. Owned by `ChannelState` and used only on its executor (the loop
/// thread), so it needs no lock of its own.
final class SourceDirectory {
    let store: SourcesStore
    private let loop: EventLoop
    /// Runs `sources.json` changes (lock, write, fsync, rename) off the loop.
    private let fileWorker: SerialWorker
    /// Seconds a change waits for another process's lock on the state dir before it fails
    /// with `StateDirectoryBusy` (`ChannelState.defaultLockWait`).
    private let lockWait: Double
    private let log: Logger

    private(set) var file = SourcesFile() {
        didSet { pairSources() }
    }
    /// `file`'s sources, each in a box of its own: what a webhook is judged against. A record
    /// is a dozen strings, and handed along as a value it was retained and released a dozen
    /// times over (some forty atomic operations a webhook); a box is one reference. Each box
    /// holds its source's counter, so counting an event hashes nothing.
    private var paired: [PairedSource] = []
    private var fileIdentity: FileIdentity?
    /// The loop round of the last `refreshIfChanged` stat (0: none yet; rounds start at 1).
    private var refreshedInRound: UInt64 = 0
    /// Inotify on the state dir; without it (unavailable), every round stats the file.
    private var directoryWatch: StateDirectoryWatch?
    /// Per source: rebuilt from the log when it is opened (`stats(of:)`), then counted by
    /// `ChannelState` as it logs events (through `PairedSource.counter`, the same objects) and
    /// uncounted when a log write fails. Only the process that holds the log counts; a
    /// follower reads the files instead.
    private var counters: [String: SourceCounter] = [:]

    /// The counters as values, for listings; set once, when the log is opened.
    var stats: [String: SourceStats] {
        get { counters.compactMapValues { $0.stats.eventCount > 0 || $0.stats.lastEventAt != nil ? $0.stats : nil } }
        set {
            counters = newValue.mapValues(SourceCounter.init)
            pairSources()
        }
    }

    /// One event of `sourceID` taken back (its log write failed).
    func uncount(sourceID: String) {
        counters[sourceID]?.stats.eventCount -= 1
    }

    private func pairSources() {
        paired = file.sources.map { record in
            let counter: SourceCounter
            if let existing = counters[record.id] {
                counter = existing
            } else {
                counter = SourceCounter(SourceStats())
                counters[record.id] = counter
            }
            return PairedSource(record, counter: counter)
        }
    }

    init(store: SourcesStore, loop: EventLoop, fileWorker: SerialWorker, lockWait: Double = ChannelState.defaultLockWait,
         log: Logger) {
        self.store = store
        self.loop = loop
        self.fileWorker = fileWorker
        self.lockWait = lockWait
        self.log = log
    }

    /// Starts watching the state dir (on the loop thread, once the directory exists), so that
    /// requests need no `stat` while nothing there changes.
    func watchStateDirectory() {
        guard directoryWatch == nil else { return }
        directoryWatch = StateDirectoryWatch(path: store.directory.path, loop: loop)
        if directoryWatch == nil { log.warning("cannot watch the state directory; sources.json is checked on every request") }
    }

    /// Picks up changes another process (the CLI, the seed's skill) made. With the state dir
    /// watched (inotify), nothing is read while nothing there changed; otherwise one `stat()`
    /// per event-loop round. What a round handles was received before the round began
    /// (`EventLoop.round`), or at most the round's own microseconds after, and the check comes
    /// after it began: a change the CLI finished before a request was sent is seen.
    func refreshIfChanged() {
        guard loop.round != refreshedInRound else { return }
        if let directoryWatch, !directoryWatch.takeChange() { return }
        refreshedInRound = loop.round
        let identity = store.identity()
        guard identity != fileIdentity else { return }
        switch store.snapshot() {
        case .file(let loaded, let loadedIdentity):
            file = loaded
            fileIdentity = loadedIdentity
        case .unreadable(let reason):
            // The sources read before are kept; read again when the file changes.
            fileIdentity = identity
            log.error("cannot read \(SourcesFile.fileName): \(reason); keeping the \(file.sources.count) source(s) read before")
        case .corrupt(let corruptIdentity):
            fileIdentity = corruptIdentity
            guard !file.sources.isEmpty else {
                // Nothing good to keep (at start-up, say): set it aside now. That takes the
                // state dir's lock, which another process may hold: the file worker's to wait
                // for, never the loop's (README "What a 200 means").
                setAsideCorruptFile(restoring: nil)
                return
            }
            // An editor or a script rewriting the file in place is caught mid-write as often
            // as a real mistake: the sources known good are kept, and only a file still corrupt
            // a second later is set aside (and the good sources written back in its place).
            settleLater(identity: corruptIdentity)
        }
    }

    private func settleLater(identity: FileIdentity?) {
        let settled = Pending<Void>()
        let loop = self.loop
        TimerThread.shared.schedule(afterSeconds: Self.settleSeconds) { loop.execute { settled.fulfil(()) } }
        settled.whenReady { self.settleCorruptFile(identity: identity) }
    }

    /// How long a corrupt `sources.json` may stay so, while good sources are kept, before it is
    /// taken for a mistake rather than a write in progress.
    static let settleSeconds = 1.0

    /// A second after a corrupt `sources.json` was seen: if it is still that file, it is set
    /// aside and the sources kept meanwhile are written back; if it changed, it is read again.
    private func settleCorruptFile(identity: FileIdentity?) {
        switch store.snapshot() {
        case .file(let loaded, let loadedIdentity):
            // Written whole meanwhile.
            file = loaded
            fileIdentity = loadedIdentity
            return
        case .unreadable:
            // Not corrupt any more, and not readable either: keep the sources, look again
            // when it changes.
            return
        case .corrupt(let current) where current != identity:
            // Changed again and still unreadable: a second from this version.
            fileIdentity = current
            settleLater(identity: current)
            return
        case .corrupt:
            break
        }
        log.warning("\(SourcesFile.fileName) stayed unreadable for \(Self.settleSeconds) s; setting it aside and writing back "
            + "the \(file.sources.count) source(s) it held before")
        setAsideCorruptFile(restoring: file)
    }

    /// Moves a corrupt `sources.json` aside on the file worker (under the lock, waiting at
    /// most `lockWait`), then, with `restoring`, writes those sources back in its place, and
    /// takes what is there as the current file, on the loop. When the lock stays busy the file
    /// stays as it is until it changes; without good sources to keep, none are served.
    private func setAsideCorruptFile(restoring good: SourcesFile?) {
        let done = Pending<Result<(SourcesFile, FileIdentity?), any Error>>()
        let store = self.store
        let loop = self.loop
        let lockWait = self.lockWait
        if good == nil { file = SourcesFile() }
        fileWorker.async {
            let result = Result { () throws -> (SourcesFile, FileIdentity?) in
                guard let good else { return try store.setAsideIfCorrupt(waitingAtMost: lockWait) }
                // Moved aside and the good sources written in its place, in one hold of the lock.
                let (_, written, identity) = try store.mutate(waitingAtMost: lockWait, ifCorrupt: good) { _ in }
                return (written, identity)
            }
            loop.execute { done.fulfil(result) }
        }
        done.whenReady { result in
            switch result {
            case .success(let (file, identity)):
                self.file = file
                self.fileIdentity = identity
            case .failure(let error):
                let serving = good == nil ? "no sources are served" : "the sources read from it before are still served"
                self.log.warning("\(SourcesFile.fileName) is corrupt and could not be moved aside (\(error)); \(serving) until it changes")
            }
        }
    }

    /// Changes `sources.json` on the file worker (lock, write, fsync, rename: all of which
    /// may wait, so never on the loop), then takes the written file as the current one here,
    /// on the loop, before the answer is fulfilled. A lock held elsewhere until `lockWait`
    /// after the change was asked for fails it with `StateDirectoryBusy`, the file untouched.
    func change<T: Sendable>(_ change: @escaping @Sendable (inout SourcesFile) throws -> T) -> Pending<Result<T, any Error>> {
        let written = Pending<Result<(T, SourcesFile, FileIdentity?), any Error>>()
        let store = self.store
        let loop = self.loop
        let lockWait = self.lockWait
        let known = file
        // Real time, whatever clock the loop runs on: the wait is for another process.
        let askedAt = SystemClock().monotonicNanoseconds()
        fileWorker.async {
            // The wait counts from the request, not from when the worker got to it: changes
            // queued behind one that waited for the lock are answered within `lockWait` too
            // (trying the lock once), not one `lockWait` after another.
            let queued = Double(SystemClock().monotonicNanoseconds() &- askedAt) / 1e9
            let result = Result {
                do {
                    return try store.mutate(waitingAtMost: max(0, lockWait - queued), ifCorrupt: known, change)
                } catch let busy as StateDirectoryBusy {
                    throw StateDirectoryBusy(lockPath: busy.lockPath, limit: lockWait)
                }
            }
            loop.execute { written.fulfil(result) }
        }
        return written.map { result in
            if case .success(let (_, file, identity)) = result {
                self.file = file
                self.fileIdentity = identity
            }
            return result.map(\.0)
        }
    }

    func source(id: String) -> SourceRecord? {
        refreshIfChanged()
        return file.source(id: id)
    }

    /// The same, boxed (`paired`), without looking for a `sources.json` change first: the
    /// webhook path has done that already.
    func pairedSource(id: String) -> PairedSource? {
        for source in paired where source.id == id { return source }
        return nil
    }

    /// The sources permission requests go to (README "Permission relay"), as the file says now.
    func approvers() -> [SourceRecord] {
        refreshIfChanged()
        return file.sources.filter(\.isApprover)
    }

    /// The sources, and their counters when this process counts them (`counted`: it holds the log).
    func sourcesAndStats(counted: Bool) -> ([SourceRecord], [String: SourceStats]?) {
        refreshIfChanged()
        return (file.sources, counted ? stats : nil)
    }

    static func stats(of records: [EventRecord]) -> [String: SourceStats] {
        var stats: [String: SourceStats] = [:]
        for record in records { count(record, into: &stats) }
        return stats
    }

    /// Adds one logged event to its source's counters.
    static func count(_ record: EventRecord, into stats: inout [String: SourceStats]) {
        stats[record.sourceID, default: SourceStats()].count(receivedAt: record.receivedAt)
    }
}
