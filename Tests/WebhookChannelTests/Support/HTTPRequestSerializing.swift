@testable import HTTP

// The parser's round-trip tests write a parsed request back out. The server never writes a
// request this way (its one request writer is `HTTPRequestWriter`, which owns `Host` and the
// framing), so this lives with the tests.
extension HTTPRequest {
    /// The request as HTTP/1.x bytes: request line, every header except the framing ones
    /// in order as `Name: value`, then the body.
    ///
    /// Framing rule: any `Transfer-Encoding` and `Content-Length` fields are dropped and the
    /// body is always sent with one `Content-Length`, appended after the other headers.
    /// It is emitted when the body is non-empty, or when the method is `POST`, `PUT` or
    /// `PATCH` (which the parser refuses with `411` without a length). So
    /// `parse(request.serialized())` gives back the request, except that its framing headers
    /// are now exactly that one trailing `Content-Length`. No `Host` is added: an HTTP/1.1
    /// request needs one in `headers` to parse again.
    func serialized() -> [UInt8] {
        let needsLength = !body.isEmpty || Self.methodsRequiringLength.contains(method)
        var head = "\(method) \(target) \(version)\r\n"
        for (name, value) in headers
        where !HTTPHeaders.namesEqual(name, "Content-Length") && !HTTPHeaders.namesEqual(name, "Transfer-Encoding") {
            head += "\(name): \(value)\r\n"
        }
        if needsLength { head += "Content-Length: \(body.count)\r\n" }
        return Array((head + "\r\n").utf8) + body
    }

    /// Methods whose requests carry content by definition, so a missing length is an error
    /// rather than an empty body. Methods are case-sensitive (RFC 9110 section 9.1).
    static let methodsRequiringLength: Set<String> = ["POST", "PUT", "PATCH"]
}
