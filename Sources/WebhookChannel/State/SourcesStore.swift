#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// `sources.json` on disk: read-modify-write under the state directory's advisory lock, written
/// atomically, shared by the server and CLI processes. A corrupt file is moved aside (never
/// fatal) with one error line that says `corrupt`.
public struct SourcesStore: Sendable {
    public let directory: StateDirectory
    private let log: Logger

    public init(directory: StateDirectory, log: Logger) {
        self.directory = directory
        self.log = log
    }

    /// Reads the current file without the lock: writers replace it by rename, so a reader sees
    /// either the old or the new file, never half of one — and the server's event loop never
    /// waits for another process that holds the lock. Only a corrupt file takes the lock, to
    /// move it aside (rare, and a write).
    /// For the operator CLI: the sources as the file says now (a corrupt file is set aside
    /// first). Throws when the file is there and cannot be read: no command may report "no
    /// sources" for a file it could not look at.
    public func load() throws -> (SourcesFile, FileIdentity?) {
        waitWhileFreshlyCorrupt()
        switch snapshot() {
        case .file(let file, let identity):
            return (file, identity)
        case .unreadable(let reason):
            throw Unreadable(description: reason)
        case .corrupt:
            return try setAsideIfCorrupt(waitingAtMost: nil)
        }
    }

    public struct Unreadable: Error, CustomStringConvertible {
        public let description: String
    }

    /// How long, from its last change, the operator CLI leaves a corrupt `sources.json` alone
    /// before it sets the file aside. Someone rewriting the file in place is caught mid-write
    /// as often as a real mistake: that writer finishes within it, and a running server (which
    /// notices the change at once) sets aside a file still corrupt a second after it changed
    /// and writes back the sources it last read whole. A CLI command run meanwhile waits and
    /// then reads that, instead of moving the file aside and losing every source.
    public static let operatorSettleSeconds = 5.0

    /// How long the operator CLI goes on waiting for a running server to do that, past the
    /// settle time: on a loaded machine the CLI process may start, or the server get to the
    /// file, later than that, and a CLI that gave up first set the file aside itself and
    /// reported no sources while the server was about to write them back.
    public static let operatorServerWaitSeconds = 30.0

    /// For the operator CLI, before it reads or changes the file: waits (polling, bounded)
    /// while the file is corrupt and its last change is under `operatorSettleSeconds` old,
    /// or, while a server runs for this state dir, for up to `operatorServerWaitSeconds`.
    public func waitWhileFreshlyCorrupt() {
        let start = Date().timeIntervalSince1970
        var serverRunning: Bool?
        while case .corrupt(let identity) = snapshot() {
            let now = Date().timeIntervalSince1970
            let changedAt = Double(identity?.modificationNanoseconds ?? 0) / 1e9
            if now - changedAt >= Self.operatorSettleSeconds || now >= start + Self.operatorSettleSeconds + 1 {
                if serverRunning == nil { serverRunning = ServerFile(directory: directory).read() != nil }
                guard serverRunning == true, now < start + Self.operatorServerWaitSeconds else { return }
            }
            usleep(50_000)
        }
    }

    /// What `sources.json` holds, read without the lock and without ever waiting: the event
    /// loop's read. A corrupt file is reported, not moved aside (that takes the lock).
    public enum Snapshot {
        case file(SourcesFile, FileIdentity?)
        case corrupt(FileIdentity?)
        /// There, and not readable (permissions, a directory in its place): not the same as
        /// no sources, so what was read before is kept.
        case unreadable(String)
    }

    public func snapshot() -> Snapshot {
        restrictFileMode()
        let identity = directory.fileIdentity(SourcesFile.fileName)
        do {
            guard let bytes = try directory.readFile(SourcesFile.fileName) else { return .file(SourcesFile(), nil) }
            if let file = try? SourcesFile.decode(bytes) { return .file(file, identity) }
            return .corrupt(identity)
        } catch {
            return .unreadable("\(error)")
        }
    }

