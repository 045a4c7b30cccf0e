import Foundation
import Synchronization
import Testing
@testable import Platform
@testable import Socket
@testable import WebhookChannel

/// SPEC 10: the event loop runs on epoll or on the portable poll(2) backend
/// (`WEBHOOK_EVENT_LOOP`), with the same contract either way; the whole end-to-end suite also
/// runs with `WEBHOOK_EVENT_LOOP=poll` (see .ci/run). These tests cover what that run cannot:
/// the setting itself, and that poll mode really avoids every Linux-only interface.
struct EventLoopBackendTests {
    static let available = EventLoopBackend.allCases.filter(\.isAvailable)

    // MARK: Setting

    @Test func theDefaultIsThePlatformsNativeBackend() throws {
        let config = try ServerConfig.fromEnvironment(["HOME": "/nonexistent"])
        #expect(config.eventLoop == EventLoopBackend.native)
        #if os(Linux)
        #expect(config.eventLoop == .epoll)
        #endif
    }

    @Test(arguments: ["poll", "epoll", " POLL "])
    func aKnownBackendIsChosen(value: String) throws {
        let expected = EventLoopBackend(rawValue: value.trimmingCharacters(in: .whitespaces).lowercased())!
        guard expected.isAvailable else { return }
        let config = try ServerConfig.fromEnvironment(["HOME": "/nonexistent", "WEBHOOK_EVENT_LOOP": value])
        #expect(config.eventLoop == expected)
    }

    @Test(arguments: ["kqueue", "", "select"])
    func anUnknownBackendIsRefusedNamingTheVariable(value: String) {
        do {
            _ = try ServerConfig.fromEnvironment(["HOME": "/nonexistent", "WEBHOOK_EVENT_LOOP": value])
            Issue.record("WEBHOOK_EVENT_LOOP=\(value) was accepted")
        } catch {
            #expect(error.description.contains("WEBHOOK_EVENT_LOOP"), "\(error)")
            #expect(!error.description.contains("\n"), "one line: \(error)")
        }
    }

    // MARK: State dir (CLAUDE_CONFIG_DIR)

