import Foundation
import Testing
import Glibc

/// Building blocks for the SPEC 9 tests (what a 200 means): senders that record every
/// acknowledged event id, the event log as the operator CLI lists it, a restart after
/// `kill -9`, the server's resident memory.
enum Durability {
    /// One signed seed-style `POST /webhook` (v1 signature) as exact bytes, keep-alive.
    static func webhookRequest(
        _ http: RawHTTPClient, _ credentials: SourceCredentials, body: Data,
        extraHeaders: [(String, String)] = []
    ) -> Data {
        let headers = [("Content-Type", "application/json")]
            + RawHTTPClient.webhookHeaders(credentials, body: body) + extraHeaders
        return http.requestBytes("POST", "/webhook", headers: headers, body: body, keepAlive: true)
    }

    /// A JSON body that is unique per (`tag`, `index`), padded to about `padding` bytes.
    static func body(tag: String, index: Int, padding: Int = 0) -> Data {
        Data(#"{"event":"load","tag":"\#(tag)","n":\#(index),"pad":"\#(String(repeating: "p", count: padding))"}"#.utf8)
    }

    /// Event ids in the state dir's log, oldest first, as `webhook-channel events --json`
    /// lists them (the CLI reads `events.log.1` and `events.log` itself; no server needed).
    static func loggedEventIDs(_ dir: TempStateDir) async throws -> [String] {
        let run = try await runCLI(["events", "--json", "--limit", "1000000"], stateDir: dir)
        guard run.exitCode == 0 else { throw HarnessError("events --json failed: \(run)") }
        let events = try ProviderFixtures.list(from: run.stdout, key: "events")
        let ids = events.compactMap { $0["event_id"]?.stringValue }
        guard ids.count == events.count else { throw HarnessError("an event without event_id: \(run.stdout.prefix(800))") }
        return ids.reversed()
    }

    /// After a `kill -9` the dead server's `server.json` is still there; a new server on the
    /// same dir must not be mistaken for it (port discovery reads that file too).
    static func restart(afterKilling server: ServerProcess, holdStdout: Bool = false,
                        environment: [String: String] = [:]) async throws -> ServerProcess {
        server.stop()
        try? FileManager.default.removeItem(at: server.stateDir.serverFile)
        return try await ServerProcess.start(stateDir: server.stateDir, environment: environment, holdStdout: holdStdout)
    }

    /// `VmRSS` of a process in bytes, from `/proc/<pid>/status`.
    static func residentBytes(of pid: Int32) throws -> Int {
        try statusBytes("VmRSS", of: pid)
    }

    /// `VmHWM`, the most a process has held resident so far, in bytes.
    static func peakResidentBytes(of pid: Int32) throws -> Int {
        try statusBytes("VmHWM", of: pid)
    }

    /// Claude Code goes away after `initializeWithoutReading`: our end of the server's stdout
    /// is closed, unread, once the `initialize` answer is in the pipe. Closed before, that
    /// answer would be the write that finds the reader gone, and the server would end at once.
    static func closeStdoutOnceInitializeIsAnswered(_ server: ServerProcess) async throws {
        _ = try await poll("the initialize answer in the unread pipe") { server.child.heldStdoutBytes() > 0 ? true : nil }
        server.child.closeHeldStdout()
    }

    /// `RssAnon`: resident heap and stacks, without the binary's own pages.
    static func anonymousResidentBytes(of pid: Int32) throws -> Int {
        try statusBytes("RssAnon", of: pid)
    }

    private static func statusBytes(_ field: String, of pid: Int32) throws -> Int {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { throw HarnessError("no \(field) in /proc/\(pid)/status:\n\(text)") }
        return kib * 1024
    }

    /// After a stall: every acknowledged event is notified once, in acknowledgement order, and
    /// nothing more comes (reads exactly that many channel events, then waits for quiet).
    static func expectNotifiedOnceInOrder(_ acknowledged: [String], by mcp: MCPTestClient,
                                          sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var delivered: [String] = []
        for _ in acknowledged {
            let event = try await mcp.channelEvent()
            delivered.append(event["meta"]?["event_id"]?.stringValue ?? "(none)")
        }
        #expect(delivered == acknowledged,
                "first difference at \(delivered.indices.first { delivered[$0] != acknowledged[$0] } ?? -1)",
                sourceLocation: sourceLocation)
        #expect(try await mcp.channelEventsUntilQuiet().isEmpty, "more notifications than acknowledged events",
                sourceLocation: sourceLocation)
    }

    /// A session held back by `initializeWithoutReading` reads again: its `initialize` answer
    /// comes first, then every acknowledged event once, in order (`expectNotifiedOnceInOrder`).
    static func resumeAndExpectNotifiedOnceInOrder(_ acknowledged: [String], on server: ServerProcess,
                                                   sourceLocation: SourceLocation = #_sourceLocation) async throws {
        server.child.resumeStdout()
        let mcp = MCPTestClient(server)
        _ = try await mcp.response(to: "stalled-initialize")
        try await expectNotifiedOnceInOrder(acknowledged, by: mcp, sourceLocation: sourceLocation)
    }

    /// `initialize` and `notifications/initialized` without waiting for the answer (a client
    /// whose stdout is not read could not see it), then waits (up to 30 s, not a number of
    /// tries: each try's time depends on the machine's load) until `/health` says the
    /// session is connected.
    static func initializeWithoutReading(_ server: ServerProcess) async throws {
        let initialize: JSON = [
            "jsonrpc": "2.0", "id": "stalled-initialize", "method": "initialize",
            "params": ["protocolVersion": "2025-06-18", "capabilities": [:],
                       "clientInfo": ["name": "webhook-e2e-stalled", "version": "1.0.0"]],
        ]
        server.writeLine(initialize.encodedString)
        server.writeLine(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        let http = RawHTTPClient(port: server.port)
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while ContinuousClock.now < deadline {
            let health = try await http.get("/health")
            if try health.json()["mcp"] == "connected" { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw HarnessError("/health never said mcp connected; stderr:\n\(server.stderr.tail())")
    }
}

/// Every event id a set of concurrent senders got a `200 {"received":true,"event_id":…}` for,
/// in acknowledgement order, plus every other answer they saw.
final class Acknowledgements: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String] = []
    private var others: [RawHTTPResponse] = []
    private var failures: [String] = []

    /// Records one answer; returns whether it acknowledged an event, and how many events
    /// have been acknowledged so far.
    @discardableResult
    func record(_ response: RawHTTPResponse) -> (acknowledged: Bool, count: Int) {
        lock.withLock {
            if response.status == 200, let json = try? response.json(), json["received"] == true,
               json["duplicate"] == nil, let id = json["event_id"]?.stringValue
            {
                ids.append(id)
                return (true, ids.count)
            }
            others.append(response)
            return (false, ids.count)
        }
    }

    func recordFailure(_ text: String) { lock.withLock { failures.append(text) } }

    private var handedOut = 0
    private var stopped = false

    /// The next request index while fewer than `limit` were handed out and nobody stopped.
    func claim(limit: Int) -> Int? {
        lock.withLock {
            guard !stopped, handedOut < limit else { return nil }
            defer { handedOut += 1 }
            return handedOut
        }
    }

    func stop() { lock.withLock { stopped = true } }

    /// Sends the requests `request(i)` for the indices `claim(limit:)` hands out, one at a
    /// time on one keep-alive connection to `127.0.0.1:port`, until no index is left, the
    /// connection fails (a killed server), `deadline` passes, or an answer is not a 200 (then
    /// every sender stops). `afterAcknowledgement` gets the running count. Blocking: run it
    /// with `offloaded`.
    func sendLoop(port: Int, limit: Int, deadline: Date, request: (Int) -> Data,
                  afterAcknowledgement: (Int) -> Void = { _ in }) {
        let connection: HTTPConnection
        do {
            connection = try HTTPConnection.openBlocking(port: port)
        } catch {
            recordFailure("connect: \(error)")
            return
        }
        defer { connection.close() }
        while Date() < deadline, let index = claim(limit: limit) {
            do {
                // Bounds for a hung server only: a killed one fails at once.
                try connection.sendBlocking(request(index), timeout: .seconds(30))
                let response = try connection.readResponseBlocking(timeout: .seconds(30))
                let (accepted, count) = record(response)
                guard accepted else {
                    stop()
                    return
                }
                afterAcknowledgement(count)
            } catch {
                recordFailure("request \(index): \(error)")
                return
            }
        }
    }

    var acknowledged: [String] { lock.withLock { ids } }
    var otherAnswers: [RawHTTPResponse] { lock.withLock { others } }
    var connectionFailures: [String] { lock.withLock { failures } }
}

