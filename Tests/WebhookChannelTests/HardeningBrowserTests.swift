import Foundation
import Testing

/// Browser defence against a localhost port (issue 4, SPEC section 5): DNS rebinding
/// (`Host` outside the loopback allowlist → `421`, one that is no host[:port] at all → `400`), CSRF (`Origin` on any POST route →
/// `403`), no CORS headers ever, and `application/json` required on the JSON routes (`415`).
/// A refused request changes nothing: no delivery, no pending pairing, no consumed code.
@Suite struct HardeningBrowserTests {
    @Test func hostOutsideTheLoopbackAllowlistIs421() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let port = server.port
        let badHosts = [
            "evil.example", "evil.example:\(port)", "localhost.evil.example:\(port)", "127.0.0.1.nip.io:\(port)",
            "127.0.0.2:\(port)", "0.0.0.0:\(port)", "[::2]:\(port)", "2130706433:\(port)", "0x7f.0.0.1:\(port)",
            "192.0.2.1:\(port)",
        ]
        // Not a host[:port] at all: RFC 9112 section 3.2's 400, before any name is looked at.
        let malformedHosts = [
            "localhost:\(port)x", "localhost:\(port)@evil.example", "127.0.0.1:\(port).evil.example", "[::1]evil:\(port)",
            "127.0.0.1:abc", "a b", "[::1", "local host:\(port)",
        ]
        for host in malformedHosts {
            await server.expectRefusal("GET /health with Host \(host)",
                                       "GET /health HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n",
                                       status: 400, error: "bad_request")
        }
        let marker = server.marker("rebinding")
        let hook = #"{"event":"rebinding","marker":"\#(marker)"}"#
        let pairBody = #"{"name":"rebinding"}"#
        for host in badHosts {
            await server.expectRefusal("GET /health with Host \(host)",
                                       "GET /health HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n",
                                       status: 421, error: "misdirected_request")
        }
        for host in badHosts.prefix(4) {
            var signed = String(decoding: server.signedWebhookRequest(body: hook), as: UTF8.self)
            signed = signed.replacingOccurrences(of: "Host: \(server.host)\r\n", with: "Host: \(host)\r\n")
            await server.expectRefusal("a signed webhook with Host \(host)", Data(signed.utf8), statuses: [421], error: "misdirected_request")
            await server.expectRefusal("POST /pair with Host \(host)",
                                       "POST /pair HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\nContent-Length: \(pairBody.utf8.count)\r\nConnection: close\r\n\r\n\(pairBody)",
                                       status: 421, error: "misdirected_request")
            await server.expectRefusal("GET /pair/status with Host \(host)",
                                       "GET /pair/status?code=AAAAAA HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n",
                                       status: 421, error: "misdirected_request")
        }
        await server.expectRefusal("an empty Host", Data("GET /health HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n".utf8),
                                   statuses: [400, 421])
        try await server.expectAlive("after foreign Host names:")

        // The allowlist itself, case-insensitive.
        for host in ["127.0.0.1:\(port)", "localhost:\(port)", "[::1]:\(port)", "LocalHost:\(port)"] {
            let (response, _, _) = try await server.exchange("GET /health HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            #expect(response.status == 200, "Host \(host): \(response)")
        }

        let health = try await server.http.get("/health")
        #expect(try health.json()["pending"] == 0, "a refused /pair left a pending pairing: \(health)")
        let delivered = try await server.mcp.channelEventsUntilQuiet()
        #expect(!delivered.contains { $0["content"]?.stringValue?.contains(marker) == true }, "a webhook with a foreign Host was delivered")
        try await server.expectSurvived()
    }

    @Test func anyOriginOnAPostRouteIs403() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host
        let ticket = try await server.http.requestPairing(name: "origin-check")
        server.forbid(ticket.pollToken)
        let origins = ["https://evil.example", "null", "http://127.0.0.1:\(server.port)", "http://localhost:\(server.port)", ""]
        let marker = server.marker("csrf")
        let hook = #"{"event":"csrf","marker":"\#(marker)"}"#
        let complete = #"{"code":"\#(ticket.code)"}"#
        let pair = #"{"name":"csrf"}"#

