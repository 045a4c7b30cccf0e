#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization
import Platform
import Socket
import HTTP
import MCP

/// Decides, and changes when it must, what this server is for its state dir:
/// - the **hub**: it bound the HTTP port, accepts webhooks, and shares each event with the
///   followers attached to `hub.sock`;
/// - a **follower**: the port is held by a hub of the same state dir; it receives the hub's
///   events over `hub.sock` as its own notifications, and takes the port over when the hub
///   goes away (the first follower to bind it becomes the hub, the others re-attach);
/// - **alone**: the port is held by something else; the MCP tools work, webhooks cannot
///   arrive, and it keeps trying quietly in case the port frees up.
///
/// Role changes run on a background thread of their own; binding runs on the event loop.
final class SessionCoordinator: @unchecked Sendable {
    enum Role: String, Sendable { case starting, hub, follower, alone }

    struct Status: Sendable {
        var role: Role
        /// `host:port` the hub listens on (this process's when hub).
        var address: String?
        var hubPID: Int32?
        /// Why this process does not listen, when it does not.
        var reason: String?
        var sessions: [SessionInfo]
    }

    /// Binds the HTTP server on the configured host and the given port.
    typealias Bind = @Sendable (_ port: UInt16) -> Result<HTTPServer, SocketError>

    private struct State {
        var role = Role.starting
        var server: HTTPServer?
        var hub: HubServer?
        var followed: HubFollower.Welcome?
        var reason: String?
        var shuttingDown = false
    }

    private let directory: StateDirectory
    private let host: String
    private let port: UInt16
    private let loop: EventLoop
    private let channel: ChannelState
    private let output: ProtocolOutput
    private let notifier: ChannelNotifier
    private let log: Logger
    /// Set once, before `begin` (it needs this coordinator to count sessions for `/health`).
    var bind: Bind = { _ in .failure(SocketError(call: "bind (not configured)", code: EINVAL)) }
    private let serverFile: ServerFile
    private let state = Mutex(State())

    init(directory: StateDirectory, host: String, port: UInt16, loop: EventLoop, channel: ChannelState,
         output: ProtocolOutput, notifier: ChannelNotifier, log: Logger)
    {
        self.directory = directory
        self.host = host
        self.port = port
        self.loop = loop
        self.channel = channel
        self.output = output
        self.notifier = notifier
        self.log = log
        serverFile = ServerFile(directory: directory)
    }

    /// A follower lists the sessions the hub wrote to `server.json` (read outside the lock).
    var status: Status {
        var status = state.withLock { state in
            let address: String?
            if let server = state.server {
                address = "\(server.address.hostForURL):\(server.address.port)"
            } else {
                address = state.followed.map { "\($0.host):\($0.port)" }
            }
            let own = SessionInfo.current(role: state.role == .hub ? .hub : state.role == .follower ? .follower : .alone)
            return Status(role: state.role, address: address,
                          hubPID: state.role == .hub ? getpid() : state.followed?.hubPID, reason: state.reason,
                          sessions: state.hub?.sessions ?? [own])
        }
        if status.role == .follower {
            let listed = serverFile.sessions()
            if !listed.isEmpty { status.sessions = listed }
        }
        return status
    }

    /// Connected sessions as the hub counts them (its own included); 1 when not the hub.
    var sessionCount: Int { state.withLock { $0.hub?.sessions.count ?? 1 } }

    /// At start-up: hub if the port is free, else follower of the hub holding it.
    func begin() {
        if settle(logging: .always) { return }
        // Said once already; the retries speak only when the reason changes.
        retryInBackground(quietThrough: 0)
    }

    /// When a failed attempt logs why webhooks cannot arrive.
    private enum FailureLogging {
        case always, ifChanged, never
    }

    /// One attempt at a role. True when this process is now hub or follower.
    private func settle(logging: FailureLogging) -> Bool {
        // One state dir is one endpoint: a hub already serving it is followed whatever port
        // this session was given (`WEBHOOK_PORT=0`, or another number, would bind a second
        // port, and two hubs would write one event log and take each other's `hub.sock`).
        // Taking over is decided by the bind instead: the old hub may still hold its socket.
        let takingOver = isTakingOver
        if !takingOver, follow() { return true }
        // A follower taking over binds the port its hub served, the endpoint senders know.
        let port = state.withLock { $0.followed?.port } ?? self.port
        // A follower taking the port over holds rotation from before its listener starts
        // (this job runs ahead of the bind's) until its hub is settled (`becomeHub`).
        if takingOver { loop.execute { [channel] in channel.assumeIsolated { $0.beginTakingOver() } } }
        switch bind(port) {
        case .success(let server):
            becomeHub(server)
            return true
        case .failure(let error):
            if takingOver { loop.execute { [channel] in channel.assumeIsolated { $0.becameHub(nil) } } }
            if error.code == EADDRINUSE, follow() { return true }
            let reason = ListenerStatus.notListening(host: host, port: port, error: error, directory: directory).problem
                ?? "the HTTP server could not start (\(error))"
            let changed = state.withLock { state -> Bool in
                defer { state.role = .alone; state.reason = reason }
                return state.reason != reason
            }
            if logging == .always || (logging == .ifChanged && changed) {
                log.error("HTTP server not started: \(reason); MCP tools keep working, webhooks cannot arrive here")
            }
            return false
        }
    }

