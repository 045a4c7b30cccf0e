import Foundation
import Testing
@testable import Platform
@testable import WebhookChannel

/// The cached `sources.json`: another process's change is taken in the next loop round (here
/// without a directory watch, so every round may `stat` once), and a change made through the
/// directory is the current file by the time its answer arrives.
struct SourceDirectoryTests {
    /// A directory over a fresh state dir, not watched: every loop round stats the file.
    static func start() throws -> (LoopHarness, TempStateDir, LoopConfined<SourceDirectory>) {
        let dir = try TempStateDir()
        let harness = try LoopHarness()
        let store = SourcesStore(directory: StateDirectory(path: dir.path), log: Logger(enabled: false))
        let sources = SourceDirectory(store: store, loop: harness.loop, fileWorker: SerialWorker(name: "test-state-files"),
                                      log: Logger(enabled: false))
        return (harness, dir, LoopConfined(sources))
    }

    static func source(_ id: String, name: String) -> SourceRecord {
        SourceRecord(id: id, name: name, hmacSecret: "whsec_" + String(repeating: "ab", count: 32), callbackURL: nil,
                     pairedAt: "2026-01-02T03:04:05.678Z")
    }

    /// `sources.json` holding `records`, written (by rename) as the CLI would.
    static func writeSources(_ records: [SourceRecord], to dir: TempStateDir) throws {
        var file = SourcesFile()
        file.sources = records
        try dir.writeSourcesFile(String(decoding: file.encode(), as: UTF8.self))
    }

    @Test func aSourcesFileWrittenByAnotherProcessIsSeenInTheNextLoopRound() async throws {
        let (harness, dir, sources) = try Self.start()
        defer { harness.stop(); dir.remove() }
        #expect(await harness.run { sources.value.source(id: "src_a") == nil })

        try Self.writeSources([Self.source("src_a", name: "first")], to: dir)
        #expect(await harness.run { sources.value.source(id: "src_a")?.name } == "first")

        try Self.writeSources([Self.source("src_b", name: "second")], to: dir)
        let seen = await harness.run { (sources.value.source(id: "src_a"), sources.value.source(id: "src_b")?.name) }
        #expect(seen.0 == nil, "a source the file no longer holds is gone from the cache")
        #expect(seen.1 == "second")
    }

    @Test func sourcesJSONIsCheckedAtMostOnceInALoopRound() async throws {
        let (harness, dir, sources) = try Self.start()
        defer { harness.stop(); dir.remove() }
        let sameRound = await harness.run { () -> Bool in
            sources.value.refreshIfChanged()
            // Written during the round, after its check: this round does not look again.
            guard (try? Self.writeSources([Self.source("src_late", name: "late")], to: dir)) != nil else { return true }
            return sources.value.source(id: "src_late") != nil
        }
        #expect(!sameRound)
        #expect(await harness.run { sources.value.source(id: "src_late")?.name } == "late")
    }

    @Test func aChangeMadeHereIsTheCurrentFileWhenItsAnswerArrives() async throws {
        let (harness, dir, sources) = try Self.start()
        defer { harness.stop(); dir.remove() }
        try Self.writeSources([Self.source("src_old", name: "old")], to: dir)

        let cachedWhenAnswered = await harness.answer {
            sources.value.change { file in file.sources.append(Self.source("src_new", name: "new")) }.map { result in
                (try? result.get()) != nil ? sources.value.file.sources.map(\.id) : []
            }
        }
        // Changed on the freshest file (the one the CLI wrote), not on the empty cache.
        #expect(cachedWhenAnswered == ["src_old", "src_new"])
        let onDisk = try SourcesFile.decode(Array(Data(contentsOf: dir.sourcesFile)))
        #expect(onDisk.sources.map(\.id) == ["src_old", "src_new"])
    }

    @Test func countersAreRebuiltPerSourceFromTheLog() {
        func record(_ id: String, source: String, at time: Double) -> EventRecord {
            EventRecord(id: id, sourceID: source, sourceName: source, deliveryID: nil, type: nil, receivedAt: time,
                        contentType: "application/json", headers: [:], body: Array("{}".utf8), replayKeys: [])
        }
        let stats = SourceDirectory.stats(of: [record("e1", source: "a", at: 10), record("e2", source: "b", at: 11),
                                               record("e3", source: "a", at: 12)])
        #expect(stats["a"]?.eventCount == 2)
        #expect(stats["a"]?.lastEventAt == 12)
        #expect(stats["b"]?.eventCount == 1)
        #expect(stats["c"] == nil)
    }

    @Test func onlyAProcessThatCountsGivesCounters() async throws {
        let (harness, dir, sources) = try Self.start()
        defer { harness.stop(); dir.remove() }
        try Self.writeSources([Self.source("src_a", name: "a")], to: dir)
        let (notCounted, counted) = await harness.run { () -> (Bool, Int?) in
            sources.value.stats["src_a", default: SourceStats()].eventCount += 1
            let follower = sources.value.sourcesAndStats(counted: false)
            let hub = sources.value.sourcesAndStats(counted: true)
            return (follower.1 == nil && follower.0.count == 1, hub.1?["src_a"]?.eventCount)
        }
        #expect(notCounted)
        #expect(counted == 1)
    }

    @Test func anEventCountedThroughItsSourceKeepsItsCountWhenSourcesJSONChanges() async throws {
        let (harness, dir, sources) = try Self.start()
        defer { harness.stop(); dir.remove() }
        try Self.writeSources([Self.source("src_a", name: "a")], to: dir)
        let first = await harness.run { () -> Int? in
            sources.value.refreshIfChanged()
            guard let paired = sources.value.pairedSource(id: "src_a") else { return nil }
            paired.counter.stats.count(receivedAt: 20)
            paired.counter.stats.count(receivedAt: 21)
            return sources.value.sourcesAndStats(counted: true).1?["src_a"]?.eventCount
        }
        #expect(first == 2)

        // Renamed by another process: a new box for the source, the same counter.
        try Self.writeSources([Self.source("src_a", name: "renamed"), Self.source("src_b", name: "b")], to: dir)
        let afterChange = await harness.run { () -> (String?, Int?, Double?, Bool) in
            sources.value.refreshIfChanged()
            let paired = sources.value.pairedSource(id: "src_a")
            paired?.counter.stats.count(receivedAt: 22)
            sources.value.uncount(sourceID: "src_a")
            let stats = sources.value.sourcesAndStats(counted: true).1
            return (paired?.name, stats?["src_a"]?.eventCount, stats?["src_a"]?.lastEventAt, stats?["src_b"] == nil)
        }
        #expect(afterChange.0 == "renamed")
        #expect(afterChange.1 == 2, "two counted before the change, one after, one taken back")
        #expect(afterChange.2 == 22)
        #expect(afterChange.3, "a source without events has no counters listed")
    }

}
