import Foundation
import Testing

/// Bounds how many servers run at once. swift-testing starts every test at the same time;
/// dozens of servers starting together on a 2-core machine would turn timing contracts
/// (exit within 0.5 s) and start-up waits into measurements of the machine's load instead
/// of the product. `WEBHOOK_E2E_PARALLEL` overrides the default of twice the core count.
///
/// Waiters are served first come, first served. A test that runs several servers at once
/// must not take their slots one at a time: holding one while it queues for the next, it and
/// two others like it could hold every slot and wait for each other for ever (three such
/// tests and four slots on a 2-core machine were enough). Such a test takes all its slots at
/// once with the `.serverSlots(n)` trait; the servers it starts then wait for nothing.
final class ServerSlots: @unchecked Sendable {
    static let shared = ServerSlots(
        Int(ProcessInfo.processInfo.environment["WEBHOOK_E2E_PARALLEL"] ?? "")
            ?? max(2, ProcessInfo.processInfo.activeProcessorCount * 2))

    /// Set while a test runs on slots it reserved (`.serverSlots(n)`): its servers take none.
    @TaskLocal static var reserved = false

    let capacity: Int
    private let lock = NSLock()
    private var available: Int
    private var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []

    init(_ count: Int) {
        capacity = max(1, count)
        available = capacity
    }

    /// Waits until `count` slots (at most all of them) are free and takes them together.
    func acquire(_ count: Int = 1) async {
        let count = min(max(1, count), capacity)
        await withCheckedContinuation { continuation in
            lock.withLock {
                if waiters.isEmpty && available >= count {
                    available -= count
                    continuation.resume()
                } else {
                    waiters.append((count, continuation))
                }
            }
        }
    }

