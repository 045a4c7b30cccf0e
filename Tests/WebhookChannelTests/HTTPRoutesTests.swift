import Foundation
import Testing
@testable import Platform

/// The HTTP surface outside signature checks: health, routing errors, JSON routes, browser
/// defence and connection reuse (SPEC 4 and 5).
@Suite struct HTTPRoutesTests {
    @Test func healthSaysWaitingBeforeInitializedWithZeroCounts() async throws {
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }

        let response = try await channel.http.get("/health")

        #expect(response.status == 200, "\(response)")
        #expect(response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true)
        #expect(response.header("Access-Control-Allow-Origin") == nil, "no CORS headers")
        let health = try response.json()
        #expect(health["status"] == "ok")
        #expect(health["sources"] == 0)
        #expect(health["pending"] == 0)
        #expect(health["mcp"] == "waiting", "\(health)")
    }

    @Test func healthCountsSourcesAndPendingAndSaysConnectedAfterInitialized() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        _ = try await channel.http.pairSource(name: "paired")
        _ = try await channel.http.requestPairing(name: "waiting-one")
        _ = try await channel.http.requestPairing(name: "waiting-two")

        let health = try await channel.http.get("/health").json()

        #expect(health["status"] == "ok")
        #expect(health["sources"] == 1, "\(health)")
        #expect(health["pending"] == 2, "\(health)")
        #expect(health["mcp"] == "connected", "\(health)")
    }

    /// RFC 9112 section 3.2.2: a server accepts the absolute form (`GET http://host/path`), and
    /// its authority stands in for `Host`, so the loopback check applies to it.
    @Test func anAbsoluteFormTargetIsRoutedByItsPathAndCheckedByItsAuthority() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let port = channel.server.port
        func get(_ target: String, host: String) async throws -> RawHTTPResponse {
            try await channel.http.send(raw: Data("GET \(target) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8))
        }
        let local = try await get("http://127.0.0.1:\(port)/health", host: "127.0.0.1:\(port)")
        #expect(local.status == 200, "\(local)")
        #expect(try local.json()["status"] == "ok")
        #expect(try await get("HTTP://localhost:\(port)/health", host: "localhost").status == 200)
        let elsewhere = try await get("http://evil.example/health", host: "127.0.0.1:\(port)")
        expectJSONError(elsewhere, status: 421, error: "misdirected_request")
        #expect(try await get("http://127.0.0.1:\(port)/nope", host: "127.0.0.1").status == 404)
    }

    @Test func unknownPathIs404JSONError() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        expectJSONError(try await channel.http.get("/no/such/path"), status: 404)
        expectJSONError(try await channel.http.postJSON("/webhooks", ["a": 1]), status: 404)
        // `/webhook/` and paths below a source id are no route for any method: no 405 offers
        // a POST that would be 404.
        for path in ["/webhook/", "/webhook/a/b"] {
            expectJSONError(try await channel.http.get(path), status: 404)
            expectJSONError(try await channel.http.postJSON(path, ["a": 1]), status: 404)
        }
        let allowed = try await channel.http.get("/webhook/src_0123")
        expectJSONError(allowed, status: 405)
        #expect(allowed.header("Allow") == "POST")
    }

    @Test(arguments: [
        ("GET", "/webhook", "POST"),
        ("POST", "/health", "GET"),
        ("GET", "/pair", "POST"),
        ("DELETE", "/pair/complete", "POST"),
        ("POST", "/pair/status", "GET"),
    ])
    func wrongMethodIs405WithAllowHeader(method: String, path: String, allowed: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let body: Data? = method == "POST" ? Data("{}".utf8) : nil
        let headers: [(String, String)] = body == nil ? [] : [("Content-Type", "application/json")]
        let response = try await channel.http.request(method, path, headers: headers, body: body)

        expectJSONError(response, status: 405)
        let allow = try #require(response.header("Allow"), "405 without Allow: \(response)")
        let methods = allow.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(methods.contains(allowed), "Allow: \(allow)")
        #expect(!methods.contains(method), "Allow: \(allow) lists the refused method")
    }

    /// `HEAD /health` (what uptime monitors send) is the `GET` answer's head: same status and
    /// fields, `Content-Length` of the content it leaves out, and not one byte of content.
    @Test func headOnHealthIsTheGetHeadWithoutContent() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        // The handshake returns once `notifications/initialized` is written, not once the server
        // has read it; until then `"mcp"` says "waiting", two bytes shorter than "connected".
        var mcp = try await channel.http.get("/health").json()["mcp"]
        for _ in 0..<2000 where mcp != "connected" {
            try await Task.sleep(for: .milliseconds(5))
            mcp = try await channel.http.get("/health").json()["mcp"]
        }
        try #require(mcp == "connected", "the server never read notifications/initialized")

        let fd = TestSocket.makeIPv4()
        #expect(fd >= 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try connectIPv4(fd, host: "127.0.0.1", port: channel.server.port)
        let request = Array("HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        #expect(request.withUnsafeBytes { NoSignalSend.send(fd, $0.baseAddress!, $0.count) } == request.count)
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Foundation.recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += chunk[0..<n]
        }

        let get = try await channel.http.get("/health")
        let text = String(decoding: received, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        #expect(parts.count == 2 && parts[1].isEmpty, "content after a HEAD answer's head: \(text.debugDescription)")
        #expect(text.hasPrefix("HTTP/1.1 200 "), "\(text)")
        let length = parts[0].components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
        #expect(length == "Content-Length: \(get.body.count)", "\(text)")
    }

    @Test func aMethodHTTPDoesNotDefineIs501AndAKnownOneARouteDoesNotTakeIs405() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        expectJSONError(try await channel.http.request("BREW", "/health", headers: [], body: nil), status: 501, error: "not_implemented")
        expectJSONError(try await channel.http.request("PROPFIND", "/nowhere", headers: [], body: nil), status: 501, error: "not_implemented")
        let put = try await channel.http.request("PUT", "/health", headers: [("Content-Type", "application/json")], body: Data("{}".utf8))
        expectJSONError(put, status: 405)
        #expect(put.header("Allow") == "GET, HEAD", "\(put)")
    }

    @Test func pairRequiresAJSONContentTypeButAllowsParameters() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let body = Data(#"{"name":"ci"}"#.utf8)

        let plain = try await channel.http.postJSON("/pair", body: body, headers: [("Content-Type", "text/plain")])
        let missing = try await channel.http.request("POST", "/pair", body: body)
        let form = try await channel.http.postJSON("/pair", body: body, headers: [("Content-Type", "application/x-www-form-urlencoded")])
        expectJSONError(plain, status: 415)
        expectJSONError(missing, status: 415)
        expectJSONError(form, status: 415)
        #expect(try await channel.http.get("/health").json()["pending"] == 0)

        let charset = try await channel.http.postJSON("/pair", body: body, headers: [("Content-Type", "application/json; charset=utf-8")])
        #expect(charset.status == 200, "\(charset)")
    }

    @Test func pairCompleteRequiresAJSONContentType() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let ticket = try await channel.http.requestPairing(name: "ci")
        let body = Data(#"{"code":"\#(ticket.code)"}"#.utf8)

        let plain = try await channel.http.postJSON("/pair/complete", body: body, headers: [("Content-Type", "text/plain")])
        expectJSONError(plain, status: 415)
        #expect(try await channel.http.get("/health").json()["sources"] == 0)

        let charset = try await channel.http.postJSON("/pair/complete", body: body,
                                                      headers: [("Content-Type", "Application/JSON; charset=UTF-8")])
        #expect(charset.status == 200, "\(charset)")
    }

    @Test(arguments: ["evil.example", "evil.example:8788", "127.0.0.1.nip.io"])
    func pairingWithAForeignHostHeaderIsRefused(host: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let response = try await channel.http.postJSON("/pair", ["name": "rebound"], headers: [("Host", host)])

        #expect((400..<500).contains(response.status), "Host \(host): \(response)")
        #expect(try await channel.http.get("/health").json()["pending"] == 0)

        let local = try await channel.http.postJSON("/pair", ["name": "local"],
                                                    headers: [("Host", "localhost:\(channel.server.port)")])
        #expect(local.status == 200, "Host localhost:\(channel.server.port): \(local)")
    }

    @Test func pairingFromABrowserOriginIsRefused() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let response = try await channel.http.postJSON("/pair", ["name": "csrf"], headers: [("Origin", "http://evil.example")])

        #expect((400..<500).contains(response.status), "\(response)")
        #expect(response.header("Access-Control-Allow-Origin") == nil)
        #expect(try await channel.http.get("/health").json()["pending"] == 0)
    }

    @Test func keepAliveConnectionServesSequentialRequests() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let request = channel.http.requestBytes("GET", "/health", keepAlive: true)
        // The first request goes with the connect (`open(port:sending:)`): the server times it
        // from the accept, and a hop back to a busy test pool in between could outlast that.
        let connection = try await HTTPConnection.open(port: channel.server.port, sending: request)
        defer { connection.close() }

        for round in 0..<3 {
            if round > 0 { try await connection.send(request) }
            let response = try await connection.readResponse()
            #expect(response.status == 200, "\(response)")
            #expect(try response.json()["status"] == "ok")
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        var bytes = channel.http.requestBytes("GET", "/health", keepAlive: true)
        bytes.append(channel.http.requestBytes("GET", "/missing", keepAlive: true))
        bytes.append(channel.http.requestBytes("POST", "/pair", headers: [("Content-Type", "application/json")],
                                               body: Data(#"{"name":"piped"}"#.utf8), keepAlive: true))
        let connection = try await HTTPConnection.open(port: channel.server.port, sending: bytes)
        defer { connection.close() }

        let first = try await connection.readResponse()
        let second = try await connection.readResponse()
        let third = try await connection.readResponse()
        #expect(first.status == 200, "\(first)")
        #expect(try first.json()["status"] == "ok")
        #expect(second.status == 404, "\(second)")
        #expect(third.status == 200, "\(third)")
        #expect(try third.json()["pairing_code"]?.stringValue != nil, "\(third)")
    }
}
