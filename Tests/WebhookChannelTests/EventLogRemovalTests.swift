import Foundation
import Platform
import Testing
@testable import WebhookChannel

/// `events.log` removed under a running server (or the whole state dir): the write that went
/// to the removed file is seen after it, and its lines are written again to a new one before
/// anything is acknowledged (`EventLog.writeUnconfirmed`, then `confirmWritten`).
@Suite struct EventLogRemovalTests {
    static func makeLog(_ dir: TempStateDir) -> EventLog {
        EventLog(directory: StateDirectory(path: dir.path), background: SerialWorker(name: "test-log-sync"), log: Logger(enabled: false))
    }

    /// A state dir with an open event log, for `body`; removed after it.
    static func withOpenLog(_ body: (TempStateDir, EventLog) throws -> Void) throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        let log = makeLog(dir)
        log.open()
        try body(dir, log)
    }

    static func record(_ n: Int) -> EventRecord {
        FollowerCatchUpTests.record(n)
    }

    /// The bytes at an event's indexed place, read straight from the file it names.
    static func lineAt(_ location: EventLocation) throws -> String {
        let handle = try #require(FileHandle(forReadingAtPath: location.path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(location.offset))
        return String(decoding: try #require(try handle.read(upToCount: location.length)), as: UTF8.self)
    }

    @Test func linesWrittenToARemovedLogAreWrittenAgainToANewOneWhenConfirmed() throws {
        try Self.withOpenLog { dir, log in
            log.append(Self.record(1))
            #expect(log.writePending())
            let path = dir.path + "/events.log"
            try FileManager.default.removeItem(atPath: path)

            log.append(Self.record(2))
            log.append(Self.record(3))
            #expect(log.writeUnconfirmed())
            // The write went to the removed file: nothing names it yet.
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect(log.confirmWritten())

            #expect(EventLog.readAll(directory: StateDirectory(path: dir.path)).map(\.id) == ["evt_2", "evt_3"])
            for id in ["evt_2", "evt_3"] {
                let location = try #require(log.location(of: id))
                #expect(location.path == path)
                #expect(try Self.lineAt(location).contains(#""id":"\#(id)""#))
            }
            // Its line went with the removed file.
            #expect(log.location(of: "evt_1") == nil)
        }
    }

    @Test func aLogStillInPlaceIsConfirmedWithoutWritingAgain() throws {
        try Self.withOpenLog { dir, log in
            log.append(Self.record(1))
            log.append(Self.record(2))
            #expect(log.writeUnconfirmed())
            #expect(log.confirmWritten())
            #expect(EventLog.readAll(directory: StateDirectory(path: dir.path)).map(\.id) == ["evt_1", "evt_2"])
            let location = try #require(log.location(of: "evt_2"))
            #expect(try Self.lineAt(location).contains(#""id":"evt_2""#))
        }
    }

    @Test func whenNoNewLogCanBeMadeTheWriteIsNotConfirmed() throws {
        try Self.withOpenLog { dir, log in
            try FileManager.default.removeItem(atPath: dir.path)

            log.append(Self.record(1))
            #expect(log.writeUnconfirmed())
            #expect(!log.confirmWritten())
            #expect(log.location(of: "evt_1") == nil)
        }
    }

    /// The duplicate memory's journal appends in one call (`RotatingLineFile.append`): after a
    /// removal its lines are in a new file too.
    @Test func anAppendToARemovedFileEndsUpInANewOne() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        let file = RotatingLineFile(name: "journal", directory: StateDirectory(path: dir.path), maxBytes: 1 << 20,
                                    background: SerialWorker(name: "test-log-sync"), log: Logger(enabled: false))
        #expect(file.append(Array("one\n".utf8)) != nil)
        let path = dir.path + "/journal"
        try FileManager.default.removeItem(atPath: path)
        let placed = try #require(file.append(Array("two\n".utf8)))
        #expect(placed.offset == 0)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "two\n")
    }
}

/// The file a rotation puts in place is made ahead, off the loop, without a name until then
/// (`RotatingLineFile.prepareNextIfDue`, `UnnamedFile`).
@Suite struct RotationPreparedFileTests {
    static func makeFile(_ dir: TempStateDir, maxBytes: Int) -> RotatingLineFile {
        RotatingLineFile(name: "events.log", directory: StateDirectory(path: dir.path), maxBytes: maxBytes,
                         background: SerialWorker(name: "test-log-sync"), log: Logger(enabled: false))
    }

    static func line(_ n: Int) -> [UInt8] {
        Array("line \(n) \(String(repeating: "x", count: 90))\n".utf8)
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() { try await Task.sleep(nanoseconds: 10_000_000) }
    }

    @Test func theRotationNamesTheFileMadeAheadAndLeavesNothingElse() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        let file = Self.makeFile(dir, maxBytes: 1000)
        for n in 0..<7 { #expect(file.append(Self.line(n)) != nil) }
        #expect(!file.nextIsReady, "not asked for below three quarters")
        #expect(file.append(Self.line(7)) != nil)
        #if canImport(Glibc)
        try await Self.waitUntil { file.nextIsReady }
        #expect(file.nextIsReady)
        #else
        // No unnamed files here (`UnnamedFile`): the rotation creates the file itself.
        #expect(!file.nextIsReady)
        #endif
        // Made without a name: the directory still holds the one file.
        #expect(dir.entries() == ["events.log"])

        let generation = file.generation
        for n in 8..<12 { #expect(file.append(Self.line(n)) != nil) }
        #expect(file.generation == generation + 1)
        #expect(!file.nextIsReady, "taken by the rotation")
        #expect(dir.entries() == ["events.log", "events.log.1"])
        let current = try String(contentsOfFile: dir.path + "/events.log", encoding: .utf8)
        // Ten 98-byte lines fill 980 of the 1000 bytes: the eleventh rotated.
        #expect(current.hasPrefix("line 10 "))
        // The descriptor written to is the file now named events.log, with the file's mode.
        var written = stat(), named = stat()
        #expect(fstat(file.descriptor, &written) == 0 && stat(dir.path + "/events.log", &named) == 0)
        #expect(written.st_ino == named.st_ino)
        #expect(named.st_mode & 0o777 == 0o600)
        let older = try String(contentsOfFile: dir.path + "/events.log.1", encoding: .utf8)
        let all = older + current
        #expect(all == (0..<12).map { String(decoding: Self.line($0), as: UTF8.self) }.joined())
    }
}
