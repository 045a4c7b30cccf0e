import Foundation
import Synchronization
import Testing
@testable import Platform
@testable import WebhookChannel

struct FileStoreTests {
    /// A fresh directory path (not yet created) under the system temp dir, removed afterwards.
    func withTemporaryPath<T>(_ body: (String) throws -> T) rethrows -> T {
        let root = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: root) }
        return try body(root)
    }

    /// The same for a body that awaits.
    func withTemporaryPath<T>(_ body: (String) async throws -> T) async rethrows -> T {
        let root = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: root) }
        return try await body(root)
    }

    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("filestore-\(UUID().uuidString)").path
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        #expect(stat(path, &info) == 0)
        return info.st_mode & 0o7777
    }

    @Test func atomicWriteLeavesOwnerOnlyFileInOwnerOnlyDirectory() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root + "/nested/state")
            try directory.ensureExists()
            try directory.writeFileAtomically("sources.json", Array("{}\n".utf8))

            #expect(mode(directory.path) == 0o700)
            #expect(mode(directory.path(of: "sources.json")) == 0o600)
            #expect(try directory.readFile("sources.json") == Array("{}\n".utf8))
            // Nothing but the target is left behind (no temporary files).
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["sources.json"])
        }
    }

    @Test func atomicWriteReplacesAnExistingFileWhole() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            try directory.writeFileAtomically("a.json", [UInt8](repeating: 1, count: 100_000))
            try directory.writeFileAtomically("a.json", [2, 3])
            #expect(try directory.readFile("a.json") == [2, 3])
            try directory.writeFileAtomically("a.json", [])
            #expect(try directory.readFile("a.json") == [])
        }
    }

    @Test func existingLooseDirectoryIsTightenedTo0700() throws {
        try withTemporaryPath { root in
            #expect(mkdir(root, 0o755) == 0)
            #expect(chmod(root, 0o755) == 0)
            try StateDirectory(path: root).ensureExists()
            #expect(mode(root) == 0o700)
        }
    }

    @Test func ensureExistsRefusesAFileWithAClearReason() {
        withTemporaryPath { root in
            #expect(FileManager.default.createFile(atPath: root, contents: Data()))
            let error = #expect(throws: StateFileError.self) { try StateDirectory(path: root).ensureExists() }
            #expect(error?.description == "cannot use as state directory \(root): Not a directory")
        }
    }

    @Test func writeIntoMissingDirectoryNamesOperationPathAndReason() {
        withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            let error = #expect(throws: StateFileError.self) { try directory.writeFileAtomically("sources.json", [1]) }
            #expect(error?.code == ENOENT)
            #expect(error?.description.hasPrefix("cannot create temporary file \(root)/.sources.json.tmp-") == true)
            #expect(error?.description.hasSuffix(": No such file or directory") == true)
        }
    }

    @Test func missingFileReadsAsNilAndHasNoIdentity() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            #expect(try directory.readFile("sources.json") == nil)
            #expect(directory.fileIdentity("sources.json") == nil)
        }
    }

    @Test func identityChangesAfterEveryWriteAndOnlyThen() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            try directory.writeFileAtomically("sources.json", Array("one".utf8))
            let first = try #require(directory.fileIdentity("sources.json"))
            #expect(directory.fileIdentity("sources.json") == first)
            #expect(first.size == 3)

            // Same size and, within the clock's resolution, possibly the same mtime: the new
            // inode still tells the change apart.
            try directory.writeFileAtomically("sources.json", Array("two".utf8))
            let second = try #require(directory.fileIdentity("sources.json"))
            #expect(second != first)
            #expect(directory.fileIdentity("sources.json") == second)
        }
    }

    @Test func lockExcludesAConcurrentWriter() async throws {
        try await withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            try directory.writeFileAtomically("counter", Array("0".utf8))
            let failures = Mutex<[String]>([])

            // Two threads, each with its own lock descriptor, behave like two processes: flock
            // locks belong to the open file description, not to the process.
            let finished = DispatchGroup()
            for _ in 0..<2 {
                finished.enter()
                Thread {
                    defer { finished.leave() }
                    for _ in 0..<200 {
                        do {
                            try directory.withExclusiveLock {
                                let text = String(decoding: try directory.readFile("counter") ?? [], as: UTF8.self)
                                let value = Int(text) ?? -1_000_000
                                // Give the other thread every chance to interleave if the lock failed.
                                sched_yield()
                                try directory.writeFileAtomically("counter", Array(String(value + 1).utf8))
                            }
                        } catch {
                            failures.withLock { $0.append("\(error)") }
                        }
                    }
                }.start()
            }
            // Awaited, not waited for: 400 locked atomic writes can take seconds on a loaded
            // disk, and a blocked test holds one of the run's two cooperative threads.
            await withCheckedContinuation { done in finished.notify(queue: .global()) { done.resume() } }

            #expect(failures.withLock { $0 } == [])
            #expect(try directory.readFile("counter") == Array("400".utf8))
            #expect(mode(directory.path(of: ".lock")) == 0o600)
        }
    }

    @Test func lockIsReleasedWhenTheBodyThrows() throws {
        struct Expected: Error {}
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            #expect(throws: Expected.self) { try directory.withExclusiveLock { throw Expected() } }
            #expect(try directory.withExclusiveLock { 42 } == 42)
            #expect(FileManager.default.fileExists(atPath: directory.path(of: ".lock")))
        }
    }

    @Test func aLockHeldElsewhereFailsAsBusyOnceTheWaitLimitHasPassedAndIsTakenOnceReleased() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            // Another open file description, as another process would have.
            let holder = try HeldStateLock(path: directory.path(of: StateDirectory.lockFileName))
            defer { holder.release() }

            var ran = false
            let started = ContinuousClock.now
            do {
                try directory.withExclusiveLock(waitingAtMost: 0.2) { ran = true }
                Issue.record("took the lock another descriptor holds")
            } catch let busy as StateDirectoryBusy {
                let waited = ContinuousClock.now - started
                #expect(waited >= .milliseconds(200), "gave up after \(waited), before its limit")
                #expect(busy.lockPath == "\(root)/.lock")
                #expect(busy.description == "the state directory lock \(root)/.lock is held by another process (waited 0.2 s)")
            }
            #expect(!ran, "the body ran without the lock")

            holder.release()
            #expect(try directory.withExclusiveLock(waitingAtMost: 0.2) { 42 } == 42)
        }
    }

    @Test func aLockWaitWithALimitEndsWhenTheHolderLetsGoAndNotBefore() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            let holder = try HeldStateLock(path: directory.path(of: StateDirectory.lockFileName))
            defer { holder.release() }
            Thread {
                usleep(300_000)
                holder.release()
            }.start()
            // The limit is far beyond the release: the wait ends because the lock came free.
            let sawRelease = try directory.withExclusiveLock(waitingAtMost: 120) { holder.isReleased }
            #expect(sawRelease, "the body ran while the other descriptor still held the lock")
        }
    }

    @Test func aBusyLockIsTriedOnceWithAZeroLimit() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            #expect(try directory.withExclusiveLock(waitingAtMost: 0) { 1 } == 1, "a free lock is taken without waiting")
            let holder = try HeldStateLock(path: directory.path(of: StateDirectory.lockFileName))
            defer { holder.release() }
            #expect(throws: StateDirectoryBusy.self) { try directory.withExclusiveLock(waitingAtMost: 0) {} }
        }
    }

    @Test func moveAsideUsesUTCStampAndCountsUpWhenTaken() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            let now = Date(timeIntervalSince1970: 1_700_000_000.75)  // 2023-11-14T22:13:20Z

            try directory.writeFileAtomically("sources.json", Array("{broken".utf8))
            #expect(try directory.moveAside("sources.json", now: now, keepingOriginal: false).name == "sources.json.corrupt-20231114T221320Z")
            #expect(try directory.readFile("sources.json") == nil)
            #expect(try directory.readFile("sources.json.corrupt-20231114T221320Z") == Array("{broken".utf8))

            try directory.writeFileAtomically("sources.json", Array("{again".utf8))
            #expect(try directory.moveAside("sources.json", now: now, keepingOriginal: false).name == "sources.json.corrupt-20231114T221320Z-1")
            try directory.writeFileAtomically("sources.json", Array("{third".utf8))
            #expect(try directory.moveAside("sources.json", now: now, keepingOriginal: false).name == "sources.json.corrupt-20231114T221320Z-2")
            #expect(try directory.readFile("sources.json.corrupt-20231114T221320Z-2") == Array("{third".utf8))
        }
    }

    @Test func settingAsideForAWriteKeepsTheOriginalInPlaceUnderALinkedName() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            try directory.writeFileAtomically("sources.json", Array("{broken".utf8))
            let (name, kept) = try directory.moveAside("sources.json", now: Date(), keepingOriginal: true)
            #expect(kept)
            #expect(try directory.readFile("sources.json") == Array("{broken".utf8))
            #expect(try directory.readFile(name) == Array("{broken".utf8))
        }
    }

    /// The server restores a corrupt `sources.json` (set aside, good sources written back)
    /// while readers take the file without the lock: at no moment may the file be missing, a
    /// reader would take that for "no sources" (a CLI command once listed none). A reader
    /// thread looks for it throughout 200 restores; a change that fails leaves no corrupt file.
    @Test func aRestoredSourcesFileIsNeverMissingForALockFreeReader() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            let store = SourcesStore(directory: directory, log: Logger(enabled: false))
            let good = try SourcesFile.decode(Array(#"{"sources": {"src_a": {"name": "a", "hmac_secret": "whsec_x", "paired_at": "2026-01-02T03:04:05.678Z"}}, "pending": {}}"#.utf8))
            #expect(good.sources.count == 1)
            try directory.writeFileAtomically("sources.json", good.encode())
            let done = Atomic<Bool>(false), missing = Atomic<Int>(0)
            let path = directory.path(of: "sources.json")
            let reader = Thread {
                while !done.load(ordering: .acquiring) {
                    if access(path, F_OK) != 0 { missing.add(1, ordering: .relaxed) }
                }
            }
            reader.start()
            for _ in 0..<200 {
                try directory.writeFileAtomically("sources.json", Array("{broken".utf8))
                _ = try store.mutate(ifCorrupt: good) { _ in }
            }
            done.store(true, ordering: .releasing)
            #expect(missing.load(ordering: .acquiring) == 0)
            #expect(try store.load().0.sources.count == 1)

            struct Refused: Error {}
            try directory.writeFileAtomically("sources.json", Array("{broken".utf8))
            #expect(throws: Refused.self) { try store.mutate(ifCorrupt: good) { _ in throw Refused() } }
            #expect(try directory.readFile("sources.json") == nil)
        }
    }

    @Test func movingAsideAMissingFileFails() throws {
        try withTemporaryPath { root in
            let directory = StateDirectory(path: root)
            try directory.ensureExists()
            let error = #expect(throws: StateFileError.self) { try directory.moveAside("sources.json", now: Date(), keepingOriginal: true) }
            #expect(error?.code == ENOENT)
        }
    }
}
