#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization
import Platform
import JSON
import Socket
import HTTP
import Signing
import MCP

/// `webhook-channel` with no arguments: MCP on stdio and the HTTP server, in one process.
enum ServeCommand {
    static let version = "0.1.0"

    /// The signals that end the server in order.
    static let exitSignals = [SIGTERM, SIGINT, SIGHUP]
    /// Descriptors kept back from the connection cap for the process itself (see `run`).
    static let reservedDescriptors = 64

    static let help = """
    Usage: webhook-channel serve

    Serve (the same as no command, which is how Claude Code starts it): MCP on stdin/stdout
    and signed HTTP webhooks on WEBHOOK_HOST:WEBHOOK_PORT (default 127.0.0.1:8788). Exits at
    the end of stdin, on SIGTERM, SIGINT or SIGHUP, or when stdout's reader goes away.

    Environment: WEBHOOK_PORT, WEBHOOK_HOST, WEBHOOK_STATE_DIR, WEBHOOK_FSYNC, WEBHOOK_EVENT_LOOP
    """

    static func run() -> Never {
        // Before any thread starts (they inherit the mask): SIGTERM, SIGINT and SIGHUP are
        // taken by one thread with sigwait (`Shutdown.onSignals`), not by handlers or Dispatch
        // sources. SIGHUP is a closed terminal: the session is gone, so it ends like SIGTERM
        // (files removed, port closed) instead of the default abrupt death.
        Shutdown.blockSignals(exitSignals)
        // Then the allocator is tuned, which may execute the server again: the mask outlives
        // `exec`, so a SIGTERM that arrives meanwhile waits for the signal thread instead of
        // killing the process.
        AllocatorTuning.reexecuteIfNeeded()
        // Before anything can print: descriptor 1 becomes stderr, protocol lines go elsewhere.
        // Protocol lines have a writer thread of their own: a reader that stops reading stalls
        // only it (the event log is written on the loop, see ChannelState.commitAcceptedEvents).
        let output = ProtocolOutput.takeOverStandardOutput(worker: SerialWorker(name: "stdout"))
        signal(SIGPIPE, SIG_IGN)
        let log = Logger()

        var config: ServerConfig
        do { config = try ServerConfig.fromEnvironment() } catch {
            log.error(error.description)
            exit(2)
        }
        // One descriptor per connection, and a few for the process's own files, pipes, hub
        // links and DNS: the soft limit (often 1024) is raised as far as the hard one allows,
        // and below what the cap needs the cap comes down, so a client past it gets a 503
        // rather than the accept failing for want of a descriptor.
        let wantedDescriptors = config.maxConnections + Self.reservedDescriptors
        let descriptorLimit = DescriptorLimit.raise(toAtLeast: wantedDescriptors)
        if descriptorLimit < wantedDescriptors {
            config.maxConnections = max(1, descriptorLimit - Self.reservedDescriptors)
            config.connectionCapNote = "the open-file limit is \(descriptorLimit) (ulimit -n): connections capped at \(config.maxConnections)"
        }

        let directory = StateDirectory(path: config.stateDirectory)
        do { try directory.ensureExists() } catch {
            log.error("state directory \(config.stateDirectory): \(error)")
        }
        let store = SourcesStore(directory: directory, log: log)
        // Before anything serves: a seed-written sources.json (0644) becomes 0600 at start-up,
        // not at the first request that happens to read it.
        store.restrictFileMode()
        let loop: EventLoop
        do { loop = try EventLoop(backend: config.eventLoop, busyPollNanoseconds: config.busyPollMicroseconds * 1000) } catch {
            log.error("cannot start the event loop: \(error)")
            exit(1)
        }
        loop.start()

        let clock = SystemClock()
        let notifier = ChannelNotifier(output: output)
        let state = ChannelState(loop: loop, store: store, clock: clock,
                                 notifier: notifier, syncsLog: config.syncsEventLog, lockWait: config.stateLockWait, log: log)
        // Once per loop pass: the events the pass accepted go to the event log with one
        // write, then their answers and notifications go out, the notifications with one write.
        loop.addEndOfPassAction {
            state.assumeIsolated { state in
                state.commitAcceptedEvents()
                // A change to sources.json is looked at within a pass, not only when a request
                // comes: a file left corrupt is set aside and the good sources written back a
                // second later even on an idle server (a CLI command waits for that).
                state.refreshIfChanged()
            }
            output.writeQueued()
            // A reader that reads but is behind slows the loop down (bounded) rather than
            // let the backlog run into 503s.
            output.waitWhileReaderBehind()
        }
        // Replies never go to this server's own port (CallbackURLPolicy.ownPort): with port 0,
        // the port the kernel picked is set once bound.
        let ownPort = CallbackURLPolicy.OwnPort(config.port)
        let policy = CallbackURLPolicy(allowPrivate: config.allowPrivateCallbacks, ownPort: ownPort)
        // The MCP side's tasks (tool calls, reply retries) run on a thread of their own, not on
        // libdispatch's pool.
        let mcpExecutor = ThreadTaskExecutor(name: "mcp")
        let replies = ReplySender(policy: policy, clock: clock, log: log, delays: config.retryDelays,
                                  executor: mcpExecutor)

        loop.execute { state.assumeIsolated { $0.watchStateDirectory() } }
        let coordinator = SessionCoordinator(directory: directory, host: config.host, port: config.port, loop: loop,
                                             channel: state, output: output, notifier: notifier, log: log)
        coordinator.bind = httpBinder(config: config, loop: loop, state: state, policy: policy, log: log,
                                      sessions: { [unowned coordinator] in coordinator.sessionCount })
        coordinator.begin()

        let shutdown = Shutdown {
            coordinator.stopServing()
            loop.stop(timeoutMilliseconds: 150)
            coordinator.releaseFollowers()
            output.flush(timeoutMilliseconds: 150)
            // `_exit`, not `exit`: the followers just let go wake their threads, which may still
            // run Swift code, and `exit`'s teardown of the runtime under them crashed the hub
            // (SIGSEGV) on one exit in three. Nothing is left to flush: stdout was flushed
            // above, and logs and files are written with write(2), unbuffered.
            ProfileCounts.writeIfCounting()
            _exit(0)
        }
        shutdown.onSignals(exitSignals)
        // Claude Code closed our stdout: nothing accepted from now on could be delivered.
        output.whenReaderGone {
            log.info("stdout closed by its reader; exiting")
            shutdown.run()
        }

        let relay = state.permissionRelay
        let mcp = MCPServer(
            name: "webhook", version: version, instructions: Instructions.text,
            tools: WebhookTools.all(state: state, replies: replies, session: { coordinator.status }), notifier: notifier,
            // Read at each initialize: an approver added at the terminal counts from the next session.
            experimentalCapabilities: {
                await state.approvers().isEmpty ? JSONObject() : ["claude/channel/permission": .object(JSONObject())]
            },
            notificationHandlers: [
                "notifications/claude/channel/permission_request": { params in
                    relay.relay(request: params, approvers: await state.approvers(), replies: replies)
                },
            ],
            log: log)
        let session = JSONRPCSession(output: output, handler: mcp, log: log, executor: mcpExecutor)
        // At end of input Claude Code is gone: webhooks stop being taken at once, and the
        // process exits as soon as the session has answered what it read (at most 300 ms
        // later, within SPEC's 0.5 s, even with tool calls still reading the log).
        let lines = LineReader(fd: STDIN_FILENO).start(atEnd: {
            coordinator.stopServing()
            DetachedThread.start(name: "exit-deadline") {
                usleep(300_000)
                log.info("stdin closed; exiting without waiting for the tool calls still running")
                shutdown.run()
            }
        })
        Task.detached(executorPreference: mcpExecutor) {
            await session.run(lines)
            log.info("stdin closed; exiting")
            shutdown.run()
        }
        // The main thread has nothing left to do; everything runs on the threads started above.
        while true { sleep(3600) }
    }

