import Foundation
import Glibc

// MARK: - Line capture

/// Bytes read from a child's stdout or stderr on a background thread, split into lines.
/// Thread-safe; a test reads it by index (`lines(from:)`) or greps it (`text`). Every line
/// ever read is kept, so a test can inspect the whole transcript after the fact.
final class LineBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var partial = Data()
    private var storage: [Data] = []
    private var finished = false

    func append(_ chunk: Data) {
        lock.lock()
        defer { lock.unlock() }
        partial.append(chunk)
        while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
            storage.append(Data(partial[partial.startIndex..<newline]))
            partial = Data(partial[partial.index(after: newline)...])
        }
    }

    /// End of stream: a last line without a newline still counts as a line.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if !partial.isEmpty {
            storage.append(partial)
            partial = Data()
        }
        finished = true
    }

    var isFinished: Bool {
        lock.lock()
        defer { lock.unlock() }
        return finished
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return storage.count
    }

    /// Complete lines from `index` on (without their `\n`).
    func lines(from index: Int) -> [Data] {
        lock.lock()
        defer { lock.unlock() }
        guard index < storage.count else { return [] }
        return Array(storage[index...])
    }

    var allLines: [Data] { lines(from: 0) }

    /// All lines decoded as UTF-8 (invalid bytes shown as U+FFFD).
    var textLines: [String] { allLines.map { String(decoding: $0, as: UTF8.self) } }

    var text: String { textLines.joined(separator: "\n") }

    /// The last few lines, for failure messages.
    func tail(_ count: Int = 15) -> String {
        let lines = textLines.suffix(count)
        return lines.isEmpty ? "(nothing)" : lines.joined(separator: "\n")
    }

    /// Waits until some line satisfies `predicate` and returns it.
    func waitForLine(
        timeout: Duration = defaultTimeout,
        _ what: String,
        where predicate: @escaping (String) -> Bool
    ) async throws -> String {
        try await poll(timeout: timeout, "\(what); got:\n\(tail())") {
            textLines.first(where: predicate)
        }
    }
}

// MARK: - Child process

/// How a child ended.
enum Termination: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    var description: String {
        switch self {
        case .exited(let code): return "exit code \(code)"
        case .signaled(let signal): return "killed by signal \(signal)"
        }
    }
}

/// One spawned process with its stdin writable and its stdout and stderr captured line by
/// line on background threads.
///
/// Spawned with `posix_spawn` rather than Foundation's `Process`: `Process` hands the child
/// the signal mask of the thread that calls `run()`, and the cooperative and Dispatch
/// threads a test runs on block nearly every signal, so the child would start with SIGTERM
/// and SIGINT blocked. Here the child gets what a shell gives it: an empty signal mask and
/// every signal at its default disposition. The test process itself never ignores SIGPIPE
/// (that would be inherited too); the stdin writer thread blocks it for itself instead.
///
/// Pipes are close-on-exec and are made under `spawnLock`, which every spawn holds, so a
/// child spawned by a test running in parallel never inherits our end of this child's
/// stdin (it would hold the pipe open and this child would never see EOF).
///
/// `kill()` is idempotent and runs from `deinit` too, so a child never outlives its test.
final class ChildProcess: @unchecked Sendable {
    let stdout = LineBuffer()
    let stderr = LineBuffer()
    let commandLine: String
    let pid: pid_t

    private let lock = NSCondition()
    private var stdinFD: Int32
    private var stdinChunks: [Data] = []
    private var stdinCloseRequested = false
    private var stdinBusy = false
    private var writeErrors: [String] = []
    private var ended: (termination: Termination, at: ContinuousClock.Instant)?

    /// `pipe2` and `accept4` are not exported by the Glibc module, so making a descriptor
    /// and setting `FD_CLOEXEC` on it happen under this lock, which every spawn holds too:
    /// no child can be spawned in between and inherit the descriptor.
    static let spawnLock = NSLock()

