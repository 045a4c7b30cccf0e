import Foundation
import Testing
@testable import Platform
@testable import Socket
@testable import WebhookChannel

/// The inotify watch that spares a `stat` of sources.json per request: it must report every
/// change another process makes in the state dir, once, and fall back to "always changed"
/// when it can no longer see the directory.
struct StateDirectoryWatchTests {
    /// Runs `body` on the loop thread and returns its result.
    static func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: body()) }
        }
    }

    /// The watch lives on the loop thread; this box only carries it between closures there.
    final class Box: @unchecked Sendable { var watch: StateDirectoryWatch? }

    /// A running loop and a fresh state dir watched on it, with the tick safety net off so
    /// that only inotify can report a change. `box.watch` is nil when inotify is unavailable.
    static func startWatching() async throws -> (EventLoop, TempStateDir, Box) {
        let dir = try TempStateDir()
        try dir.createStateDir()
        let loop = try EventLoop()
        loop.start()
        let box = Box()
        let path = dir.path
        await onLoop(loop) { box.watch = StateDirectoryWatch(path: path, loop: loop, changedOnTick: false) }
        return (loop, dir, box)
    }

    /// Polls (on the loop) until `takeChange()` says true, for at most `timeout`.
    static func waitForChange(_ loop: EventLoop, _ box: Box, timeout: Duration = .seconds(2)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await onLoop(loop, { box.watch?.takeChange() == true }) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    @Test func aRenameOrAWriteInTheDirectoryIsReportedOnceAndThenTheWatchIsQuiet() async throws {
        let (loop, dir, box) = try await Self.startWatching()
        defer { loop.stop(); dir.remove() }
        let created = box.watch != nil
        try #require(created, "inotify is available on this machine")

        // Fresh: one change is owed (nothing was read yet); then quiet, also across ticks.
        let (first, second) = await Self.onLoop(loop) { (box.watch!.takeChange(), box.watch!.takeChange()) }
        #expect(first && !second)
        try await Task.sleep(for: .milliseconds(300))
        #expect(await Self.onLoop(loop) { box.watch!.takeChange() } == false, "a change was reported with nothing changed")

        // Atomic replacement, as the CLI and the server write sources.json.
        let temporary = dir.url.appendingPathComponent(".sources.json.tmp")
        try Data("{}".utf8).write(to: temporary)
        #expect(rename(temporary.path, dir.sourcesFile.path) == 0)
        #expect(await Self.waitForChange(loop, box), "a rename into the state dir was not reported")

        // Let the events of that rename settle and consume them, so the next answer is new.
        try await Task.sleep(for: .milliseconds(50))
        _ = await Self.onLoop(loop) { box.watch!.takeChange() }
        #expect(await Self.onLoop(loop) { box.watch!.takeChange() } == false)

        // In-place rewrite, as an editor or the seed's skill may do.
        try Data(#"{"sources":{}}"#.utf8).write(to: dir.sourcesFile)
        #expect(await Self.waitForChange(loop, box), "a rewrite of sources.json was not reported")
    }

    @Test func aWatchWhoseDirectoryIsGoneReportsAChangeEveryTime() async throws {
        let (loop, dir, box) = try await Self.startWatching()
        defer { loop.stop(); dir.remove() }
        let created = box.watch != nil
        try #require(created)
        _ = await Self.onLoop(loop) { box.watch!.takeChange() }

        #expect(rmdir(dir.path) == 0 || (try? FileManager.default.removeItem(atPath: dir.path)) != nil)
        #expect(await Self.waitForChange(loop, box))
        // From now on it cannot tell, so it always says "changed": the caller stats every round.
        let answers = await Self.onLoop(loop) { (0..<3).map { _ in box.watch!.takeChange() } }
        #expect(answers == [true, true, true])
    }
}