        for origin in origins {
            let originField = "Origin: \(origin)"
            await server.expectRefusal("signed POST /webhook with \(originField)",
                                       server.signedWebhookRequest(body: hook, extraFields: [originField]),
                                       statuses: [403], error: "origin_forbidden")
            await server.expectRefusal("POST /webhook/{id} with \(originField)",
                                       "POST /webhook/\(server.credentials.sourceID) HTTP/1.1\r\nHost: \(h)\r\n\(originField)\r\nContent-Type: application/json\r\nContent-Length: \(hook.utf8.count)\r\nConnection: close\r\n\r\n\(hook)",
                                       status: 403, error: "origin_forbidden")
            await server.expectRefusal("POST /pair with \(originField)",
                                       "POST /pair HTTP/1.1\r\nHost: \(h)\r\n\(originField)\r\nContent-Type: application/json\r\nContent-Length: \(pair.utf8.count)\r\nConnection: close\r\n\r\n\(pair)",
                                       status: 403, error: "origin_forbidden")
            await server.expectRefusal("POST /pair/complete with a valid code and \(originField)",
                                       "POST /pair/complete HTTP/1.1\r\nHost: \(h)\r\n\(originField)\r\nContent-Type: application/json\r\nContent-Length: \(complete.utf8.count)\r\nConnection: close\r\n\r\n\(complete)",
                                       status: 403, error: "origin_forbidden")
        }
        try await server.expectAlive("after Origin requests:")

