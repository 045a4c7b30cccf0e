#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization
import Platform
import JSON
import MCP

/// The hub's side of `hub.sock`: followers (other sessions' servers on the same state dir)
/// attach here and receive every event the hub accepts, as notification lines.
///
/// Threads: one accepts; each follower has a reader (its hello, then waiting for its end or a
/// malformed frame) and a writer. The event loop only appends to a follower's bounded queue,
/// so a follower that stops reading never slows the hub or the others: once its queue holds
/// `maxQueuedBytesPerFollower`, events for it are refused (`503 backlog`) until it reads
/// again, and one that fell past `cutOffBytesPerFollower` anyway is cut off (it re-attaches).
final class HubServer: SessionFanOut, @unchecked Sendable {
    static let socketName = "hub.sock"

    /// Where the hub of `directory` listens: `hub.sock` in the state dir, or, when that path is
    /// too long for a Unix socket (a state dir of 100 characters or so), a name made from the
    /// state dir's path in a private directory of this user's under /tmp. Hub and followers
    /// compute the same place from the same state dir.
    static func socketPath(for directory: StateDirectory) -> String {
        let natural = directory.path(of: socketName)
        guard natural.utf8.count > UnixSocket.maxPathBytes else { return natural }
        // The same directory however it is written (a trailing slash, through a link).
        let canonical = realpath(directory.path, nil).map { resolved in
            defer { free(resolved) }
            return String(cString: resolved)
        } ?? directory.path
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a, 64 bits
        for byte in canonical.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        let name = "hub-" + String(hash, radix: 16) + ".sock"
        let folder = UnixSocket.privateDirectory("/tmp/webhook-channel-\(getuid())") ?? directory.path
        return folder + "/" + name
    }
    /// What may wait for one follower before events for it are refused.
    static let maxQueuedBytesPerFollower = 8 << 20
    /// What the hub queues for all its followers together: with many stalled sessions the
    /// per-follower bound alone would let the hub's memory grow with their number (SPEC 9:
    /// under 64 MiB). Past it, events that would go to a follower with anything queued are refused.
    static let maxQueuedBytesAllFollowers = 16 << 20
    /// A safety net past that bound (what one loop pass can add is far less): cut off.
    static let cutOffBytesPerFollower = 4 * maxQueuedBytesPerFollower
    static let maxFrameBytes = 64 * 1024

    let own: SessionInfo
    private let socketPath: String
    /// `register` gets the oldest log generation the catch-up may read (nil: nothing missed).
    typealias CatchUp = @Sendable (_ after: String, _ inside: @escaping @Sendable (String) -> Bool,
                                   _ register: @escaping @Sendable (Int?) -> Void) -> FollowerCatchUp
    private let catchUp: CatchUp?
    private let directory: StateDirectory
    private let listenFD: Int32
    private let welcome: [UInt8]
    private let log: Logger
    private let onChange: @Sendable ([SessionInfo]) -> Void
    private let permissions: PermissionRelay
    private let links = Mutex<[FollowerLink]>([])
    /// After a take-over: the old hub's other followers, until they re-attached.
    private let reattachWait = Mutex<ReattachWait?>(nil)
    private let stopped = Atomic<Bool>(false)

    /// Listens on `hub.sock` in the state dir, replacing a stale one (the caller holds the
    /// port, so no other hub can be alive on it).
    /// `catchUp`: what a re-attaching follower missed (`ChannelState.catchUpForFollower`).
    init(directory: StateDirectory, own: SessionInfo, host: String, port: UInt16, permissions: PermissionRelay, log: Logger,
         catchUp: CatchUp? = nil, onChange: @escaping @Sendable ([SessionInfo]) -> Void) throws(SocketError)
    {
        self.catchUp = catchUp
        self.directory = directory
        self.own = own
        self.permissions = permissions
        self.log = log
        self.onChange = onChange
        socketPath = Self.socketPath(for: directory)
        listenFD = try UnixSocket.listening(at: socketPath)
        welcome = Array(JSONWriter.compactString([
            "type": "welcome", "hub_pid": .int(Int64(own.pid)), "host": .string(host), "port": .int(Int64(port)),
        ]).utf8)
    }

    func start() {
        DetachedThread.start(name: "hub-accept") { [self] in acceptLoop() }
    }