    @Test func theStateDirFollowsClaudeConfigDirUnlessWebhookStateDirIsSet() {
        let home = ["HOME": "/home/someone"]
        #expect(ServerConfig.defaultStateDirectory(environment: home) == "/home/someone/.claude/channels/webhook")
        #expect(ServerConfig.defaultStateDirectory(environment: home.merging(["CLAUDE_CONFIG_DIR": "/cfg/claude"]) { $1 })
            == "/cfg/claude/channels/webhook")
        #expect(ServerConfig.defaultStateDirectory(environment: home.merging(["CLAUDE_CONFIG_DIR": "/cfg/claude/"]) { $1 })
            == "/cfg/claude/channels/webhook")
        #expect(ServerConfig.defaultStateDirectory(environment: home.merging(["CLAUDE_CONFIG_DIR": ""]) { $1 })
            == "/home/someone/.claude/channels/webhook", "an empty CLAUDE_CONFIG_DIR is unset")
        let both = home.merging(["CLAUDE_CONFIG_DIR": "/cfg/claude", "WEBHOOK_STATE_DIR": "/state"]) { $1 }
        #expect(ServerConfig.defaultStateDirectory(environment: both) == "/state")
        let config = try? ServerConfig.fromEnvironment(both)
        #expect(config?.stateDirectory == "/state")
    }

    /// The CLI resolves the state dir the same way: `add` run with only CLAUDE_CONFIG_DIR
    /// writes `sources.json` under `$CLAUDE_CONFIG_DIR/channels/webhook`.
    @Test func theCLIWritesUnderClaudeConfigDir() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let configDir = dir.root.appendingPathComponent("claude-config", isDirectory: true)
        var environment = ServerProcess.childEnvironment(stateDir: dir)
        environment["WEBHOOK_STATE_DIR"] = nil
        environment["CLAUDE_CONFIG_DIR"] = configDir.path
        let child = try ChildProcess(executable: try ServerProcess.binaryURL(), arguments: ["add", "ci", "--scheme", "github"],
                                     environment: environment)
        defer { child.kill() }
        child.closeStdin()
        let termination = try await child.waitForExit()

        #expect(termination == .exited(0), "stderr:\n\(child.stderr.tail())")
        let sources = configDir.appendingPathComponent("channels/webhook/sources.json")
        #expect(FileManager.default.fileExists(atPath: sources.path), "no \(sources.path); stderr:\n\(child.stderr.tail())")
        #expect(!FileManager.default.fileExists(atPath: dir.path), "WEBHOOK_STATE_DIR was unset, yet its dir was used")
    }

    // MARK: The loop's contract on every backend

    /// What the handlers saw, in order, and the loop round of each readable call.
    final class Journal: Sendable {
        let entries = Mutex<[String]>([])
        let rounds = Mutex<[UInt64]>([])

        var all: [String] { entries.withLock { $0 } }
        func count(_ entry: String) -> Int { all.filter { $0 == entry }.count }
    }

    /// Records what the loop tells a pipe end; drains a read end, stops watching a write end.
    final class Recorder: EventLoopHandler, @unchecked Sendable {
        let name: String
        let fd: Int32
        let journal: Journal
        unowned let loop: EventLoop

        init(_ name: String, fd: Int32, loop: EventLoop, journal: Journal) {
            self.name = name
            self.fd = fd
            self.loop = loop
            self.journal = journal
        }

        func readable() {
            var bytes = [UInt8](repeating: 0, count: 64)
            _ = read(fd, &bytes, bytes.count)
            journal.entries.withLock { $0.append("\(name) readable") }
            let round = loop.round
            journal.rounds.withLock { $0.append(round) }
        }

        func writable() {
            journal.entries.withLock { $0.append("\(name) writable") }
            loop.modify(fd: fd, readable: false, writable: false)
        }

        func tick(now: UInt64) {
            journal.entries.withLock { if !$0.contains("\(name) tick") { $0.append("\(name) tick") } }
        }
    }

    static func makePipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw HarnessError("pipe: \(String(cString: strerror(errno)))") }
        return (ends[0], ends[1])
    }

    static func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            loop.execute { continuation.resume(with: Result { try body() }) }
        }
    }

    @Test(arguments: available)
    func readinessWritabilityTicksAndTheFirstDescriptorBehaveAlikeOnEveryBackend(backend: EventLoopBackend) async throws {
        let loop = try EventLoop(backend: backend)
        #expect(loop.backend == backend)
        loop.start()
        defer { loop.stop() }
        let later = try Self.makePipe()
        let first = try Self.makePipe()
        let output = try Self.makePipe()
        defer { for fd in [later.read, later.write, first.read, first.write, output.read, output.write] { close(fd) } }
        let journal = Journal()

        // `later` is registered before `first`, so only `first: true` can put `first` ahead.
        try await Self.onLoop(loop) {
            try loop.register(fd: later.read, handler: Recorder("later", fd: later.read, loop: loop, journal: journal))
            try loop.register(fd: first.read, handler: Recorder("first", fd: first.read, loop: loop, journal: journal),
                              first: true)
        }
        // Both become readable within one pass of the loop, so the next wait reports both.
        try await Self.onLoop(loop) {
            var byte: UInt8 = 1
            _ = write(later.write, &byte, 1)
            _ = write(first.write, &byte, 1)
        }
        let order = try await poll("both pipes reported readable: \(journal.all)") {
            let entries = journal.all.filter { $0.hasSuffix("readable") }
            return entries.count >= 2 ? entries : nil
        }
        #expect(order.prefix(2) == ["first readable", "later readable"])
        let seenRounds = journal.rounds.withLock { $0 }
        #expect(seenRounds.count == 2 && seenRounds[0] == seenRounds[1], "both in one round: \(seenRounds)")

        // A pipe's write end is writable at once; the handler then stops asking.
        try await Self.onLoop(loop) {
            try loop.register(fd: output.write, handler: Recorder("output", fd: output.write, loop: loop, journal: journal),
                              readable: false, writable: true)
        }
        _ = try await poll("the write end reported writable") { journal.all.contains("output writable") ? true : nil }

        // Ticks reach every handler while nothing happens.
        _ = try await poll("a tick") { journal.all.contains("later tick") ? true : nil }

        // After unregistering, data on the pipe is no longer reported.
        try await Self.onLoop(loop) {
            loop.unregister(fd: later.read)
            var byte: UInt8 = 2
            _ = write(later.write, &byte, 1)
        }
        let before = journal.count("later readable")
        try await Task.sleep(for: .milliseconds(300))
        #expect(journal.count("later readable") == before, "an unregistered descriptor was reported")

        // Work queued from another thread wakes the loop (the eventfd or the pipe).
        let ran = try await Self.onLoop(loop) { true }
        #expect(ran)
    }

    @Test func thePollBackendWatchesTheStateDirByStatEveryRound() async throws {
        let dir = try TempStateDir()
        try dir.createStateDir()
        defer { dir.remove() }
        let loop = try EventLoop(backend: .poll)
        loop.start()
        defer { loop.stop() }
        let path = dir.path
        let (watching, answers) = try await Self.onLoop(loop) { () -> (Bool?, [Bool]) in
            let watch = StateDirectoryWatch(path: path, loop: loop, changedOnTick: false)
            return (watch?.isWatching, [watch?.takeChange() ?? false, watch?.takeChange() ?? false])
        }
        #expect(watching == false, "poll mode must not use inotify")
        #expect(answers == [true, true], "without inotify every question is answered \"changed\"")
    }

    // MARK: The real binary

    /// The descriptors of a process: fd number → link text (`socket:[…]`, `anon_inode:[eventpoll]`, …).
    static func descriptors(of pid: Int32) -> [Int32: String] {
        let dir = "/proc/\(pid)/fd"
        var result: [Int32: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            guard let fd = Int32(name), let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(name)") else { continue }
            result[fd] = link
        }
        return result
    }

    /// The descriptors an epoll instance watches (`tfd:` lines of its fdinfo).
    static func watched(by epollFD: Int32, of pid: Int32) -> Set<Int32> {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(epollFD)", encoding: .utf8)) ?? ""
        var result: Set<Int32> = []
        for line in text.split(separator: "\n") where line.hasPrefix("tfd:") {
            if let number = line.dropFirst(4).split(separator: " ").first.flatMap({ Int32($0) }) { result.insert(number) }
        }
        return result
    }

    /// With `WEBHOOK_EVENT_LOOP=poll` the process holds no epoll descriptor at all (not even
    /// libdispatch's: the MCP side runs on a task executor of its own and signals are taken by
    /// `sigwait`) and no inotify descriptor, also after an MCP handshake and a tool call; by
    /// default the listener sits in an epoll set.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/fdinfo")), arguments: EventLoopBackend.allCases)
    func pollModeHoldsNoEpollOrInotifyDescriptor(backend: EventLoopBackend) async throws {
        let channel = try await TestChannel.start(environment: ["WEBHOOK_EVENT_LOOP": backend.rawValue])
        defer { channel.stop() }
        let server = channel.server
        let health = try await channel.http.get("/health")
        #expect(health.status == 200)
        _ = try await channel.mcp.callTool("webhook_events", arguments: [:])

        let fds = Self.descriptors(of: server.pid)
        let sockets = Set(fds.filter { $0.value.hasPrefix("socket:") }.keys)
        let epolls = fds.filter { $0.value == "anon_inode:[eventpoll]" }.keys
        let watchingSockets = epolls.filter { !Self.watched(by: $0, of: server.pid).isDisjoint(with: sockets) }
        let inotify = fds.values.contains { $0.contains("inotify") }
        switch backend {
        case .poll:
            #expect(epolls.isEmpty, "an epoll descriptor in poll mode: \(fds)")
            #expect(watchingSockets.isEmpty, "an epoll instance watches the HTTP socket in poll mode: \(fds)")
            #expect(!inotify, "inotify in poll mode: \(fds)")
        case .epoll:
            #expect(!sockets.isEmpty && watchingSockets.count == 1, "the listener should sit in our epoll set: \(fds)")
            #expect(inotify, "the state dir should be watched with inotify: \(fds)")
        }
    }
}
