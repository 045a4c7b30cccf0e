import Foundation

/// Speaks newline-delimited JSON-RPC 2.0 to a `ServerProcess` over its stdin/stdout, the way
/// Claude Code does. Every stdout line is parsed once and kept: messages not yet claimed by a
/// wait stay queued (so a response and a channel notification can arrive in any order), and
/// every line that is not a JSON-RPC 2.0 object is recorded in `nonProtocolLines`.
final class MCPTestClient: @unchecked Sendable {
    static let newestProtocolVersion = "2025-11-25"
    static let channelMethod = "notifications/claude/channel"

    let server: ServerProcess
    private let lock = NSLock()
    private var cursor = 0
    private var queued: [JSON] = []
    private var everything: [JSON] = []
    private var strayLines: [String] = []
    private var nextID = 1

    init(_ server: ServerProcess) {
        self.server = server
    }

    // MARK: Sending

    /// One raw line, exactly as given, plus the `\n` that ends it.
    func sendLine(_ text: String) {
        server.writeLine(text)
    }

    func send(_ message: JSON) {
        sendLine(message.encodedString)
    }

    func notify(_ method: String, params: JSON? = nil) {
        var message: [String: JSON] = ["jsonrpc": "2.0", "method": .string(method)]
        if let params { message["params"] = params }
        send(.object(message))
    }

    /// A fresh numeric request id.
    func makeID() -> JSON {
        lock.withLock {
            defer { nextID += 1 }
            return .number(Double(nextID))
        }
    }

    /// Sends a request and returns the whole response message (`result` or `error`).
    @discardableResult
    func request(_ method: String, params: JSON? = nil, timeout: Duration = defaultTimeout) async throws -> JSON {
        let id = makeID()
        var message: [String: JSON] = ["jsonrpc": "2.0", "id": id, "method": .string(method)]
        if let params { message["params"] = params }
        send(.object(message))
        return try await response(to: id, timeout: timeout)
    }

    /// Sends a request and returns its `result`, failing clearly on an error response.
    func result(_ method: String, params: JSON? = nil, timeout: Duration = defaultTimeout) async throws -> JSON {
        let response = try await request(method, params: params, timeout: timeout)
        guard let result = response["result"] else {
            throw HarnessError("\(method) answered without a result: \(response)")
        }
        return result
    }

    /// `initialize` with the given protocol version; returns the whole response.
    func initialize(protocolVersion: String = "2025-06-18") async throws -> JSON {
        try await request("initialize", params: [
            "protocolVersion": .string(protocolVersion),
            "capabilities": [:],
            "clientInfo": ["name": "webhook-e2e", "version": "1.0.0"],
        ])
    }

    /// `initialize` then `notifications/initialized`, as Claude Code opens a session.
    @discardableResult
    func handshake(protocolVersion: String = "2025-06-18") async throws -> JSON {
        let response = try await initialize(protocolVersion: protocolVersion)
        guard let result = response["result"] else {
            throw HarnessError("initialize failed: \(response)")
        }
        notify("notifications/initialized")
        return result
    }

    /// `tools/call`; returns the whole response (a `result` with `content`/`isError`, or an `error`).
    func callTool(_ name: String, arguments: JSON?, timeout: Duration = defaultTimeout) async throws -> JSON {
        var params: [String: JSON] = ["name": .string(name)]
        if let arguments { params["arguments"] = arguments }
        return try await request("tools/call", params: .object(params), timeout: timeout)
    }

    // MARK: Receiving

    /// Takes the first queued message satisfying `predicate`, waiting (bounded) for it.
    func message(
        _ what: String,
        timeout: Duration = defaultTimeout,
        where predicate: @escaping (JSON) -> Bool
    ) async throws -> JSON {
        try await poll(timeout: timeout, "\(what) on stdout; \(diagnostics())") {
            ingest()
            return lock.withLock {
                guard let index = queued.firstIndex(where: predicate) else { return nil }
                return queued.remove(at: index)
            }
        }
    }

    /// The next message of any kind.
    func nextMessage(timeout: Duration = defaultTimeout) async throws -> JSON {
        try await message("any message", timeout: timeout) { _ in true }
    }

    /// The response (result or error) carrying `id`.
    func response(to id: JSON, timeout: Duration = defaultTimeout) async throws -> JSON {
        try await message("a response with id \(id)", timeout: timeout) { message in
            message["method"] == nil && message["id"] == id
                && (message["result"] != nil || message["error"] != nil)
        }
    }

    /// The next error response whose `id` is present and `null` (the answer to a line that
    /// could not be read as a request).
    func errorWithNullID(timeout: Duration = defaultTimeout) async throws -> JSON {
        try await message("an error response with id null", timeout: timeout) { message in
            message["id"] == .null && message["error"] != nil
        }
    }

    /// The `params` of the next `notifications/claude/channel`.
    func channelEvent(timeout: Duration = defaultTimeout) async throws -> JSON {
        let message = try await message("a \(Self.channelMethod) notification", timeout: timeout) { message in
            message["method"]?.stringValue == Self.channelMethod && message["id"] == nil
        }
        guard let params = message["params"] else {
            throw HarnessError("channel notification without params: \(message)")
        }
        return params
    }

    /// Channel notifications that arrive up to a fence: a `ping` round trip (the server has
    /// read everything sent before it) plus `grace` for anything still in flight. Used to
    /// prove that something was delivered exactly once, or not at all.
    func channelEventsUntilQuiet(grace: Duration = .milliseconds(400)) async throws -> [JSON] {
        _ = try await result("ping")
        try await Task.sleep(for: grace)
        ingest()
        return lock.withLock {
            let events = queued.filter { $0["method"]?.stringValue == Self.channelMethod }
            queued.removeAll { $0["method"]?.stringValue == Self.channelMethod }
            return events.map { $0["params"] ?? .null }
        }
    }

    /// Every message received so far, claimed or not, in arrival order.
    var transcript: [JSON] {
        ingest()
        return lock.withLock { everything }
    }

    /// Stdout lines that were not a JSON object with `"jsonrpc": "2.0"`.
    var nonProtocolLines: [String] {
        ingest()
        return lock.withLock { strayLines }
    }

    /// Parses stdout lines that arrived since the last call.
    private func ingest() {
        lock.withLock {
            let lines = server.stdout.lines(from: cursor)
            cursor += lines.count
            for line in lines {
                if let message = try? JSON.parse(line), message["jsonrpc"] == "2.0", message.objectValue != nil {
                    queued.append(message)
                    everything.append(message)
                } else {
                    strayLines.append(String(decoding: line.prefix(300), as: UTF8.self))
                }
            }
        }
    }

    /// What a failed wait saw instead: unclaimed messages, the child's state, its stderr.
    private func diagnostics() -> String {
        let unclaimed = lock.withLock { queued.map { String($0.encodedString.prefix(200)) } }
        var text = "unclaimed messages: " + (unclaimed.isEmpty ? "(none)" : unclaimed.joined(separator: " | "))
        if let termination = server.child.termination { text += "; the server has ended (\(termination))" }
        let writeErrors = server.child.stdinWriteErrors
        if !writeErrors.isEmpty { text += "; stdin write errors: \(writeErrors.joined(separator: ", "))" }
        return text + "; stderr:\n" + server.stderr.tail()
    }
}