    init(executable: URL, arguments: [String], environment: [String: String]) throws {
        commandLine = ([executable.path] + arguments).joined(separator: " ")
        let (spawned, stdinWrite, stdoutRead, stderrRead) = try Self.spawnLock.withLock {
            try Self.spawn(executable: executable, arguments: arguments, environment: environment)
        }
        pid = spawned
        stdinFD = stdinWrite
        Self.startReader(fd: stdoutRead, into: stdout, name: "stdout")
        Self.startReader(fd: stderrRead, into: stderr, name: "stderr")
        startWaiter()
        startStdinWriter()
    }

    deinit { kill() }

    /// How the child ended (nil while it runs).
    var termination: Termination? { lock.withLock { ended?.termination } }

    /// When the child was reaped (nil while it runs): the moment `waitpid` returned.
    var exitInstant: ContinuousClock.Instant? { lock.withLock { ended?.at } }

    /// Why writes to stdin failed (EPIPE once the child is gone), for failure messages.
    var stdinWriteErrors: [String] { lock.withLock { writeErrors } }

    /// Queues bytes for the child's stdin. A dedicated thread writes them in order, so the
    /// caller never blocks: a test can send a huge line and still wait for the answer with
    /// a timeout even if the child never reads it.
    func write(_ data: Data) {
        lock.withLock {
            stdinChunks.append(data)
            lock.broadcast()
        }
    }

    /// Closes our end of the child's stdin (EOF for the child) after the queued writes, and
    /// returns once it is closed — or after 5 s when the child does not read them.
    func closeStdin() {
        lock.lock()
        defer { lock.unlock() }
        stdinCloseRequested = true
        lock.broadcast()
        let deadline = Date().addingTimeInterval(5)
        while stdinFD >= 0 && Date() < deadline {
            _ = lock.wait(until: deadline)
        }
    }

    func send(signal: Int32) {
        lock.withLock {
            // Never signal a reaped pid: it may already belong to another process.
            if ended == nil { _ = Glibc.kill(pid, signal) }
        }
    }

    /// Waits for the child to end; throws when it is still running after `timeout`.
    func waitForExit(timeout: Duration = defaultTimeout) async throws -> Termination {
        try await poll(timeout: timeout, every: .milliseconds(2), "\(commandLine) (pid \(pid)) to exit; stderr:\n\(stderr.tail())") {
            termination
        }
    }

    /// SIGKILL if still running, then a bounded wait for the exit; closes stdin. Idempotent.
    func kill() {
        send(signal: SIGKILL)
        lock.lock()
        defer { lock.unlock() }
        let deadline = Date().addingTimeInterval(5)
        while ended == nil && Date() < deadline {
            _ = lock.wait(until: deadline)
        }
        stdinCloseRequested = true
        if !stdinBusy && stdinFD >= 0 {
            close(stdinFD)
            stdinFD = -1
        }
        lock.broadcast()
    }

    // MARK: Internals