    /// Under the lock (waiting at most `limit` seconds for it, forever when nil): reads the
    /// file again and, if it is still corrupt, moves it aside with one error line.
    public func setAsideIfCorrupt(waitingAtMost limit: Double?) throws -> (SourcesFile, FileIdentity?) {
        try directory.ensureExists()
        return try directory.withExclusiveLock(waitingAtMost: limit) {
            let (file, identity, _) = try loadLocked(keepingCorrupt: false)
            return (file, identity)
        }
    }

    /// Sets a looser `sources.json` to 0600 (the seed's skill writes it with the umask's 0644;
    /// it holds every source's secret), with one warning line. Needs no lock: a chmod changes
    /// no content, and a writer's rename brings a 0600 file anyway. So the server does it at
    /// start-up and on every lock-free read of a changed file, taken after the chmod so the
    /// chmod itself is not a change to read again.
    public func restrictFileMode() {
        do {
            if let old = try directory.restrictToOwner(SourcesFile.fileName) {
                log.warning("\(SourcesFile.fileName) had mode \(String(old, radix: 8)); set it to 600, as it holds the sources' secrets")
            }
        } catch {
            log.warning("cannot restrict \(SourcesFile.fileName) to mode 600: \(error)")
        }
    }

    public func identity() -> FileIdentity? {
        directory.fileIdentity(SourcesFile.fileName)
    }

    /// Applies `change` to the freshest file and writes it back, all under the lock. With
    /// `limit`, waits at most that many seconds for the lock, then throws `StateDirectoryBusy`
    /// having read and changed nothing.
    /// `ifCorrupt`: what to start from when the file on disk is corrupt (it is moved aside
    /// either way): the server's copy of the sources it last read whole, so a change made
    /// while someone's edit left the file broken does not save an empty set over them.
    public func mutate<T>(waitingAtMost limit: Double? = nil, ifCorrupt fallback: SourcesFile? = nil,
                          _ change: (inout SourcesFile) throws -> T) throws -> (T, SourcesFile, FileIdentity?) {
        try directory.ensureExists()
        return try directory.withExclusiveLock(waitingAtMost: limit) {
            // A corrupt file stays in place (its aside name a link) until the write below
            // replaces it: a lock-free reader sees the corrupt file or the new one, never none.
            var (file, _, keptCorrupt) = try loadLocked(ifCorrupt: fallback, keepingCorrupt: true)
            let result: T
            do {
                result = try change(&file)
            } catch {
                // Nothing is written: the corrupt file goes, as a move would have left it.
                if keptCorrupt { unlink(directory.path(of: SourcesFile.fileName)) }
                throw error
            }
            try directory.writeFileAtomically(SourcesFile.fileName, file.encode())
            return (result, file, directory.fileIdentity(SourcesFile.fileName))
        }
    }

    /// Must hold the lock: a corrupt file is moved aside, which is a write. `keepingCorrupt`:
    /// the caller writes the file right after, replacing the corrupt one in place (see
    /// `StateDirectory.moveAside`); the third value says whether it is still there.
    private func loadLocked(ifCorrupt fallback: SourcesFile? = nil, keepingCorrupt: Bool)
        throws -> (SourcesFile, FileIdentity?, Bool)
    {
        restrictFileMode()
        let identity = directory.fileIdentity(SourcesFile.fileName)
        guard let bytes = try directory.readFile(SourcesFile.fileName) else { return (SourcesFile(), nil, false) }
        do {
            return (try SourcesFile.decode(bytes), identity, false)
        } catch {
            let (movedTo, kept) = try directory.moveAside(SourcesFile.fileName, now: Date(), keepingOriginal: keepingCorrupt)
            if let fallback, !fallback.sources.isEmpty {
                log.error("\(SourcesFile.fileName) is corrupt (\(error)); moved it aside to \(movedTo) and kept the "
                    + "\(fallback.sources.count) source(s) read from it before")
                return (fallback, nil, kept)
            }
            log.error("\(SourcesFile.fileName) is corrupt (\(error)); moved it aside to \(movedTo) and started with no sources")
            return (SourcesFile(), nil, kept)
        }
    }
}