        // Nothing happened: the code is still pending, only the one pairing is pending, no delivery.
        let status = try await server.http.get("/pair/status?code=\(ticket.code)")
        #expect(try status.json()["status"] == "pending", "\(status)")
        let health = try await server.http.get("/health")
        #expect(try health.json()["pending"] == 1, "\(health)")
        let delivered = try await server.mcp.channelEventsUntilQuiet()
        #expect(!delivered.contains { $0["content"]?.stringValue?.contains(marker) == true }, "a webhook carrying Origin was delivered")
        let credentials = try await server.http.completePairing(code: ticket.code)
        server.forbid(credentials.secret)
        try await server.expectSurvived()
    }

    /// A poll with the token hands the credentials out once: a change of state, refused with
    /// `Origin` like the POST routes, and the refusal spends nothing.
    @Test func aPairingPollCarryingOriginIs403AndHandsNothingOut() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let ticket = try await server.http.requestPairing(name: "origin-poll")
        server.forbid(ticket.pollToken)
        let credentials = try await server.http.completePairing(code: ticket.code)
        server.forbid(credentials.secret)
        let bearer = ("Authorization", "Bearer \(ticket.pollToken)")

        await server.expectRefusal(
            "GET /pair/status with the poll token and Origin",
            "GET /pair/status?code=\(ticket.code) HTTP/1.1\r\nHost: \(server.host)\r\nOrigin: https://evil.example\r\n"
                + "Authorization: Bearer \(ticket.pollToken)\r\nConnection: close\r\n\r\n",
            status: 403, error: "origin_forbidden")
        let collected = try await server.http.get("/pair/status?code=\(ticket.code)", headers: [bearer])
        #expect(try collected.json()["status"] == "paired", "\(collected)")
        #expect(try collected.json()["hmac_secret"]?.stringValue == credentials.secret, "the refused poll spent the hand-out")
        try await server.expectSurvived()
    }

    @Test func noCORSHeadersEver() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host
        let origin = "Origin: https://evil.example"

        let preflights: [(String, String, String)] = [
            ("/webhook", "POST", "POST"), ("/pair", "POST", "POST"), ("/pair/complete", "POST", "POST"),
            ("/health", "GET", "GET, HEAD"), ("/webhook/\(server.credentials.sourceID)", "POST", "POST"),
        ]
        for (path, method, allowed) in preflights {
            let request = "OPTIONS \(path) HTTP/1.1\r\nHost: \(h)\r\n\(origin)\r\nAccess-Control-Request-Method: \(method)\r\n"
                + "Access-Control-Request-Headers: content-type, x-signature\r\nConnection: close\r\n\r\n"
            let (response, _, _) = try await server.exchange(request)
            #expect(response.status == 405, "preflight for \(path): \(response)")
            #expect(response.header("Allow") == allowed, "preflight for \(path): \(response)")
            expectNoCORS(response, "preflight for \(path)")
        }

        let ticket = try await server.http.requestPairing(name: "cors")
        server.forbid(ticket.pollToken)
        let plain: [(String, String)] = [
            ("GET /health with Origin", "GET /health HTTP/1.1\r\nHost: \(h)\r\n\(origin)\r\nConnection: close\r\n\r\n"),
            ("GET /pair/status with Origin", "GET /pair/status?code=\(ticket.code) HTTP/1.1\r\nHost: \(h)\r\n\(origin)\r\nConnection: close\r\n\r\n"),
            ("GET /pair/status with Origin and the poll token",
             "GET /pair/status?code=\(ticket.code) HTTP/1.1\r\nHost: \(h)\r\n\(origin)\r\nAuthorization: Bearer \(ticket.pollToken)\r\nConnection: close\r\n\r\n"),
            ("POST /pair with Origin", "POST /pair HTTP/1.1\r\nHost: \(h)\r\n\(origin)\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"),
            ("GET /no-such with Origin", "GET /no-such HTTP/1.1\r\nHost: \(h)\r\n\(origin)\r\nConnection: close\r\n\r\n"),
            ("bad framing with Origin", "GET /health HTTP/1.1\r\nHost: \(h)\r\n\(origin)\r\nX: a\u{1}\r\n\r\n"),
        ]
        for (name, request) in plain {
            let (response, _, _) = try await server.exchange(request)
            #expect(response.status != 500, "\(name): \(response)")
            expectNoCORS(response, name)
        }
        let webhook = try await server.exchange(server.signedWebhookRequest(body: #"{"event":"cors"}"#, extraFields: [origin]))
        expectNoCORS(webhook.response, "signed webhook with Origin")
        try await server.expectSurvived()
    }

    @Test func jsonRoutesRefuseOtherContentTypesWith415() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host
        let ticket = try await server.http.requestPairing(name: "content-type")
        server.forbid(ticket.pollToken)
        let pair = #"{"name":"form-post"}"#
        let complete = #"{"code":"\#(ticket.code)"}"#
        let types: [String?] = [
            nil, "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x", "application/jsonp", "application/json-seq", "text/json",
            "application/xjson", "json", "", "application/ json",
        ]
        for type in types {
            let field = type.map { "Content-Type: \($0)\r\n" } ?? ""
            let label = type.map { "Content-Type \($0.debugDescription)" } ?? "no Content-Type"
            await server.expectRefusal("POST /pair with \(label)",
                                       "POST /pair HTTP/1.1\r\nHost: \(h)\r\n\(field)Content-Length: \(pair.utf8.count)\r\nConnection: close\r\n\r\n\(pair)",
                                       status: 415, error: "unsupported_media_type")
            await server.expectRefusal("POST /pair/complete with a valid code and \(label)",
                                       "POST /pair/complete HTTP/1.1\r\nHost: \(h)\r\n\(field)Content-Length: \(complete.utf8.count)\r\nConnection: close\r\n\r\n\(complete)",
                                       status: 415, error: "unsupported_media_type")
        }
        try await server.expectAlive("after wrong content types:")
        let health = try await server.http.get("/health")
        #expect(try health.json()["pending"] == 1, "a refused /pair created a pairing: \(health)")
        let status = try await server.http.get("/pair/status?code=\(ticket.code)")
        #expect(try status.json()["status"] == "pending", "a refused /pair/complete consumed the code: \(status)")

        // application/json with parameters, in any case, is accepted.
        for type in ["application/json; charset=utf-8", "Application/JSON", "application/json ; charset=UTF-8"] {
            let response = try await server.http.postJSON("/pair", body: Data(pair.utf8), headers: [("Content-Type", type)])
            #expect(response.status == 200, "Content-Type \(type): \(response)")
            if let token = try? response.json()["poll_token"]?.stringValue { server.forbid(token) }
        }
        let completed = try await server.http.postJSON("/pair/complete", body: Data(complete.utf8),
                                                       headers: [("Content-Type", "application/json; charset=utf-8")])
        #expect(completed.status == 200, "\(completed)")
        if let secret = try? completed.json()["hmac_secret"]?.stringValue { server.forbid(secret) }
        try await server.expectSurvived()
    }
}