    private static func spawn(
        executable: URL, arguments: [String], environment: [String: String]
    ) throws -> (pid_t, Int32, Int32, Int32) {
        let stdinPipe = try makePipe()
        let stdoutPipe = try makePipe()
        let stderrPipe = try makePipe()

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe.read, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe.write, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable.path, &actions, &attributes, argv, envp)
        // The child has its copies; keep only our ends, or EOF never arrives.
        for fd in [stdinPipe.read, stdoutPipe.write, stderrPipe.write] { close(fd) }
        guard result == 0 else {
            for fd in [stdinPipe.write, stdoutPipe.read, stderrPipe.read] { close(fd) }
            throw HarnessError("could not launch \(executable.path): \(String(cString: strerror(result)))")
        }
        return (pid, stdinPipe.write, stdoutPipe.read, stderrPipe.read)
    }

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw HarnessError("pipe failed: \(String(cString: strerror(errno)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    /// Reaps the child the moment it ends and records how and when.
    private func startWaiter() {
        let thread = Thread { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let now = ContinuousClock.now
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
            let signal = status & 0x7f
            let termination: Termination = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
            lock.withLock {
                ended = (termination, now)
                lock.broadcast()
            }
        }
        thread.name = "e2e-waitpid-\(pid)"
        thread.start()
    }

    private func startStdinWriter() {
        let thread = Thread { [self] in
            // A write to a child that died must fail with EPIPE, not kill the test run.
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
            lock.lock()
            while true {
                if stdinFD < 0 { break }
                if !stdinChunks.isEmpty {
                    let chunk = stdinChunks.removeFirst()
                    let fd = stdinFD
                    stdinBusy = true
                    lock.unlock()
                    let error = Self.writeAll(chunk, to: fd)
                    lock.lock()
                    stdinBusy = false
                    if let error {
                        writeErrors.append(error)
                        stdinChunks.removeAll()
                    }
                    continue
                }
                if stdinCloseRequested {
                    close(stdinFD)
                    stdinFD = -1
                    lock.broadcast()
                    break
                }
                lock.wait()
            }
            lock.unlock()
        }
        thread.name = "e2e-stdin-\(pid)"
        thread.start()
    }

    private static func writeAll(_ data: Data, to fd: Int32) -> String? {
        var offset = 0
        while offset < data.count {
            let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, data.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            offset += written
        }
        return nil
    }

    private static func startReader(fd: Int32, into buffer: LineBuffer, name: String) {
        let thread = Thread {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
                if count > 0 {
                    buffer.append(Data(chunk[0..<count]))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(fd)
            buffer.finish()
        }
        thread.name = "e2e-\(name)-reader"
        thread.start()
    }
}

// MARK: - The product under test

/// Bounds how many servers run at once. swift-testing starts every test at the same time;
/// dozens of servers starting together on a 2-core machine would turn timing contracts
/// (exit within 0.5 s) and start-up waits into measurements of the machine's load instead
/// of the product. `WEBHOOK_E2E_PARALLEL` overrides the default of twice the core count.
final class ServerSlots: @unchecked Sendable {
    static let shared = ServerSlots(
        Int(ProcessInfo.processInfo.environment["WEBHOOK_E2E_PARALLEL"] ?? "")
            ?? max(2, ProcessInfo.processInfo.activeProcessorCount * 2))

    private let lock = NSLock()
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) {
        available = max(1, count)
    }

    func acquire() async {
        await withCheckedContinuation { continuation in
            lock.withLock {
                if available > 0 {
                    available -= 1
                    continuation.resume()
                } else {
                    waiters.append(continuation)
                }
            }
        }
    }

    func release() {
        lock.withLock {
            if waiters.isEmpty {
                available += 1
            } else {
                waiters.removeFirst().resume()
            }
        }
    }
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
    private var holdsSlot = true

    var stdout: LineBuffer { child.stdout }
    var stderr: LineBuffer { child.stderr }
    var pid: Int32 { child.pid }

    private init(child: ChildProcess, stateDir: TempStateDir, port: Int, ownsStateDir: Bool) {
        self.child = child
        self.stateDir = stateDir
        self.port = port
        self.ownsStateDir = ownsStateDir
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
    static func start(
        stateDir: TempStateDir? = nil,
        environment: [String: String] = [:],
        timeout: Duration = .seconds(10)
    ) async throws -> ServerProcess {
        await ServerSlots.shared.acquire()
        let dir: TempStateDir
        let child: ChildProcess
        do {
            dir = try stateDir ?? TempStateDir()
            child = try ChildProcess(
                executable: try binaryURL(), arguments: [],
                environment: childEnvironment(stateDir: dir, overrides: environment))
        } catch {
            ServerSlots.shared.release()
            throw error
        }
        do {
            let port = try await waitForPort(of: child, stateDir: dir, timeout: timeout)
            return ServerProcess(child: child, stateDir: dir, port: port, ownsStateDir: stateDir == nil)
        } catch {
            child.kill()
            if stateDir == nil { dir.remove() }
            ServerSlots.shared.release()
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

    /// The environment a server or CLI run gets: ours without any `WEBHOOK_*`, plus the
    /// test's port, loopback host and state directory. `HOME` points into the temporary
    /// directory, so a product that ignored `WEBHOOK_STATE_DIR` could never touch the real
    /// `~/.claude` (and would fail the tests instead).
    static func childEnvironment(stateDir: TempStateDir, overrides: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WEBHOOK_") }
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
