#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import JSON
import MCP

/// One Claude Code session served through a state dir: the hub's own, or a follower's.
public struct SessionInfo: Sendable, Equatable {
    /// `alone`: neither hub nor follower (the port is held by another program, or the hub
    /// is being replaced): the session has its tools but receives no webhooks.
    public enum Role: String, Sendable { case hub, follower, alone }

    public var pid: Int32
    /// The project the session runs in (`CLAUDE_PROJECT_DIR`, else the working directory).
    public var directory: String
    public var role: Role

    /// This process, as the session it serves.
    public static func current(role: Role) -> SessionInfo {
        let environment = ProcessInfo.processInfo.environment
        let directory = environment["CLAUDE_PROJECT_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.currentDirectoryPath
        return SessionInfo(pid: getpid(), directory: resolvingSymlinks(directory), role: role)
    }

    /// The path with its symbolic links resolved (as `realpath`), or as given when it does not
    /// exist. Sessions and routes are both stored resolved, so a project opened through a
    /// link matches a route written with the real path, and the other way round.
    static func resolvingSymlinks(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether a source pinned to `route` (`webhook-channel route`) is for this session: its
    /// directory is the route's or inside it. Compared by path components, so `/a/bc` is not
    /// inside `/a/b`.
    public func isInside(_ route: String) -> Bool {
        let base = Self.components(route)
        let own = Self.components(directory)
        return own.count >= base.count && Array(own.prefix(base.count)) == base
    }

    private static func components(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
    }

    var json: JSONValue {
        ["pid": .int(Int64(pid)), "directory": .string(directory), "role": .string(role.rawValue)]
    }

    init(pid: Int32, directory: String, role: Role) {
        self.pid = pid
        self.directory = directory
        self.role = role
    }

    init?(json: JSONValue) {
        guard let pid = json["pid"]?.intValue, let directory = json["directory"]?.stringValue,
              let role = json["role"]?.stringValue.flatMap(Role.init(rawValue:)) else { return nil }
        self.init(pid: Int32(truncatingIfNeeded: pid), directory: directory, role: role)
    }
}

/// Hands accepted events to the other sessions (the hub's followers).
public protocol SessionFanOut: AnyObject, Sendable {
    /// Shares the event with the followers it is for (queued for them by `endOfPass`). Says
    /// whether this process's own session gets it too — a source pinned to a project goes
    /// only to the sessions in that project, and to every session when none is: never
    /// nowhere — and gives the notification line when it had to encode one (so the own
    /// session does not encode it again).
    /// `loggedIn`: the event log generation its line went into.
    func share(_ event: ChannelEvent, pinnedTo route: String?, loggedIn generation: Int) -> (ownSession: Bool, line: [UInt8]?)
    /// Who keeps the log from rotating away `generation` and older: a follower that was sent
    /// an event logged there and has not passed it on yet (`FollowerHold`), or followers of a
    /// hub that went away still re-attaching (`ReattachWait`). Nil when nobody.
    func rotationHolder(loggedIn generation: Int) -> String?
    /// Queues everything shared in this loop pass for its followers and wakes each follower's
    /// writer once.
    func endOfPass()
    /// Whether every follower an event pinned to `route` would go to can take it: a follower
    /// whose session stopped reading holds back its end of `hub.sock`, its queue here fills,
    /// and the hub then answers `503 backlog` as for its own session (SPEC 9).
    func hasRoom(pinnedTo route: String?) -> Bool
    /// Whether this process's own session is among those an event pinned to `route` goes to
    /// now; when it is not, its own backlog has no say in taking the event.
    func reachesOwnSession(pinnedTo route: String?) -> Bool
}
