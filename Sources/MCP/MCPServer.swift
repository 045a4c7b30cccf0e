import Platform
import JSON

/// The MCP methods over a JSON-RPC session: `initialize`, `ping`, `tools/*` and the
/// notifications. Knows tools only through `MCPTool`, nothing of webhooks.
public final class MCPServer: JSONRPCHandler {
    /// Oldest first; the last is what we answer when the client asks for one we do not know.
    public static let supportedProtocolVersions = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]

    private let name: String
    private let version: String
    private let instructions: String
    private let tools: [MCPTool]
    private let notifier: ChannelNotifier
    /// Capabilities under `experimental` besides `claude/channel`, decided at each `initialize`.
    private let experimentalCapabilities: @Sendable () async -> JSONObject
    /// Handlers for notifications beyond MCP's own, by method.
    private let notificationHandlers: [String: @Sendable (JSONValue?) async -> Void]
    private let log: Logger

    public init(name: String, version: String, instructions: String, tools: [MCPTool], notifier: ChannelNotifier,
                experimentalCapabilities: @escaping @Sendable () async -> JSONObject = { JSONObject() },
                notificationHandlers: [String: @Sendable (JSONValue?) async -> Void] = [:], log: Logger)
    {
        self.name = name
        self.version = version
        self.instructions = instructions
        self.tools = tools
        self.notifier = notifier
        self.experimentalCapabilities = experimentalCapabilities
        self.notificationHandlers = notificationHandlers
        self.log = log
    }

    public func isOrdered(method: String) -> Bool {
        method != "tools/call"
    }

    /// A read-only tool reads the event log or the sources: its answer may be large (a 1 MiB
    /// body). Replies and the rest send little.
    public func isLarge(method: String, params: JSONValue?) -> Bool {
        guard method == "tools/call", let name = params?["name"]?.stringValue,
              let tool = tools.first(where: { $0.name == name }) else { return false }
        return tool.annotations["readOnlyHint"]?.boolValue == true
    }

    public func handleRequest(method: String, params: JSONValue?) async throws(JSONRPCError) -> JSONValue {
        switch method {
        case "initialize": return await initialize(params)
        case "ping": return .object(JSONObject())
        case "tools/list": return ["tools": .array(tools.map(\.listing))]
        case "tools/call": return try await callTool(params)
        default: throw .methodNotFound(method)
        }
    }

    public func handleNotification(method: String, params: JSONValue?) async {
        switch method {
        case "notifications/initialized":
            notifier.markInitialized()
            log.info("mcp: client initialized")
        case "notifications/cancelled":
            break  // Tool calls here are short or already retried in the background.
        default:
            // Unknown notifications are ignored, as JSON-RPC prescribes.
            if let handler = notificationHandlers[method] { await handler(params) }
        }
    }

    private func initialize(_ params: JSONValue?) async -> JSONValue {
        let requested = params?["protocolVersion"]?.stringValue
        let version = requested.flatMap { MCPServer.supportedProtocolVersions.contains($0) ? $0 : nil }
            ?? MCPServer.supportedProtocolVersions.last!
        let client = params?["clientInfo"]?["name"]?.stringValue ?? "unknown"
        // The client's own words: no control character reaches the log (a newline could forge
        // a line such as `listening on …`).
        log.info("mcp: initialize from \(ChannelEvent.cleanMetaValue(client).prefix(64)), protocol \(version)")
        var experimental: JSONObject = ["claude/channel": .object(JSONObject())]
        for member in await experimentalCapabilities() { experimental[member.key] = member.value }
        return [
            "protocolVersion": .string(version),
            "capabilities": ["tools": .object(JSONObject()), "experimental": .object(experimental)],
            "serverInfo": ["name": .string(name), "version": .string(self.version)],
            "instructions": .string(instructions),
        ]
    }

    private func callTool(_ params: JSONValue?) async throws(JSONRPCError) -> JSONValue {
        guard let params = params?.objectValue else { throw .invalidParams("tools/call needs an object with \"name\"") }
        guard let name = params["name"]?.stringValue else { throw .invalidParams("tools/call needs a string \"name\"") }
        guard let tool = tools.first(where: { $0.name == name }) else { throw .invalidParams("unknown tool \"\(name.prefix(100))\"") }
        let arguments: JSONObject
        switch params["arguments"] {
        case nil, .null?: arguments = JSONObject()
        case .object(let object)?: arguments = object
        default: throw .invalidParams("\"arguments\" must be an object")
        }
        return try await tool.run(arguments).json
    }
}
