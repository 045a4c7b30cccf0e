import JSON

/// Standard JSON-RPC 2.0 error codes.
public struct JSONRPCError: Error, Sendable, Equatable {
    public let code: Int
    public let message: String

    public init(code: Int, message: String) {
        self.code = code
        self.message = message
    }

    public static func parseError(_ detail: String) -> JSONRPCError { .init(code: -32700, message: "Parse error: \(detail)") }
    public static func invalidRequest(_ detail: String) -> JSONRPCError { .init(code: -32600, message: "Invalid Request: \(detail)") }
    public static func methodNotFound(_ method: String) -> JSONRPCError {
        .init(code: -32601, message: "Method not found: \(method.prefix(100))")
    }
    public static func invalidParams(_ detail: String) -> JSONRPCError { .init(code: -32602, message: "Invalid params: \(detail)") }
    public static func internalError(_ detail: String) -> JSONRPCError { .init(code: -32603, message: "Internal error: \(detail)") }
}

/// One decoded line, classified once by what it carries (id, method, result/error).
public enum JSONRPCMessage: Sendable, Equatable {
    case request(id: JSONValue, method: String, params: JSONValue?)
    case notification(method: String, params: JSONValue?)
    /// A response from the client. We send no requests, so these are logged and dropped.
    case response(id: JSONValue)
    /// Something that must be answered with an error; `id` is `.null` when it could not be read.
    case invalid(id: JSONValue, error: JSONRPCError)

    public static func decode(_ line: [UInt8]) -> JSONRPCMessage {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            // Too deep is a request refused for its shape (-32600, SPEC 9), not unreadable text.
            if error.isTooDeep {
                return .invalid(id: .null, error: .invalidRequest("JSON nested deeper than \(JSONParser.maxDepth) levels"))
            }
            return .invalid(id: .null, error: .parseError(error.description))
        }
        guard case .object(let object) = value else {
            if case .array = value { return .invalid(id: .null, error: .invalidRequest("batches are not supported")) }
            return .invalid(id: .null, error: .invalidRequest("a message must be a JSON object"))
        }
        let rawID = object["id"]
        let id: JSONValue?
        switch rawID {
        case nil: id = nil
        case .string?, .int?: id = rawID
        // An integer written as a float (`1.0`, `1e3`) is echoed as that integer; one past
        // 2^53 (or past the doubles) cannot be echoed as sent, and is refused.
        case .double(let d)? where d.isFinite && d.rounded() == d && abs(d) < 9.0e15: id = rawID
        default: return .invalid(id: .null, error: .invalidRequest("id must be a string or an integer"))
        }
        guard object["jsonrpc"] == .string("2.0") else {
            return .invalid(id: id ?? .null, error: .invalidRequest("jsonrpc must be \"2.0\""))
        }
        let params = object["params"]
        if let params, params.objectValue == nil, params.arrayValue == nil {
            return .invalid(id: id ?? .null, error: .invalidRequest("params must be an object or an array"))
        }
        switch (object["method"], id) {
        case (.string(let method)?, let id?):
            return .request(id: id, method: method, params: params)
        case (.string(let method)?, nil):
            return .notification(method: method, params: params)
        case (nil, let id?) where object["result"] != nil || object["error"] != nil:
            return .response(id: id)
        case (nil, _):
            return .invalid(id: id ?? .null, error: .invalidRequest("method is missing"))
        default:
            return .invalid(id: id ?? .null, error: .invalidRequest("method must be a string"))
        }
    }

    public static func encodeResult(id: JSONValue, result: JSONValue) -> [UInt8] {
        JSONWriter.compact(["jsonrpc": "2.0", "id": id, "result": result])
    }

    public static func encodeError(id: JSONValue, error: JSONRPCError) -> [UInt8] {
        JSONWriter.compact([
            "jsonrpc": "2.0", "id": id,
            "error": ["code": .int(Int64(error.code)), "message": .string(error.message)],
        ])
    }
}
