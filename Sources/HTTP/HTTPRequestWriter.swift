/// The client side's request writer: one request on a connection of its own.
///
/// Like `HTTPResponse.serialized(keepAlive:)`, the writer owns the framing: `Host`,
/// `Content-Length` and `Connection: close` are always its own, so a caller can never send a
/// length that disagrees with the body or a second `Host`.
public enum HTTPRequestWriter {
    /// `<method> <target> HTTP/1.1`, `Host`, `Content-Length`, `Connection: close`, the
    /// caller's headers in order, an empty line, the body.
    ///
    /// Caller fields named `Host`, `Content-Length`, `Transfer-Encoding` or `Connection` are
    /// left out (the framing is this function's). A field whose name is not a token or whose
    /// name or value holds a CR, LF or NUL is dropped whole: its value could otherwise start
    /// a header line of its own (request splitting), and a mangled value is worse than none.
    public static func serialize(method: String, target: String, host: String, headers: [(String, String)],
                                 body: [UInt8]) -> [UInt8]
    {
        var out: [UInt8] = []
        var size = method.utf8.count + target.utf8.count + host.utf8.count + 80 + body.count
        for (name, value) in headers {
            size += name.utf8.count + value.utf8.count + 4
        }
        out.reserveCapacity(size)
        out.append(contentsOf: method.utf8)
        out.append(0x20)
        out.append(contentsOf: target.utf8)
        out.append(contentsOf: " HTTP/1.1\r\n".utf8)
        appendField("Host", host, to: &out)
        appendField("Content-Length", String(body.count), to: &out)
        appendField("Connection", "close", to: &out)
        for (name, value) in headers where isSendable(name: name, value: value) && !isFraming(name) {
            appendField(name, value, to: &out)
        }
        out.append(contentsOf: [0x0D, 0x0A])
        out.append(contentsOf: body)
        return out
    }

    /// The `Host` value for a URL's host and port (RFC 9110 section 7.2): an IPv6 literal in
    /// brackets, the port left out when it is the scheme's default.
    public static func hostField(host: String, port: UInt16, defaultPort: UInt16) -> String {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let name = bare.contains(":") ? "[\(bare)]" : bare
        return port == defaultPort ? name : "\(name):\(port)"
    }

    static func isSendable(name: String, value: String) -> Bool {
        guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else { return false }
        return !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    private static func isFraming(_ name: String) -> Bool {
        HTTPHeaders.namesEqual(name, "Host")
            || HTTPHeaders.namesEqual(name, "Content-Length")
            || HTTPHeaders.namesEqual(name, "Transfer-Encoding")
            || HTTPHeaders.namesEqual(name, "Connection")
    }

    private static func appendField(_ name: String, _ value: String, to out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: [UInt8(ascii: ":"), 0x20])
        out.append(contentsOf: value.utf8)
        out.append(contentsOf: [0x0D, 0x0A])
    }
}