    /// Closes the socket and every follower link (they then take over the port). What the
    /// links still hold is written first, for at most `drainMilliseconds` in all: an event
    /// answered just before the hub exits still reaches every session.
    func stop(drainMilliseconds: Int = 300) {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        unlink(socketPath)
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
        let deadline = SystemClock().monotonicNanoseconds() + UInt64(drainMilliseconds) * 1_000_000
        for link in links.withLock({ $0 }) { link.drainThenCut(deadline: deadline) }
    }

    /// The hub's own session first, then the followers in the order they attached.
    var sessions: [SessionInfo] {
        [own] + links.withLock { $0.map(\.info) }
    }

    func share(_ event: ChannelEvent, pinnedTo route: String?, loggedIn generation: Int) -> (ownSession: Bool, line: [UInt8]?) {
        let current = links.withLock { $0 }
        guard !current.isEmpty else { return (true, nil) }
        let (targets, ownGetsIt) = targets(among: current, pinnedTo: route)
        guard !targets.isEmpty else { return (ownGetsIt, nil) }
        var line: [UInt8] = []
        event.writeNotification(into: &line)
        passShares.append(PassShare(links: targets, line: line, generation: generation))
        return (ownGetsIt, line)
    }

    /// An event shared in this loop pass, queued for its followers by `endOfPass`.
    private struct PassShare {
        let links: [FollowerLink]
        let line: [UInt8]
        let generation: Int
    }

    /// What `share` decided in this loop pass (loop thread only). Queued by `endOfPass`, which
    /// a commit that notifies its own session before the log's write calls only once the
    /// lines are in the log: a follower, whose tools read the hub's files, never hears of an
    /// event the log does not hold yet, even from a writer thread that was awake already.
    private var passShares: [PassShare] = []

    func hasRoom(pinnedTo route: String?) -> Bool {
        let current = links.withLock { $0 }
        guard !current.isEmpty else { return true }
        let targeted = targets(among: current, pinnedTo: route).links
        guard targeted.allSatisfy({ $0.queuedBytes < Self.maxQueuedBytesPerFollower }) else { return false }
        // Followers that keep up hold next to nothing: the total only counts against those
        // that are behind, so one stalled session cannot hold back the reading ones.
        let total = current.reduce(0) { $0 + $1.queuedBytes }
        return total < Self.maxQueuedBytesAllFollowers || targeted.allSatisfy { $0.queuedBytes < 64 << 10 }
    }

    func rotationHolder(loggedIn generation: Int) -> String? {
        let current = links.withLock { $0 }
        if let link = current.first(where: { link in link.oldestHeldGeneration.map { $0 <= generation } ?? false }) {
            return "follower pid \(link.info.pid) has not passed on events it was sent"
        }
        let attached = Set(current.map(\.info.pid))
        let now = SystemClock().monotonicNanoseconds()
        let waiting = reattachWait.withLock { wait -> Bool in
            guard var current = wait else { return false }
            let holds = current.holds(now: now, attached: attached) { pid in kill(pid, 0) == 0 || errno == EPERM }
            wait = holds ? current : nil
            return holds
        }
        return waiting ? "the previous hub's followers are still re-attaching" : nil
    }

    /// This hub took the port over: `listed` are the old hub's other followers (nil when it
    /// left no list). The log does not rotate until they re-attached (`ReattachWait`).
    func awaitReattach(listed: Set<Int32>?) {
        reattachWait.withLock { $0 = ReattachWait(listed: listed, now: SystemClock().monotonicNanoseconds()) }
    }

    func reachesOwnSession(pinnedTo route: String?) -> Bool {
        guard route != nil else { return true }
        return targets(among: links.withLock { $0 }, pinnedTo: route).own
    }

    /// The followers an event pinned to `route` goes to, and whether the hub's own session
    /// gets it: the sessions inside the project, or every session when none is (never nowhere).
    private func targets(among current: [FollowerLink], pinnedTo route: String?) -> (links: [FollowerLink], own: Bool) {
        guard let route else { return (current, true) }
        let inside = current.filter { $0.info.isInside(route) }
        let ownInside = own.isInside(route)
        if inside.isEmpty && !ownInside { return (current, true) }
        return (inside, ownInside)
    }

