import Foundation
import Synchronization

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

    /// Holds back the stdout reader until `resumeStdout()` (see `init(…holdStdout:)`).
    private let stdoutGate = DispatchSemaphore(value: 0)
    private let stdoutHeld: Bool
    private var stdoutResumed = false
    /// Set by `closeHeldStdout`: the reader closes the pipe instead of reading it.
    private let stdoutAbandoned = Flag()
    /// Our end of the child's stdout (closed by the reader thread when it ends).
    private let stdoutReadFD: Int32

    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    /// - Parameter holdStdout: nothing reads the child's stdout until `resumeStdout()`: the
    ///   pipe fills up and the child's writes block, as when Claude Code stops reading.
    init(executable: URL, arguments: [String], environment: [String: String], holdStdout: Bool = false) throws {
        commandLine = ([executable.path] + arguments).joined(separator: " ")
        let (spawned, stdinWrite, stdoutRead, stderrRead) = try Self.spawnLock.withLock {
            try Self.spawn(executable: executable, arguments: arguments, environment: environment)
        }
        pid = spawned
        stdinFD = stdinWrite
        stdoutHeld = holdStdout
        stdoutReadFD = stdoutRead
        let abandoned = stdoutAbandoned
        Self.startReader(fd: stdoutRead, into: stdout, name: "stdout", gate: holdStdout ? stdoutGate : nil,
                         abandon: { abandoned.isSet })
        Self.startReader(fd: stderrRead, into: stderr, name: "stderr")
        startWaiter()
        startStdinWriter()
    }

    deinit { kill() }

    /// Starts reading stdout when it was held back (`holdStdout`); idempotent.
    func resumeStdout() {
        let resume = lock.withLock {
            defer { stdoutResumed = true }
            return stdoutHeld && !stdoutResumed
        }
        if resume { stdoutGate.signal() }
    }

    /// Bytes waiting unread in the child's stdout while it is held back (`holdStdout`), before
    /// `closeHeldStdout` or `resumeStdout`.
    func heldStdoutBytes() -> Int {
        var count: Int32 = 0
        return ioctl(stdoutReadFD, UInt(FIONREAD), &count) == 0 ? Int(count) : 0
    }

    /// Closes our end of the child's stdout, unread, when it was held back (`holdStdout`): as
    /// when Claude Code goes away, the child's next write to stdout fails (EPIPE). Returns once
    /// it is closed (the reader thread closes it; bounded at 10 s).
    func closeHeldStdout() {
        stdoutAbandoned.set()
        resumeStdout()
        let deadline = Date().addingTimeInterval(10)
        while !stdout.isFinished && Date() < deadline { usleep(1_000) }
    }

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

    /// Chunks queued for the child's stdin that it has not taken whole yet (a child that
    /// stopped reading leaves them here).
    var stdinChunksWaiting: Int {
        lock.withLock { stdinChunks.count + (stdinBusy ? 1 : 0) }
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
            if ended == nil { _ = Foundation.kill(pid, signal) }
        }
    }

    /// Waits for the child to end; throws when it is still running after `timeout`.
    func waitForExit(timeout: Duration = defaultTimeout) async throws -> Termination {
        try await poll(timeout: timeout, every: .milliseconds(2), "\(commandLine) (pid \(pid)) to exit; stderr:\n\(stderr.tail())") {
            termination
        }
    }

    /// SIGKILL if still running, then a bounded wait for the exit; closes stdin and lets a
    /// held stdout reader drain what is left. Idempotent.
    func kill() {
        killAndWait()
        resumeStdout()
    }

    private func killAndWait() {
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
            let written = data.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, data.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            offset += written
        }
        return nil
    }

    private static func startReader(fd: Int32, into buffer: LineBuffer, name: String, gate: DispatchSemaphore? = nil,
                                    abandon: @escaping @Sendable () -> Bool = { false }) {
        let thread = Thread {
            gate?.wait()
            if abandon() {
                close(fd)
                buffer.finish()
                return
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, $0.count) }
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
