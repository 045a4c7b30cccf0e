#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Socket
import HTTP

/// The serving process's settings, from the environment (README "Configuration").
public struct ServerConfig: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 8788
    public var stateDirectory: String
    public var maxBodyBytes = HTTPLimits.standard.maxBodyBytes
    public var allowPrivateCallbacks = false
    /// `WEBHOOK_FSYNC=1`: an event is acknowledged only after `fdatasync` of the event log
    /// (power-loss durability); otherwise once `write` returned (process-crash durability).
    public var syncsEventLog = false
    public var maxConnections = HTTPServer.defaultMaxConnections
    /// Set when the open-file limit brought `maxConnections` down (logged once listening).
    public var connectionCapNote: String?
    /// Seconds a client has to send a complete request head (slowloris defence).
    public var headerTimeout: Double = 10
    /// Seconds an idle keep-alive connection stays open.
    public var idleTimeout: Double = 30
    /// Waits before reply retries; shortened in tests.
    public var retryDelays = ReplySender.retryDelays
    /// Seconds an HTTP request's `sources.json` change waits for another process's lock on
    /// the state dir before answering `503 state_busy`; shortened (or lengthened) by tests.
    public var stateLockWait = ChannelState.defaultLockWait
    /// `WEBHOOK_EVENT_LOOP`: epoll (Linux's default) or the portable poll(2).
    public var eventLoop = EventLoopBackend.native
    /// `WEBHOOK_BUSY_POLL_US`: microseconds the event loop keeps looking for work without
    /// sleeping after a pass that found some (`EventLoop.waitForReadiness`); 0 turns it off.
    public var busyPollMicroseconds: UInt64 = ServerConfig.defaultBusyPollMicroseconds
    public static let defaultBusyPollMicroseconds: UInt64 = 50

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// The state dir for the server and every CLI command: `WEBHOOK_STATE_DIR`, else
    /// `channels/webhook` inside Claude Code's config dir (`CLAUDE_CONFIG_DIR`, else `~/.claude`).
    public static func defaultStateDirectory(environment: [String: String]) -> String {
        if let dir = environment["WEBHOOK_STATE_DIR"], !dir.isEmpty { return dir }
        if let config = environment["CLAUDE_CONFIG_DIR"], !config.isEmpty {
            return (config.hasSuffix("/") ? String(config.dropLast()) : config) + "/channels/webhook"
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? FileManager.default.homeDirectoryForCurrentUser.path
        return home + "/.claude/channels/webhook"
    }

    /// Bad values are refused with a message naming the variable, never replaced by a default.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(Invalid) -> ServerConfig {
        var config = ServerConfig(stateDirectory: defaultStateDirectory(environment: environment))
        let (host, port) = try address(environment)
        config.host = host
        config.port = port
        if let text = environment["WEBHOOK_MAX_BODY_BYTES"] {
            guard let value = wholeNumber(text, in: 1024...(64 << 20)) else {
                throw Invalid(description: "WEBHOOK_MAX_BODY_BYTES must be a number from 1024 to 67108864")
            }
            config.maxBodyBytes = value
        }
        if let text = environment["WEBHOOK_MAX_CONNECTIONS"] {
            guard let value = wholeNumber(text, in: 1...65536) else {
                throw Invalid(description: "WEBHOOK_MAX_CONNECTIONS must be a number from 1 to 65536")
            }
            config.maxConnections = value
        }
        for (name, keyPath) in [("WEBHOOK_HEADER_TIMEOUT", \ServerConfig.headerTimeout), ("WEBHOOK_IDLE_TIMEOUT", \ServerConfig.idleTimeout)] {
            guard let text = environment[name] else { continue }
            guard let value = Double(text.trimmingWhitespace()), value > 0, value <= 3600 else {
                throw Invalid(description: "\(name) must be a number of seconds from 0 to 3600")
            }
            config[keyPath: keyPath] = value
        }
        if let text = environment["WEBHOOK_RETRY_DELAYS"] {
            let values = text.split(separator: ",").map { Double($0.trimmingWhitespace()) }
            guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0! >= 0 && $0! <= 3600 }) else {
                throw Invalid(description: "WEBHOOK_RETRY_DELAYS must be a comma-separated list of seconds, e.g. 1,5,30")
            }
            config.retryDelays = values.map { $0! }
        }
        if let text = environment["WEBHOOK_LOCK_WAIT"] {
            guard let value = Double(text.trimmingWhitespace()), value >= 0, value <= 3600 else {
                throw Invalid(description: "WEBHOOK_LOCK_WAIT must be a number of seconds from 0 to 3600")
            }
            config.stateLockWait = value
        }
        config.syncsEventLog = try switchSetting("WEBHOOK_FSYNC", environment) ?? false
        if let text = environment["WEBHOOK_EVENT_LOOP"] {
            let names = EventLoopBackend.allCases.map(\.rawValue).joined(separator: " or ")
            guard let backend = EventLoopBackend(rawValue: text.trimmingWhitespace().lowercased()) else {
                throw Invalid(description: "WEBHOOK_EVENT_LOOP must be \(names) (got \"\(text.prefix(40))\")")
            }
            guard backend.isAvailable else {
                throw Invalid(description: "WEBHOOK_EVENT_LOOP=\(backend) is not available on this platform; use \(EventLoopBackend.native)")
            }
            config.eventLoop = backend
        }
        if let text = environment["WEBHOOK_BUSY_POLL_US"] {
            guard let value = wholeNumber(text, in: 0...1000).map(UInt64.init) else {
                throw Invalid(description: "WEBHOOK_BUSY_POLL_US must be a number of microseconds from 0 to 1000 (got \"\(text.prefix(40))\")")
            }
            config.busyPollMicroseconds = value
        }
        config.allowPrivateCallbacks = try switchSetting("WEBHOOK_ALLOW_PRIVATE_CALLBACKS", environment) ?? false
        return config
    }

    /// `WEBHOOK_HOST` and `WEBHOOK_PORT` (defaults 127.0.0.1 and 8788), checked: the server
    /// binds them, and the CLI prints them as the webhook URL when no server runs.
    public static func address(_ environment: [String: String]) throws(Invalid) -> (host: String, port: UInt16) {
        var address = (host: "127.0.0.1", port: UInt16(8788))
        if let text = environment["WEBHOOK_PORT"] {
            guard let port = wholeNumber(text, in: 0...65535) else {
                throw Invalid(description: "WEBHOOK_PORT must be a number from 0 to 65535 (got \"\(text.prefix(40))\")")
            }
            address.port = UInt16(port)
        }
        if let host = environment["WEBHOOK_HOST"] {
            guard !host.isEmpty, SocketAddress.resolve(host: host, port: 0) != nil else {
                throw Invalid(description: "WEBHOOK_HOST \"\(host.prefix(100))\" cannot be resolved to an address")
            }
            address.host = host
        }
        return address
    }

    /// A whole-number setting: ASCII digits, spaces around allowed, no sign (`WEBHOOK_PORT`,
    /// `WEBHOOK_MAX_CONNECTIONS`, … all read the same way); nil for anything else or past `range`.
    static func wholeNumber(_ text: String, in range: ClosedRange<Int>) -> Int? {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty, trimmed.utf8.count <= 18, trimmed.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }),
              let value = Int(trimmed), range.contains(value) else { return nil }
        return value
    }

    /// Words an on/off setting takes, in any case; an empty value is off (`WEBHOOK_FSYNC=`).
    public static let onWords: Set<String> = ["1", "true", "yes", "on"]
    public static let offWords: Set<String> = ["0", "false", "no", "off", ""]

    /// An on/off setting, nil when unset. Another word is refused: `WEBHOOK_FSYNC=maybe` must not
    /// silently mean off, which would acknowledge events before they are on disk.
    static func switchSetting(_ name: String, _ environment: [String: String]) throws(Invalid) -> Bool? {
        guard let text = environment[name] else { return nil }
        let word = text.trimmingWhitespace().lowercased()
        if onWords.contains(word) { return true }
        if offWords.contains(word) { return false }
        throw Invalid(description: "\(name) must be 1, true, yes or on, or 0, false, no, off or empty (got \"\(text.prefix(40))\")")
    }

    /// `host` as the authority of a URL: an IPv6 literal in brackets (RFC 3986 3.2.2), its zone's
    /// `%` written `%25` (RFC 6874); a name or IPv4 address as it is.
    public static func urlHost(_ host: String) -> String {
        guard host.contains(":"), !host.hasPrefix("[") else { return host }
        return "[" + host.replacing("%", with: "%25") + "]"
    }

    public var bindsLoopback: Bool {
        SocketAddress.resolve(host: host, port: 0)?.isLoopback ?? false
    }
}