    private func becomeHub(_ server: HTTPServer) {
        let host = server.address.hostForURL, port = server.address.port
        // Taking over from a hub that went away: its other followers are about to re-attach
        // and read what they missed from the log, which must not rotate away meanwhile.
        let tookOver = isTakingOver
        let listed = tookOver ? serverFile.sessions(evenIfGone: true).map { sessions in
            Set(sessions.filter { $0.role == .follower && $0.pid != getpid() }.map(\.pid))
        } : nil
        let own = SessionInfo.current(role: .hub)
        let file = serverFile
        let hub: HubServer?
        do {
            hub = try HubServer(directory: directory, own: own, host: host, port: port,
                                permissions: channel.permissionRelay, log: log,
                                catchUp: { [channel] after, inside, register in
                                    channel.catchUpForFollower(after: after, inside: inside, register: register)
                                }) { [log] sessions in
                file.write(host: host, port: port, sessions: sessions, log: log)
            }
        } catch {
            log.error("cannot serve \(HubServer.socketName) (\(error)); other sessions on this state dir cannot follow")
            hub = nil
        }
        let shuttingDown = state.withLock { state -> Bool in
            state.role = .hub
            state.server = server
            state.hub = hub
            state.followed = nil
            state.reason = nil
            return state.shuttingDown
        }
        if shuttingDown { return }
        channel.permissionRelay.registerWithHub(nil)
        serverFile.write(host: host, port: port, sessions: hub?.sessions ?? [own], log: log)
        if tookOver { hub?.awaitReattach(listed: listed) }
        loop.execute { [channel] in channel.assumeIsolated { $0.becameHub(hub) } }
        hub?.start()
    }

    /// This process was following a hub (or had followed one) and is now trying its port.
    private var isTakingOver: Bool {
        state.withLock { $0.role == .follower || $0.followed != nil }
    }

    private func follow() -> Bool {
        let own = SessionInfo.current(role: .follower)
        let after = channel.lastFollowedEventID.withLock { $0 }
        guard let follower = HubFollower(directory: directory, own: own, after: after, output: output, notifier: notifier) else {
            return false
        }
        let welcome = follower.welcome
        let wasFollowing = state.withLock { state -> Bool in
            defer {
                state.role = .follower
                state.followed = welcome
                state.reason = nil
            }
            return state.role == .follower || state.role == .alone
        }
        channel.permissionRelay.registerWithHub { [weak follower] id in follower?.registerPermissionRequest(id) }
        log.info("\(wasFollowing ? "re-attached, " : "")following the hub (pid \(welcome.hubPID)) on \(welcome.host):\(welcome.port); "
            + "its webhooks arrive in this session too")
        if port != 0 && welcome.port != port && !wasFollowing {
            log.warning("WEBHOOK_PORT \(port) is not used: the hub of this state dir listens on \(welcome.port); "
                + "for an endpoint of its own, give this session its own WEBHOOK_STATE_DIR")
        }
        follower.run(onEvent: { [channel] id in channel.lastFollowedEventID.withLock { $0 = id } }) { [self] in
            guard !state.withLock({ $0.shuttingDown }) else { return }
            log.info("the hub went away; taking over its port or following the next hub")
            // Another follower may bind the port a moment before it serves hub.sock: failing
            // then is the hand-over, not a fault, so nothing is logged unless it lasts.
            retryInBackground(quietThrough: Self.handOverAttempts)
        }
        return true
    }

    /// Attempts 50 ms apart: the first 5 s, in which a hub hand-over completes.
    static let handOverAttempts = 100

    /// Tries to become hub or follower: every 50 ms for the first 5 s (a hub hand-over),
    /// then every 2 s (a port held by another program may free up). The first
    /// `quietThrough` failed attempts log nothing; the one after says why webhooks cannot
    /// arrive (unless that was said before this began), later ones only when the reason changes.
    private func retryInBackground(quietThrough: Int) {
        DetachedThread.start(name: "session-coordinator") { [self] in
            var attempt = 0
            while !state.withLock({ $0.shuttingDown }) {
                let logging: FailureLogging =
                    attempt < quietThrough ? .never : attempt == quietThrough && quietThrough > 0 ? .always : .ifChanged
                if settle(logging: logging) { return }
                attempt += 1
                usleep(attempt < Self.handOverAttempts ? 50_000 : 2_000_000)
            }
        }
    }

    /// At exit, first step: stop accepting webhooks and forget `server.json`.
    /// Runs once: at the end of input and again on the exit path.
    func stopServing() {
        let server = state.withLock { state -> HTTPServer? in
            guard !state.shuttingDown else { return nil }
            state.shuttingDown = true
            return state.server
        }
        if let server {
            loop.execute { server.stop() }
            serverFile.remove()
        }
    }

    /// At exit, after the loop has written its last events: let the followers go (one of
    /// them takes the port over).
    func releaseFollowers() {
        state.withLock { $0.hub }?.stop()
    }
}
