import Foundation
import Synchronization

/// `webhook-channel` with no arguments: MCP on stdio and the HTTP server, in one process.
enum ServeCommand {
    static let version = "0.1.0"

    static func run() -> Never {
        // Before anything can print: descriptor 1 becomes stderr, protocol lines go elsewhere.
        // One background thread writes both protocol lines and event-log lines.
        let writer = SerialWorker(name: "writer")
        let output = ProtocolOutput.takeOverStandardOutput(worker: writer)
        signal(SIGPIPE, SIG_IGN)
        let log = Logger()

        let config: ServerConfig
        do { config = try ServerConfig.fromEnvironment() } catch {
            log.error(error.description)
            exit(2)
        }

        let directory = StateDirectory(path: config.stateDirectory)
        do { try directory.ensureExists() } catch {
            log.error("state directory \(config.stateDirectory): \(error)")
        }
        let loop: EventLoop
        do { loop = try EventLoop(backend: config.eventLoop) } catch {
            log.error("cannot start the event loop: \(error)")
            exit(1)
        }
        loop.start()

        let clock = SystemClock()
        // Webhooks are delivered on the loop thread; the writer is woken once per loop pass.
        let notifier = ChannelNotifier(output: output, wakesWriterLater: true)
        loop.addEndOfPassAction { output.wakeWriterIfQueued() }
        let state = ChannelState(loop: loop, store: SourcesStore(directory: directory, log: log), clock: clock,
                                 notifier: notifier, writer: writer, log: log)
        let policy = CallbackURLPolicy(allowPrivate: config.allowPrivateCallbacks)
        let replies = ReplySender(policy: policy, clock: clock, log: log, delays: config.retryDelays)

        let server = startHTTP(config: config, loop: loop, state: state, policy: policy, log: log)
        let serverFile = ServerFile(directory: directory)
        if let server {
            serverFile.write(host: server.address.hostForURL, port: server.address.port, log: log)
        }

        let shutdown = Shutdown {
            if let server { loop.execute { server.stop() } }
            serverFile.remove()
            loop.stop(timeoutMilliseconds: 150)
            state.finishEventLog()
            output.flush(timeoutMilliseconds: 150)
            exit(0)
        }
        shutdown.onSignals([SIGTERM, SIGINT])

        let mcp = MCPServer(name: "webhook", version: version, instructions: Instructions.text,
                            tools: WebhookTools.all(state: state, replies: replies), notifier: notifier, log: log)
        let session = JSONRPCSession(output: output, handler: mcp, log: log)
        let lines = LineReader(fd: STDIN_FILENO).start()
        Task.detached {
            await session.run(lines)
            log.info("stdin closed; exiting")
            shutdown.run()
        }
        dispatchMain()
    }

    /// Binds on the loop thread. A taken port is logged and the MCP side keeps running.
    private static func startHTTP(config: ServerConfig, loop: EventLoop, state: ChannelState, policy: CallbackURLPolicy,
                                  log: Logger) -> HTTPServer?
    {
        let loopback = config.bindsLoopback
        if !loopback {
            log.warning("listening on non-loopback address \(config.host): anyone who can reach it can POST /pair; "
                + "put it behind a tunnel or firewall you control")
        }
        let limits = HTTPLimits(maxBodyBytes: config.maxBodyBytes)
        let timeouts = HTTPServerConnection.Timeouts(
            headNanoseconds: UInt64(config.headerTimeout * 1e9), requestNanoseconds: UInt64(max(config.headerTimeout, 30) * 1e9),
            idleNanoseconds: UInt64(config.idleTimeout * 1e9))
        let controlToken = ControlToken.create(directory: StateDirectory(path: config.stateDirectory), log: log)
        let routes = WebhookRoutes(state: state, callbackPolicy: policy, enforceLoopbackHost: loopback,
                                   controlToken: controlToken, log: log)
        let result = Mutex<HTTPServer?>(nil)
        let done = ConditionSignal()
        loop.execute {
            state.assumeIsolated { state in
                state.restoreFromEventLog()
                state.watchStateDirectory()
            }
            do {
                let server = try HTTPServer(host: config.host, port: config.port, loop: loop, limits: limits, timeouts: timeouts,
                                            maxConnections: config.maxConnections, routes: routes)
                try server.start()
                result.withLock { $0 = server }
                log.info("listening on \(server.address)")
            } catch {
                log.error("HTTP server not started (\(error)); MCP tools keep working, webhooks cannot arrive")
            }
            done.signal()
        }
        done.wait(timeoutMilliseconds: 5000)
        return result.withLock { $0 }
    }
}

/// `server.json` in the state dir tells the CLI and tests where the running server listens.
struct ServerFile: Sendable {
    static let name = "server.json"
    let directory: StateDirectory

    func write(host: String, port: UInt16, log: Logger) {
        let json: JSONValue = ["pid": .int(Int64(getpid())), "host": .string(host), "port": .int(Int64(port))]
        do { try directory.writeFileAtomically(ServerFile.name, JSONWriter.pretty(json)) } catch {
            log.error("cannot write \(ServerFile.name): \(error)")
        }
    }

    /// Removes the file only if it still names this process (another server may have started).
    func remove() {
        guard let bytes = try? directory.readFile(ServerFile.name), let value = try? JSONParser.parse(bytes),
              value["pid"]?.intValue == Int64(getpid()) else { return }
        unlink(directory.path(of: ServerFile.name))
    }

    /// The running server's address, if its file names a live process.
    func read() -> (host: String, port: UInt16)? {
        guard let bytes = try? directory.readFile(ServerFile.name), let value = try? JSONParser.parse(bytes),
              let pid = value["pid"]?.intValue, let port = value["port"]?.intValue, let host = value["host"]?.stringValue,
              kill(pid_t(pid), 0) == 0 || errno == EPERM, (1...65535).contains(port) else { return nil }
        return (host, UInt16(port))
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

/// Runs the exit path once, from a signal or from the end of input. `sources` is written once,
/// at start-up on the main thread, before any signal can arrive.
final class Shutdown: @unchecked Sendable {
    private let once = Mutex(false)
    private let action: @Sendable () -> Void
    private var sources: [any DispatchSourceSignal] = []

    init(_ action: @escaping @Sendable () -> Void) { self.action = action }

    func run() {
        let first = once.withLock { ran in
            defer { ran = true }
            return !ran
        }
        if first { action() }
    }

    func onSignals(_ signals: [Int32]) {
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in self.run() }
            source.resume()
            sources.append(source)
        }
    }
}