extension HTTPConnection {
    /// A blocking connect to `127.0.0.1:port` (for senders already off the cooperative pool).
    static func openBlocking(port: Int) throws -> HTTPConnection {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket() failed: \(String(cString: strerror(errno)))") }
        let connection = HTTPConnection(fd: fd)
        try connectIPv4(fd, host: "127.0.0.1", port: port)
        return connection
    }

    /// Connects to `127.0.0.1:port` from a chosen loopback source address (e.g. `127.0.0.2`),
    /// so the server sees another peer on the same machine; with `first`, sends it in the
    /// same blocking step (as `open(port:sending:)` does, for the same reason).
    static func open(from sourceAddress: String, toPort port: Int, sending first: Data? = nil) async throws -> HTTPConnection {
        try await offloaded {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw HarnessError("socket() failed: \(String(cString: strerror(errno)))") }
            let connection = HTTPConnection(fd: fd)
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_port = 0
            guard inet_pton(AF_INET, sourceAddress, &local.sin_addr) == 1 else {
                throw HarnessError("not an IPv4 address: \(sourceAddress)")
            }
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else { throw HarnessError("bind to \(sourceAddress) failed: \(String(cString: strerror(errno)))") }
            try connectIPv4(fd, host: "127.0.0.1", port: port)
            if let first { try connection.sendBlocking(first, timeout: defaultTimeout) }
            return connection
        }
    }
}