    /// What binding the HTTP port takes: called at start-up and again when a follower takes
    /// over from a hub that went away. Binds on the loop thread; only after the bind succeeded
    /// does this process open the event log (the hub is its only writer).
    /// `waitSeconds`: how long the caller waits for the loop to bind (tests shorten it).
    static func httpBinder(config: ServerConfig, loop: EventLoop, state: ChannelState, policy: CallbackURLPolicy,
                           log: Logger, sessions: @escaping @Sendable () -> Int, waitSeconds: Int = 60) -> SessionCoordinator.Bind
    {
        let loopback = config.bindsLoopback
        let limits = HTTPLimits(maxBodyBytes: config.maxBodyBytes)
        let timeouts = HTTPServer.Timeouts(
            headNanoseconds: UInt64(config.headerTimeout * 1e9), requestNanoseconds: UInt64(max(config.headerTimeout, 30) * 1e9),
            idleNanoseconds: UInt64(config.idleTimeout * 1e9))
        return { port in
            // The outcome, or that the caller stopped waiting: then a server bound after all is
            // stopped at once, so none is left registered on the loop with no owner (it would
            // crash the loop at its first connection) and the caller's retry binds the only one.
            let result = Mutex<(outcome: Result<HTTPServer, SocketError>?, abandoned: Bool)>((nil, false))
            let done = ConditionSignal()
            loop.execute {
                let outcome: Result<HTTPServer, SocketError>
                do throws(SocketError) {
                    let server = try HTTPServer(host: config.host, port: port, loop: loop, limits: limits,
                                                timeouts: timeouts, maxConnections: config.maxConnections, respond: { _, _ in
                                                    .now(.error(status: 503, code: "not_ready", message: "Starting."))
                                                })
                    outcome = .success(server)
                } catch {
                    outcome = .failure(error)
                }
                if case .success(let server) = outcome {
                    policy.ownPort?.set(server.address.port)
                    if !loopback {
                        log.warning("listening on non-loopback address \(config.host): anyone who can reach it can POST /pair; "
                            + "put it behind a tunnel or firewall you control")
                    }
                    let own = SessionInfo.current(role: .hub)
                    state.assumeIsolated { $0.openLogs(ownSessionInside: own.isInside) }
                    let controlToken = ControlToken.create(directory: StateDirectory(path: config.stateDirectory), log: log)
                    let routes = WebhookRoutes(state: state, callbackPolicy: policy, enforceLoopbackHost: loopback, boundHost: config.host,
                                               controlToken: controlToken, sessions: sessions, log: log)
                    server.respond = routes.respond
                    server.screenHead = routes.screen
                    // Started under the lock the waiter gives up under: it gets a started
                    // server or nothing, and a server it gave up on is stopped here.
                    let started = result.withLock { state -> Bool in
                        guard !state.abandoned else { return false }
                        do throws(SocketError) {
                            try server.start()
                            state.outcome = .success(server)
                            return true
                        } catch {
                            state.outcome = .failure(error)
                            return false
                        }
                    }
                    if started {
                        log.info("listening on \(server.address)")
                        if let note = config.connectionCapNote { log.warning(note) }
                    } else {
                        server.stop()
                    }
                } else {
                    result.withLock { $0.outcome = outcome }
                }
                done.signal()
            }
            // Opening a large event log is part of this job; on a loaded machine it takes
            // seconds. Wait in slices, up to a minute.
            for _ in 0..<waitSeconds {
                if result.withLock({ $0.outcome != nil }) { break }
                done.wait(timeoutMilliseconds: 1000)
            }
            return result.withLock { state in
                if state.outcome == nil { state.abandoned = true }
                return state.outcome
            } ?? .failure(SocketError(call: "bind (timed out)", code: ETIMEDOUT))
        }
    }
}

