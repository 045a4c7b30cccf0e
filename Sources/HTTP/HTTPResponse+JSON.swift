import JSON

/// The one place that builds JSON answers, so every error has the same shape:
/// `{"error": "<code>", "message": "<text>"}`.
extension HTTPResponse {
    public static func error(status: Int, code: String, message: String, headers: [(String, String)] = []) -> HTTPResponse {
        .json(status: status, body: JSONWriter.compact(["error": .string(code), "message": .string(message)]),
              extraHeaders: headers)
    }

    public static func json(status: Int = 200, _ value: JSONValue) -> HTTPResponse {
        .json(status: status, body: JSONWriter.compact(value))
    }
}
