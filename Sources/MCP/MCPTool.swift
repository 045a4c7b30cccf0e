import JSON

/// A tool result: text for Claude, flagged as an error when the action failed.
public struct MCPToolResult: Sendable, Equatable {
    public var text: String
    public var isError: Bool
    /// The result's `_meta` (for instance Claude Code's `anthropic/maxResultSizeChars`).
    public var meta: JSONObject?

    public init(text: String, isError: Bool = false, meta: JSONObject? = nil) {
        self.text = text
        self.isError = isError
        self.meta = meta
    }

    public static func error(_ text: String) -> MCPToolResult { MCPToolResult(text: text, isError: true) }

    var json: JSONValue {
        var result: JSONObject = ["content": [["type": "text", "text": .string(text)]], "isError": .bool(isError)]
        if let meta { result["_meta"] = .object(meta) }
        return .object(result)
    }
}

/// One tool offered through `tools/list` and run by `tools/call`.
public struct MCPTool: Sendable {
    public let name: String
    public let description: String
    public let inputSchema: JSONValue
    /// MCP tool annotations (`readOnlyHint`, `openWorldHint`, …): hints a client uses to
    /// decide what needs the user's approval.
    public let annotations: JSONObject
    /// Throws `-32602` for arguments that do not fit the schema.
    public let run: @Sendable (JSONObject) async throws(JSONRPCError) -> MCPToolResult

    public init(name: String, description: String, inputSchema: JSONValue, annotations: JSONObject = JSONObject(),
                run: @escaping @Sendable (JSONObject) async throws(JSONRPCError) -> MCPToolResult)
    {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.annotations = annotations
        self.run = run
    }

    /// The input schema of a tool that takes no arguments.
    public static let noArguments: JSONValue = ["type": "object", "properties": .object(JSONObject())]

    /// For tools that only read: the client may run them without asking.
    public static let readOnly: JSONObject = ["readOnlyHint": true, "openWorldHint": false]

    var listing: JSONValue {
        var listing: JSONObject = ["name": .string(name), "description": .string(description), "inputSchema": inputSchema]
        if !annotations.isEmpty { listing["annotations"] = .object(annotations) }
        return .object(listing)
    }
}

/// Reading tool arguments with `-32602` errors that say which argument is wrong.
public struct ToolArguments: Sendable {
    public let object: JSONObject

    public init(object: JSONObject) {
        self.object = object
    }

    public func requiredString(_ key: String) throws(JSONRPCError) -> String {
        guard let value = object[key] else { throw .invalidParams("missing required argument \"\(key)\"") }
        guard let string = value.stringValue, !string.isEmpty else {
            throw .invalidParams("argument \"\(key)\" must be a non-empty string")
        }
        return string
    }

    public func optionalString(_ key: String) throws(JSONRPCError) -> String? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let string = value.stringValue else { throw .invalidParams("argument \"\(key)\" must be a string") }
        return string
    }

    public func optionalInt(_ key: String, range: ClosedRange<Int64>) throws(JSONRPCError) -> Int64? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let int = value.intValue, range.contains(int) else {
            throw .invalidParams("argument \"\(key)\" must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return int
    }
}