/// `server.json` in the state dir tells the CLI and tests where the running server listens.
struct ServerFile: Sendable {
    static let name = "server.json"
    /// Serialises this process's writes, and says whether it has removed the file for good
    /// (at exit): a follower detaching meanwhile must not write it back, naming a dead pid.
    private static let writing = Mutex(false)
    let directory: StateDirectory

    /// Written by the hub: where it listens and which sessions follow it. Writes from the
    /// threads that see followers come and go are serialised; none after `remove`.
    func write(host: String, port: UInt16, sessions: [SessionInfo], log: Logger) {
        let json: JSONValue = [
            "pid": .int(Int64(getpid())), "host": .string(host), "port": .int(Int64(port)),
            "sessions": .array(sessions.map(\.json)),
        ]
        do {
            try Self.writing.withLock { removed in
                guard !removed else { return }
                try directory.writeFileAtomically(ServerFile.name, JSONWriter.pretty(json))
            }
        } catch {
            log.error("cannot write \(ServerFile.name): \(error)")
        }
    }

    /// At exit: removes the file if it still names this process (another server may have
    /// started), and stops this process writing it again.
    func remove() {
        Self.writing.withLock { removed in
            removed = true
            guard let bytes = try? directory.readFile(ServerFile.name), let value = try? JSONParser.parse(bytes),
                  value["pid"]?.intValue == Int64(getpid()) else { return }
            unlink(directory.path(of: ServerFile.name))
        }
    }