    func endOfPass() {
        if !passShares.isEmpty {
            for share in passShares {
                for link in share.links where !link.queue(share.line, loggedIn: share.generation) {
                    log.warning("follower pid \(link.info.pid) is not reading; cut it off (it re-attaches)")
                }
            }
            // Only when there was something: emptying the empty array "keeping its capacity"
            // allocates one, once a pass.
            passShares.removeAll(keepingCapacity: true)
        }
        for link in links.withLock({ $0 }) { link.wakeIfQueued() }
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .acquiring) {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            UnixSocket.disableSIGPIPE(fd)
            DetachedThread.start(name: "hub-follower") { [self] in serve(fd) }
        }
    }

    /// One follower, from its hello to its end.
    private func serve(_ fd: Int32) {
        guard let uid = UnixSocket.peerUserID(fd), uid == getuid() else {
            log.warning("refused a connection to \(Self.socketName) from another user (uid \(UnixSocket.peerUserID(fd).map(String.init) ?? "unknown"))")
            close(fd)
            return
        }
        UnixSocket.setReceiveTimeout(fd, seconds: 5)
        var reader = FrameReader(fd: fd, maxLine: Self.maxFrameBytes)
        guard case .line(let hello) = reader.next(), let value = try? JSONParser.parse(hello),
              value["type"]?.stringValue == "hello", let pid = value["pid"]?.intValue,
              let directory = value["directory"]?.stringValue
        else {
            log.warning("malformed hello on \(Self.socketName); closed that connection")
            close(fd)
            return
        }
        UnixSocket.setReceiveTimeout(fd, seconds: 0)
        let link = FollowerLink(fd: fd, info: SessionInfo(pid: Int32(truncatingIfNeeded: pid), directory: directory,
                                                          role: .follower),
                                reportsPassed: value["reports_passed"]?.boolValue == true)
        _ = link.send(welcome)
        // Registered: shared with from now on, counted in `sessions` and `server.json`.
        func attached() {
            if stopped.load(ordering: .acquiring) { link.cut() }
            log.info("follower attached: pid \(link.info.pid) in \(directory)")
            onChange(sessions)
        }
        // A follower that followed another hub says the last event it was passed: it gets what
        // this hub's log holds after that, ahead of what is shared with it from now on.
        // The catch-up goes out as it is read (at most `catchUpWindowBytes` ahead of the
        // writer), and what is shared meanwhile after it.
        if let after = value["after"]?.stringValue, let catchUp {
            let info = link.info
            link.beginCatchUp()
            link.startWriting()
            let missed = catchUp(after, { route in info.isInside(route) }) { [self] oldestGeneration in
                link.catchUpStarts(from: oldestGeneration)
                links.withLock { $0.append(link) }
            }
            attached()
            let count = missed.lines(directory: self.directory, rotatedAway: {
                log.warning("follower pid \(info.pid) was last passed an event the log no longer holds; "
                    + "it gets every logged event, and may have missed older ones rotated away")
            }) { chunk in link.sendCatchUp(chunk) }
            link.catchUpSent(events: count)
            link.endCatchUp()
            if count > 0 { log.info("follower pid \(link.info.pid) missed \(count) event(s) while it changed hubs; sent them") }
        } else {
            links.withLock { $0.append(link) }
            attached()
            link.startWriting()
        }
        // After hello a follower says how many events it passed on to its session (so the log
        // keeps what it has not), and registers its Claude Code's permission requests, so the
        // verdict (which arrives here) goes back to it. Anything not a JSON object ends the link.
        loop: while true {
            switch reader.next() {
            case .line(let frame):
                guard let value = try? JSONParser.parse(frame), value.objectValue != nil else {
                    log.warning("malformed frame from follower pid \(link.info.pid); closed that connection")
                    break loop
                }
                if value["type"]?.stringValue == "passed", let count = value["count"]?.intValue {
                    link.passedOn(Int(clamping: count))
                } else if value["type"]?.stringValue == "permission_request", let id = value["request_id"]?.stringValue {
                    permissions.remember(requestID: id, owner: ObjectIdentifier(link)) { [weak link] behavior in
                        _ = link?.send(ChannelNotifier.permissionLine(requestID: id, behavior: behavior.rawValue))
                    }
                }
            case .end, .tooLong:
                break loop
            }
        }
        link.finish()
        links.withLock { $0.removeAll { $0 === link } }
        permissions.forget(owner: ObjectIdentifier(link))
        log.info("follower detached: pid \(link.info.pid)")
        onChange(sessions)
    }
}
