/// A tool result: text for Claude, flagged as an error when the action failed.
public struct MCPToolResult: Sendable, Equatable {
    public var text: String
    public var isError: Bool

    public init(text: String, isError: Bool = false) {
        self.text = text
        self.isError = isError
    }

    public static func error(_ text: String) -> MCPToolResult { MCPToolResult(text: text, isError: true) }

    var json: JSONValue {
        ["content": [["type": "text", "text": .string(text)]], "isError": .bool(isError)]
    }
}

/// One tool offered through `tools/list` and run by `tools/call`.
public struct MCPTool: Sendable {
    public let name: String
    public let description: String
    public let inputSchema: JSONValue
    /// Throws `-32602` for arguments that do not fit the schema.
    public let run: @Sendable (JSONObject) async throws(JSONRPCError) -> MCPToolResult

    public init(name: String, description: String, inputSchema: JSONValue,
                run: @escaping @Sendable (JSONObject) async throws(JSONRPCError) -> MCPToolResult)
    {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.run = run
    }

    var listing: JSONValue {
        ["name": .string(name), "description": .string(description), "inputSchema": inputSchema]
    }
}

/// Reading tool arguments with `-32602` errors that say which argument is wrong.
public struct ToolArguments: Sendable {
    public let object: JSONObject

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