    /// The sessions the hub listed (itself first, then its followers). `evenIfGone`: also when
    /// the process that wrote the file is no longer running (nil when there is no file).
    func sessions(evenIfGone: Bool) -> [SessionInfo]? {
        guard let bytes = try? directory.readFile(ServerFile.name), let value = try? JSONParser.parse(bytes)
        else { return nil }
        guard evenIfGone || read() != nil else { return [] }
        return value["sessions"]?.arrayValue?.compactMap(SessionInfo.init(json:)) ?? []
    }

    /// The sessions the running hub listed (itself first, then its followers).
    func sessions() -> [SessionInfo] {
        sessions(evenIfGone: false) ?? []
    }

    /// The running server's pid and address, if its file names a live process.
    func read() -> (pid: Int32, host: String, port: UInt16)? {
        guard let bytes = try? directory.readFile(ServerFile.name), let value = try? JSONParser.parse(bytes),
              let pid = value["pid"]?.intValue, let port = value["port"]?.intValue, let host = value["host"]?.stringValue,
              kill(pid_t(pid), 0) == 0 || errno == EPERM, (1...65535).contains(port) else { return nil }
        return (Int32(pid), host, UInt16(port))
    }
}

/// A random token in a 0600 file of the state dir, for the CLI's control requests (`replay`).
enum ControlToken {
    static let name = "control.token"

    static func create(directory: StateDirectory, log: Logger) -> String {
        let token = SecureRandom.hex(32)
        do { try directory.writeFileAtomically(name, Array(token.utf8)) } catch {
            log.error("cannot write \(name): \(error)")
        }
        return token
    }

    static func read(directory: StateDirectory) -> String? {
        (try? directory.readFile(name)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
    }
}

/// Runs the exit path once, from a signal or from the end of input.
///
/// Signals are waited for by a thread of their own (`sigwait`), with no Dispatch source and
/// no handler: the process then holds no descriptor for them (libdispatch would add an epoll
/// set, a signalfd and a timerfd, which the poll backend is meant to do without).
final class Shutdown: Sendable {
    private let once = Mutex(false)
    private let action: @Sendable () -> Void

    init(_ action: @escaping @Sendable () -> Void) { self.action = action }

    func run() {
        let first = once.withLock { ran in
            defer { ran = true }
            return !ran
        }
        if first { action() }
    }

    /// Blocks `signals` in the calling thread and every thread it starts afterwards.
    static func blockSignals(_ signals: [Int32]) {
        var set = signalSet(signals)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits for `signals` (blocked by `blockSignals`) on a thread of its own and runs the exit path.
    func onSignals(_ signals: [Int32]) {
        DetachedThread.start(name: "signals") { [self] in
            var set = Self.signalSet(signals)
            var received: Int32 = 0
            while sigwait(&set, &received) != 0 {}
            self.run()
        }
    }

    private static func signalSet(_ signals: [Int32]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for number in signals { sigaddset(&set, number) }
        return set
    }
}
