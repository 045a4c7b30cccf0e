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
/// line on background threads. Pipes are close-on-exec, and they are made and the child
/// spawned under one process-wide lock, so a child spawned by a test running in parallel
/// never inherits our end of this child's stdin (it would hold the pipe open and this child
/// would never see EOF).
///
/// `kill()` is idempotent and runs from `deinit` too, so a child never outlives its test.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let stdout = LineBuffer()
    let stderr = LineBuffer()
    let commandLine: String

    private let stdinQueue = DispatchQueue(label: "e2e.child.stdin")
    private let lock = NSLock()
    private var stdinFD: Int32
    private var writeErrors: [String] = []
    private var exitedAt: ContinuousClock.Instant?

    /// Ignore SIGPIPE in the test process once: a write to a child that already died must
    /// fail with EPIPE, not kill the whole test run.
    private static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

    /// `pipe2` and `accept4` are not exported by the Glibc module, so making a descriptor
    /// and setting `FD_CLOEXEC` on it happen under this lock, which every spawn holds too:
    /// no child can be spawned in between and inherit the descriptor.
    static let spawnLock = NSLock()

    init(executable: URL, arguments: [String], environment: [String: String]) throws {
        _ = Self.ignoreSIGPIPE
        commandLine = ([executable.path] + arguments).joined(separator: " ")
        Self.spawnLock.lock()
        defer { Self.spawnLock.unlock() }
        let stdinPipe = try Self.makePipe()
        let stdoutPipe = try Self.makePipe()
        let stderrPipe = try Self.makePipe()
        stdinFD = stdinPipe.write

        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle(fileDescriptor: stdinPipe.read, closeOnDealloc: false)
        process.standardOutput = FileHandle(fileDescriptor: stdoutPipe.write, closeOnDealloc: false)
        process.standardError = FileHandle(fileDescriptor: stderrPipe.write, closeOnDealloc: false)
        process.terminationHandler = { [weak self] _ in self?.markExited() }
        do {
            try process.run()
        } catch {
            for fd in [stdinPipe.read, stdinPipe.write, stdoutPipe.read, stdoutPipe.write,
                       stderrPipe.read, stderrPipe.write] {
                close(fd)
            }
            throw HarnessError("could not launch \(executable.path): \(error)")
        }
        // The child has its copies; keep only our ends, or EOF never arrives.
        close(stdinPipe.read)
        close(stdoutPipe.write)
        close(stderrPipe.write)
        Self.startReader(fd: stdoutPipe.read, into: stdout, name: "stdout")
        Self.startReader(fd: stderrPipe.read, into: stderr, name: "stderr")
    }

    deinit { kill() }

    var pid: Int32 { process.processIdentifier }

    var isRunning: Bool { process.isRunning }

    /// Queues bytes for the child's stdin. Writes happen in order on a serial queue and
    /// never block the caller, so a test can send a huge line and still wait for the answer
    /// with a timeout even if the child never reads it.
    func write(_ data: Data) {
        stdinQueue.async { [self] in
            let fd = lock.withLock { stdinFD }
            guard fd >= 0 else { return }
            var offset = 0
            while offset < data.count {
                let written = data.withUnsafeBytes { buffer in
                    Glibc.write(fd, buffer.baseAddress! + offset, data.count - offset)
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    let reason = String(cString: strerror(errno))
                    lock.withLock { writeErrors.append(reason) }
                    return
                }
                offset += written
            }
        }
    }

    /// Closes our end of the child's stdin (EOF for the child) once the queued writes are
    /// done, and returns when it is closed.
    func closeStdin() {
        stdinQueue.sync {
            lock.withLock {
                if stdinFD >= 0 {
                    close(stdinFD)
                    stdinFD = -1
                }
            }
        }
    }

    func send(signal: Int32) {
        if isRunning { Glibc.kill(pid, signal) }
    }

    /// Waits for the child to end; throws when it is still running after `timeout`.
    func waitForExit(timeout: Duration = defaultTimeout) async throws -> Termination {
        _ = try await poll(timeout: timeout, every: .milliseconds(2), "\(commandLine) (pid \(pid)) to exit; stderr:\n\(stderr.tail())") {
            process.isRunning ? nil : true
        }
        return termination
    }

    /// The time the termination handler saw the exit (nil while running).
    var exitInstant: ContinuousClock.Instant? { lock.withLock { exitedAt } }

    var termination: Termination {
        switch process.terminationReason {
        case .exit: return .exited(process.terminationStatus)
        case .uncaughtSignal: return .signaled(process.terminationStatus)
        @unknown default: return .exited(process.terminationStatus)
        }
    }

    /// SIGKILL if still running, then a bounded wait for the exit; closes stdin. Idempotent.
    func kill() {
        if process.isRunning {
            Glibc.kill(pid, SIGKILL)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(2_000) }
        }
        lock.withLock {
            if stdinFD >= 0 {
                close(stdinFD)
                stdinFD = -1
            }
        }
    }

    private func markExited() {
        let now = ContinuousClock.now
        lock.withLock { if exitedAt == nil { exitedAt = now } }
    }

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw HarnessError("pipe failed: \(String(cString: strerror(errno)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
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
    static func start(
        stateDir: TempStateDir? = nil,
        environment: [String: String] = [:],
        timeout: Duration = defaultTimeout
    ) async throws -> ServerProcess {
        let dir = try stateDir ?? TempStateDir()
        let child = try ChildProcess(
            executable: try binaryURL(), arguments: [],
            environment: childEnvironment(stateDir: dir, overrides: environment))
        do {
            let port = try await waitForPort(of: child, stateDir: dir, timeout: timeout)
            return ServerProcess(child: child, stateDir: dir, port: port, ownsStateDir: stateDir == nil)
        } catch {
            child.kill()
            if stateDir == nil { dir.remove() }
            throw error
        }
    }

    /// Kills the child if it is still running and removes a state directory it made.
    /// Idempotent; safe in `defer`.
    func stop() {
        child.kill()
        if ownsStateDir { stateDir.remove() }
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
            if !child.isRunning {
                throw HarnessError("server exited (\(child.termination)) before reporting a port; stderr:\n\(child.stderr.tail())")
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