    func release(_ count: Int = 1) {
        let count = min(max(1, count), capacity)
        let ready: [CheckedContinuation<Void, Never>] = lock.withLock {
            available += count
            var ready: [CheckedContinuation<Void, Never>] = []
            // In order: a test waiting for several slots is not overtaken for ever.
            while let first = waiters.first, first.count <= available {
                available -= first.count
                ready.append(waiters.removeFirst().continuation)
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Runs `body` holding `count` slots, taken at once; servers it starts take none.
    func reserving(_ count: Int, _ body: () async throws -> Void) async rethrows {
        if Self.reserved {
            try await body()
            return
        }
        await acquire(count)
        defer { release(count) }
        try await Self.$reserved.withValue(true) { try await body() }
    }
}

/// `@Test(.serverSlots(2))` / `@Suite(.serverSlots(3))`: each test (each case) takes that many
/// server slots at once before it starts, for the servers it runs side by side.
struct ServerSlotsTrait: TestTrait, SuiteTrait, TestScoping {
    let count: Int

    var isRecursive: Bool { true }

    func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await ServerSlots.shared.reserving(count, function)
    }
}

extension Trait where Self == ServerSlotsTrait {
    static func serverSlots(_ count: Int) -> Self { ServerSlotsTrait(count: count) }
}

/// The real `webhook-channel` binary, started as Claude Code would start it, on its own
/// free port (`WEBHOOK_PORT=0`) and its own temporary state directory.
///
/// ```swift
/// let server = try await ServerProcess.start()
/// defer { server.stop() }
/// ```
final class ServerProcess: @unchecked Sendable {
    let child: ChildProcess
    let stateDir: TempStateDir
    /// The port read from `server.json` or the `listening on` log line.
    let port: Int
    private let ownsStateDir: Bool
    private let lock = NSLock()
    private var holdsSlot: Bool

    var stdout: LineBuffer { child.stdout }
    var stderr: LineBuffer { child.stderr }
    var pid: Int32 { child.pid }

    private init(child: ChildProcess, stateDir: TempStateDir, port: Int, ownsStateDir: Bool, holdsSlot: Bool) {
        self.child = child
        self.stateDir = stateDir
        self.port = port
        self.ownsStateDir = ownsStateDir
        self.holdsSlot = holdsSlot
    }

    deinit { stop() }

    /// Starts the server and waits (bounded) until it reports its port.
    ///
    /// - Parameters:
    ///   - stateDir: pass one to pre-write files or share it with CLI runs; it is then the
    ///     caller's to remove. Without one a fresh directory is made and removed by `stop()`.
    ///   - environment: extra variables, overriding the defaults.
    ///   - timeout: for the port to appear. Longer than other waits: start-up competes with
    ///     the other servers and builds on the machine, and is not what these tests measure.
    ///   - beforeLaunch: runs once the server has its slot, right before it is spawned. The
    ///     wait for a slot can be minutes on a loaded machine, so state that must still be
    ///     fresh when the server reads it (a pairing code's `created_at`) is written here.
    static func start(
        stateDir: TempStateDir? = nil,
        environment: [String: String] = [:],
        timeout: Duration = .seconds(60),
        holdStdout: Bool = false,
        descriptorLimit: Int? = nil,
        beforeLaunch: (TempStateDir) throws -> Void = { _ in }
    ) async throws -> ServerProcess {
        let metered = !ServerSlots.reserved
        if metered { await ServerSlots.shared.acquire() }
        let dir: TempStateDir
        let child: ChildProcess
        do {
            dir = try stateDir ?? TempStateDir()
            try beforeLaunch(dir)
            // With a descriptor limit, through `sh`, whose `ulimit -n` sets the soft and hard
            // limits of the binary it then execs (same pid).
            let binary = try binaryURL()
            let (executable, arguments) = descriptorLimit.map {
                (URL(fileURLWithPath: "/bin/sh"), ["-c", "ulimit -n \($0) && exec \"$0\"", binary.path])
            } ?? (binary, [])
            child = try ChildProcess(
                executable: executable, arguments: arguments,
                environment: childEnvironment(stateDir: dir, overrides: environment), holdStdout: holdStdout)
        } catch {
            if metered { ServerSlots.shared.release() }
            throw error
        }
        do {
            let port = try await waitForPort(of: child, stateDir: dir, timeout: timeout)
            return ServerProcess(child: child, stateDir: dir, port: port, ownsStateDir: stateDir == nil, holdsSlot: metered)
        } catch {
            child.kill()
            if stateDir == nil { dir.remove() }
            if metered { ServerSlots.shared.release() }
            throw error
        }
    }

    /// Kills the child if it is still running, removes a state directory it made and frees
    /// its slot. Idempotent; safe in `defer`.
    func stop() {
        child.kill()
        if ownsStateDir { stateDir.remove() }
        let release = lock.withLock {
            defer { holdsSlot = false }
            return holdsSlot
        }
        if release { ServerSlots.shared.release() }
    }

    /// Raw bytes to the server's stdin (a test adds the `\n` itself when it wants one).
    func write(_ data: Data) { child.write(data) }

    func writeLine(_ line: String) { child.write(Data((line + "\n").utf8)) }

    func closeStdin() { child.closeStdin() }

    // MARK: Locating and configuring the binary

    /// The environment a server or CLI run gets: ours without any `WEBHOOK_*` (except
    /// `WEBHOOK_EVENT_LOOP`, so `WEBHOOK_EVENT_LOOP=poll swift test` runs every end-to-end
    /// test on the poll backend) or `CLAUDE_CONFIG_DIR`, plus the test's port, loopback host
    /// and state directory. `HOME` points into the temporary directory, so a product that
    /// ignored `WEBHOOK_STATE_DIR` could never touch the real `~/.claude` (and would fail the
    /// tests instead).
    static func childEnvironment(stateDir: TempStateDir, overrides: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter {
            $0.key == "WEBHOOK_EVENT_LOOP" || !($0.key.hasPrefix("WEBHOOK_") || $0.key == "CLAUDE_CONFIG_DIR")
        }
        environment["WEBHOOK_PORT"] = "0"
        environment["WEBHOOK_HOST"] = "127.0.0.1"
        environment["WEBHOOK_STATE_DIR"] = stateDir.path
        environment["HOME"] = stateDir.root.path
        for (key, value) in overrides { environment[key] = value }
        return environment
    }

    /// The `webhook-channel` executable built next to the test bundle. Looked up, in order:
    /// `$WEBHOOK_CHANNEL_BINARY`; the directory of the running test binary (same build
    /// configuration); `<package root>/.build/{debug,release}` derived from `#filePath`.
    static func binaryURL() throws -> URL {
        try locatedBinary.get()
    }

    private static let locatedBinary: Result<URL, HarnessError> = {
        var candidates: [URL] = []
        if let explicit = ProcessInfo.processInfo.environment["WEBHOOK_CHANNEL_BINARY"], !explicit.isEmpty {
            candidates.append(URL(fileURLWithPath: explicit))
        }
        var runnerDirectories: [URL] = []
        if let executable = Bundle.main.executableURL {
            runnerDirectories.append(executable.resolvingSymlinksInPath().deletingLastPathComponent())
        }
        if let argument0 = CommandLine.arguments.first {
            runnerDirectories.append(URL(fileURLWithPath: argument0).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        runnerDirectories.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for directory in runnerDirectories {
            candidates.append(directory.appendingPathComponent("webhook-channel"))
            // A Darwin-style .xctest bundle: Contents/MacOS/<runner>.
            candidates.append(directory.appendingPathComponent("../../../webhook-channel").standardizedFileURL)
        }
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // Support
            .deletingLastPathComponent()  // WebhookChannelTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()
        for configuration in ["debug", "release"] {
            candidates.append(packageRoot.appendingPathComponent(".build/\(configuration)/webhook-channel"))
        }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return .success(candidate)
            }
        }
        return .failure(HarnessError(
            "webhook-channel binary not found; build it with `swift build --build-tests` "
                + "(or set WEBHOOK_CHANNEL_BINARY). Looked at:\n"
                + candidates.map { "  \($0.path)" }.joined(separator: "\n")))
    }()

    // MARK: Port discovery

    private static func waitForPort(of child: ChildProcess, stateDir: TempStateDir, timeout: Duration) async throws -> Int {
        try await poll(timeout: timeout, "the server to report its port (`listening on HOST:PORT` on stderr or server.json); stderr:\n\(child.stderr.tail())") {
            if let port = portFromLog(child.stderr.textLines) ?? portFromServerFile(stateDir) {
                return port
            }
            if let termination = child.termination {
                throw HarnessError("server exited (\(termination)) before reporting a port; stderr:\n\(child.stderr.tail())")
            }
            return nil
        }
    }

    /// The port of the first `listening on HOST:PORT` line (HOST may be `[::1]`).
    static func portFromLog(_ lines: [String]) -> Int? {
        for line in lines {
            guard let range = line.range(of: "listening on ") else { continue }
            let address = line[range.upperBound...].prefix { !$0.isWhitespace }
            if let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), port > 0 {
                return port
            }
        }
        return nil
    }

    static func portFromServerFile(_ stateDir: TempStateDir) -> Int? {
        guard let data = try? Data(contentsOf: stateDir.serverFile),
              let port = (try? JSON.parse(data))?["port"]?.intValue, port > 0
        else { return nil }
        return port
    }
}
