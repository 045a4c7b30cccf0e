import Foundation
import Testing

/// RFC 9112 framing abuse sent as raw bytes to the real binary (issue 4, SPEC section 5).
/// Every bad head gets its exact status, a JSON error, `Connection: close`, nothing after it
/// and an orderly close; after each one `/health` answers and a signed webhook is still
/// delivered, and at the end no descriptor is left behind and nothing secret was logged.
@Suite struct HardeningFramingTests {
    @Test func ambiguousOrMalformedHeadsAre400AndClose() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host
        let marker = server.marker("framing-body")
        let body = #"{"event":"smuggle","marker":"\#(marker)"}"#

        func post(_ fields: String, _ tail: String = "") -> String {
            "POST /webhook HTTP/1.1\r\nHost: \(h)\r\nContent-Type: application/json\r\n\(fields)\r\n\r\n\(tail)"
        }
        func get(_ fields: String) -> String {
            "GET /health HTTP/1.1\r\nHost: \(h)\r\n\(fields)\r\n\r\n"
        }
        let cases: [(String, String)] = [
            ("Content-Length with Transfer-Encoding",
             post("Content-Length: \(body.utf8.count)\r\nTransfer-Encoding: chunked", "0\r\n\r\n" + body)),
            ("Transfer-Encoding before Content-Length",
             post("Transfer-Encoding: chunked\r\nContent-Length: \(body.utf8.count)", body)),
            ("two differing Content-Length fields",
             post("Content-Length: \(body.utf8.count)\r\nContent-Length: \(body.utf8.count + 1)", body + "x")),
            ("a Content-Length list with differing values",
             post("Content-Length: \(body.utf8.count), \(body.utf8.count + 1)", body + "x")),
            ("non-numeric Content-Length", post("Content-Length: abc", body)),
            ("negative Content-Length", post("Content-Length: -1", body)),
            ("Content-Length with a plus sign", post("Content-Length: +\(body.utf8.count)", body)),
            ("hexadecimal Content-Length", post("Content-Length: 0x10", body)),
            ("fractional Content-Length", post("Content-Length: \(body.utf8.count).0", body)),
            ("empty Content-Length", post("Content-Length: ", body)),
            ("Content-Length with inner space", post("Content-Length: 1 0", body)),
            ("obs-fold with spaces", get("X-Folded: first\r\n   second")),
            ("obs-fold with a tab", get("X-Folded: first\r\n\tsecond")),
            ("whitespace before the first header line", "GET /health HTTP/1.1\r\n Host: \(h)\r\n\r\n"),
            ("whitespace between field name and colon", "GET /health HTTP/1.1\r\nHost : \(h)\r\n\r\n"),
            ("bare LF ending the request line", "GET /health HTTP/1.1\nHost: \(h)\r\n\r\n"),
            ("bare LF ending a header line", "GET /health HTTP/1.1\r\nHost: \(h)\nX-After: 1\r\n\r\n"),
            ("bare LF ending the head", "GET /health HTTP/1.1\r\nHost: \(h)\r\n\n"),
            ("bare LF everywhere", "GET /health HTTP/1.1\nHost: \(h)\n\n"),
            ("bare CR inside the head", "GET /health HTTP/1.1\r\nHost: \(h)\rX-After: 1\r\n\r\n"),
            ("NUL in a header value", get("X-Nul: a\u{0}b")),
            ("NUL in a header name", get("X-N\u{0}ul: a")),
            ("NUL in the request target", "GET /health\u{0} HTTP/1.1\r\nHost: \(h)\r\n\r\n"),
            ("NUL in the method", "G\u{0}ET /health HTTP/1.1\r\nHost: \(h)\r\n\r\n"),
            ("SOH in a header value", get("X-Ctl: a\u{1}b")),
            ("ESC in a header value", get("X-Ctl: \u{1B}[31mred")),
            ("vertical tab in a header value", get("X-Ctl: a\u{0B}b")),
            ("form feed in a header value", get("X-Ctl: a\u{0C}b")),
            ("DEL in a header value", get("X-Ctl: a\u{7F}b")),
            ("tab in the request line", "GET\t/health HTTP/1.1\r\nHost: \(h)\r\n\r\n"),
            ("a header line without a colon", get("X-No-Colon")),
            ("an empty field name", get(": value")),
            ("a field name with a slash", get("X/Bad: value")),
            ("missing Host on HTTP/1.1", "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"),
            ("two Host fields", get("Host: \(h)")),
            ("Transfer-Encoding on HTTP/1.0",
             "POST /webhook HTTP/1.0\r\nHost: \(h)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("two spaces in the request line", "GET  /health HTTP/1.1\r\nHost: \(h)\r\n\r\n"),
            ("lowercase HTTP version", "GET /health http/1.1\r\nHost: \(h)\r\n\r\n"),
            ("request line without a version", "GET /health\r\nHost: \(h)\r\n\r\n"),
            ("garbage instead of a request line", "\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\u{00}\u{01}\u{FC}\u{03}\u{03}\r\n\r\n"),
            ("two empty lines before the request line", "\r\n\r\nGET /health HTTP/1.1\r\nHost: \(h)\r\n\r\n"),
        ]
        for (name, request) in cases {
            await server.expectRefusal(name, Data(request.utf8), statuses: [400], error: "bad_request")
            try await server.expectAlive("after \(name):")
        }

        // A smuggled body must never turn into a delivery.
        let delivered = try await server.mcp.channelEventsUntilQuiet()
        #expect(!delivered.contains { $0["content"]?.stringValue?.contains(marker) == true }, "\(delivered)")
        try await server.expectSurvived()
    }

    @Test func unsupportedTransferCodingsAndVersionsAreRefused() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host

        for coding in ["gzip", "identity", "gzip, chunked", "chunked, gzip", "chunked, chunked", "x-custom"] {
            let request = "POST /webhook HTTP/1.1\r\nHost: \(h)\r\nContent-Type: application/json\r\nTransfer-Encoding: \(coding)\r\n\r\n0\r\n\r\n"
            await server.expectRefusal("Transfer-Encoding: \(coding)", Data(request.utf8), statuses: [400, 501])
            try await server.expectAlive("after Transfer-Encoding: \(coding):")
        }
        let twoFields = "POST /webhook HTTP/1.1\r\nHost: \(h)\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        await server.expectRefusal("two Transfer-Encoding fields", Data(twoFields.utf8), statuses: [400, 501])

        for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/3.0"] {
            await server.expectRefusal(version, "GET /health \(version)\r\nHost: \(h)\r\n\r\n",
                                       status: 505, error: "version_not_supported")
        }
        await server.expectRefusal("POST without a length",
                                   "POST /webhook HTTP/1.1\r\nHost: \(h)\r\nContent-Type: application/json\r\n\r\n{}",
                                   status: 411, error: "length_required")
        try await server.expectSurvived()
    }

    /// Unusual targets and methods: never a 500, never a tunnel or a trace, and nothing the
    /// client sent is reflected into the answer.
    @Test func oddTargetsAndMethodsAreRefusedWithoutReflection() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host
        let marker = server.marker("reflect")
        let cases: [(String, String, Set<Int>)] = [
            ("TRACE", "TRACE /health HTTP/1.1\r\nHost: \(h)\r\nX-Echo: \(marker)\r\nConnection: close\r\n\r\n", [405]),
            ("CONNECT", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nX-Echo: \(marker)\r\nConnection: close\r\n\r\n", [400, 404, 405, 421, 501]),
            ("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [400, 404, 405, 501]),
            ("absolute-form with a foreign authority",
             "GET http://evil.example/\(marker) HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [400, 404, 421]),
            // Methods are case-sensitive: `get` is not GET, and a method HTTP does not define is 501.
            ("lowercase method", "get /health HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [501]),
            ("unknown method", "BREW /\(marker) HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [501]),
            ("unknown method on a known route", "BREW /health HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [501]),
            ("a target without a leading slash", "GET health HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [400, 404]),
            ("a double slash", "GET //health HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [400, 404]),
            ("an encoded traversal", "POST /webhook/%2e%2e%2fhealth HTTP/1.1\r\nHost: \(h)\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", [400, 401, 404]),
            ("a trailing path segment", "POST /webhook/\(server.credentials.sourceID)/\(marker) HTTP/1.1\r\nHost: \(h)\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", [404]),
            ("GET on a POST route", "GET /webhook HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [405]),
            ("a bare percent in the query", "GET /pair/status?code=% HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [200, 400]),
            ("a bad escape in the query", "GET /pair/status?code=%zz%ff%00 HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [200, 400]),
            ("an 8000-byte code", "GET /pair/status?code=\(String(repeating: "Z", count: 8000)) HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n", [200, 400]),
        ]
        for (name, request, statuses) in cases {
            do {
                let (response, end, _) = try await server.exchange(request)
                #expect(statuses.contains(response.status), "\(name): expected \(statuses.sorted()), got \(response)")
                #expect(!String(decoding: response.raw, as: UTF8.self).contains(marker), "\(name): the request was reflected: \(response)")
                #expect(end == .closed, "\(name): \(String(describing: end))")
                if response.status == 405 { #expect(response.header("Allow") != nil, "\(name): 405 without Allow: \(response)") }
                if response.status == 200 {
                    #expect(try response.json()["status"] == "unknown", "\(name): \(response)")
                }
            } catch {
                Issue.record("\(name): \(error)")
            }
            try await server.expectAlive("after \(name):")
        }
        try await server.expectSurvived()
    }

    @Test func http10WithoutKeepAliveIsAnsweredAndClosed() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }

        for (name, request) in [
            ("HTTP/1.0 with Host", "GET /health HTTP/1.0\r\nHost: \(server.host)\r\n\r\n"),
            ("HTTP/1.0 without Host", "GET /health HTTP/1.0\r\n\r\n"),
        ] {
            let (response, end, after) = try await server.exchange(request)
            #expect(response.status == 200, "\(name): \(response)")
            #expect(response.header("Connection")?.lowercased() == "close", "\(name): \(response)")
            #expect(try response.json()["status"] == "ok", "\(name): \(response)")
            #expect(end == .closed, "\(name): not closed after the answer (\(String(describing: end)))")
            #expect(after.isEmpty, "\(name): \(after)")
        }

        // A signed webhook over HTTP/1.0 is delivered, then the connection closes.
        let marker = server.marker("http10")
        let body = #"{"event":"http10","marker":"\#(marker)"}"#
        var request = String(decoding: server.signedWebhookRequest(body: body, connectionClose: false), as: UTF8.self)
        request = request.replacingOccurrences(of: "POST /webhook HTTP/1.1", with: "POST /webhook HTTP/1.0")
        let (response, end, _) = try await server.exchange(request)
        #expect(response.status == 200, "\(response)")
        #expect(end == .closed, "HTTP/1.0 webhook: \(String(describing: end))")
        _ = try await server.mcp.message("the HTTP/1.0 webhook") {
            $0["params"]?["content"]?.stringValue?.contains(marker) == true
        }
        try await server.expectSurvived()
    }

    @Test func http10WithKeepAliveStaysOpenUntilTheClientStopsAsking() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let socket = try await RawSocket.connect(port: server.port)
        defer { socket.close() }
        let keepAlive = "GET /health HTTP/1.0\r\nHost: \(server.host)\r\nConnection: keep-alive\r\n\r\n"

        for round in 1...3 {
            try await socket.send(keepAlive)
            let response = try await socket.readResponse()
            #expect(response.status == 200, "round \(round): \(response)")
            #expect(response.header("Connection")?.lowercased() == "keep-alive", "round \(round): \(response)")
            #expect(await socket.waitForEnd(timeout: .milliseconds(300)) == nil, "round \(round): closed a keep-alive HTTP/1.0 connection")
        }
        try await socket.send("GET /health HTTP/1.0\r\nHost: \(server.host)\r\n\r\n")
        let last = try await socket.readResponse()
        #expect(last.status == 200, "\(last)")
        #expect(last.header("Connection")?.lowercased() == "close", "\(last)")
        #expect(await socket.waitForEnd(timeout: RawSocket.promptClose) == .closed)
        socket.close()
        try await server.expectSurvived()
    }

    /// A `close` request is answered whole and ended with a FIN, with or without more bytes
    /// behind it (those are drained, not answered, and never turn the close into a reset).
    @Test func aCloseRequestIsEndedCleanlyWithOrWithoutBytesBehindIt() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let close = "GET /health HTTP/1.1\r\nHost: \(server.host)\r\nConnection: close\r\n\r\n"
        let behind = String(repeating: "GET /health HTTP/1.1\r\nHost: \(server.host)\r\n\r\n", count: 200)
        for (name, bytes) in [("nothing behind", close), ("200 requests behind", close + behind)] {
            let socket = try await RawSocket.connect(port: server.port)
            defer { socket.close() }
            try await socket.send(bytes)
            let response = try await socket.readResponse()
            #expect(response.status == 200, "\(name): \(response)")
            #expect(response.header("Connection")?.lowercased() == "close", "\(name): \(response)")
            #expect(await socket.waitForEnd(timeout: RawSocket.promptClose) == .closed, "\(name)")
            #expect(socket.unread.isEmpty, "\(name): answered past the close: \(socket.unread.prefix(80))")
        }
        try await server.expectSurvived()
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host
        let marker = server.marker("pipelined")
        let pairBody = #"{"name":"pipelined"}"#

        var bytes = Data()
        bytes.append(Data("GET /health HTTP/1.1\r\nHost: \(h)\r\n\r\n".utf8))
        bytes.append(Data("POST /pair HTTP/1.1\r\nHost: \(h)\r\nContent-Type: application/json\r\nContent-Length: \(pairBody.utf8.count)\r\n\r\n\(pairBody)".utf8))
        bytes.append(Data("GET /pair/status?code=ZZZZZZ HTTP/1.1\r\nHost: \(h)\r\n\r\n".utf8))
        bytes.append(Data("GET /no-such-route HTTP/1.1\r\nHost: \(h)\r\n\r\n".utf8))
        bytes.append(server.signedWebhookRequest(body: #"{"event":"pipelined","marker":"\#(marker)"}"#, connectionClose: false))
        bytes.append(Data("GET /health HTTP/1.1\r\nHost: \(h)\r\nConnection: close\r\n\r\n".utf8))

        let socket = try await RawSocket.connect(port: server.port)
        defer { socket.close() }
        try await socket.send(bytes)
        var responses: [WireResponse] = []
        for _ in 0..<6 { responses.append(try await socket.readResponse()) }
        #expect(responses.map(\.status) == [200, 200, 200, 404, 200, 200], "\(responses)")
        #expect(try responses[0].json()["status"] == "ok", "\(responses[0])")
        #expect(try responses[1].json()["pairing_code"]?.stringValue != nil, "\(responses[1])")
        #expect(try responses[2].json()["status"] == "unknown", "\(responses[2])")
        #expect(try responses[3].json()["error"] == "not_found", "\(responses[3])")
        #expect(try responses[4].json()["received"] == true, "\(responses[4])")
        #expect(responses[5].header("Connection")?.lowercased() == "close", "\(responses[5])")
        for response in responses.prefix(5) {
            #expect(response.header("Connection")?.lowercased() == "keep-alive", "\(response)")
        }
        #expect(await socket.waitForEnd(timeout: RawSocket.promptClose) == .closed)
        #expect(socket.unread.isEmpty, "extra bytes: \(socket.unread)")
        socket.close()
        _ = try await server.mcp.message("the pipelined webhook") {
            $0["params"]?["content"]?.stringValue?.contains(marker) == true
        }
        if let token = try? responses[1].json()["poll_token"]?.stringValue { server.forbid(token) }
        try await server.expectSurvived()
    }

    /// Requests pipelined behind a bad one are never answered or acted on: the framing of
    /// everything after a refused head is unknown (RFC 9112 section 9.6 / smuggling).
    @Test func nothingPipelinedBehindABadRequestIsServed() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host
        let marker = server.marker("behind-bad")

        var bytes = Data("GET /health HTTP/1.1\r\nHost: \(h)\r\n\r\n".utf8)
        bytes.append(Data("GET /health HTTP/1.1\r\nHost: \(h)\r\nX-Bad: a\u{0}b\r\n\r\n".utf8))
        bytes.append(server.signedWebhookRequest(body: #"{"event":"behind","marker":"\#(marker)"}"#))

        let socket = try await RawSocket.connect(port: server.port)
        defer { socket.close() }
        try await socket.send(bytes)
        let first = try await socket.readResponse()
        let second = try await socket.readResponse()
        #expect(first.status == 200, "\(first)")
        #expect(second.status == 400, "\(second)")
        #expect(second.header("Connection")?.lowercased() == "close", "\(second)")
        #expect(await socket.waitForEnd(timeout: RawSocket.promptClose) == .closed)
        #expect(socket.unread.isEmpty, "answered after the refusal: \(String(decoding: socket.unread.prefix(300), as: UTF8.self))")
        socket.close()

        let delivered = try await server.mcp.channelEventsUntilQuiet()
        #expect(!delivered.contains { $0["content"]?.stringValue?.contains(marker) == true },
                "a webhook pipelined behind a refused request was delivered")
        try await server.expectSurvived()
    }

    @Test func expect100ContinueIsAnsweredWithExactInterimBytes() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let marker = server.marker("continue")
        let body = Data(#"{"event":"continue","marker":"\#(marker)"}"#.utf8)
        let head = "POST /webhook HTTP/1.1\r\nHost: \(server.host)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.count)\r\nExpect: 100-continue\r\n"
            + server.signedFields(body: body).joined(separator: "\r\n") + "\r\nConnection: close\r\n\r\n"

        let socket = try await RawSocket.connect(port: server.port)
        defer { socket.close() }
        try await socket.send(head)
        await socket.wait(timeout: defaultTimeout) { $0.range(of: Data("\r\n\r\n".utf8)) != nil }
        #expect(socket.unread == Data("HTTP/1.1 100 Continue\r\n\r\n".utf8),
                "interim answer: \(String(decoding: socket.unread, as: UTF8.self).debugDescription)")
        let interim = try await socket.readResponse()
        #expect(interim.status == 100)
        try await socket.send(body)
        let final = try await socket.readResponse()
        #expect(final.status == 200, "\(final)")
        #expect(try final.json()["received"] == true, "\(final)")
        #expect(await socket.waitForEnd(timeout: RawSocket.promptClose) == .closed)
        socket.close()
        _ = try await server.mcp.message("the webhook sent after 100 Continue") {
            $0["params"]?["content"]?.stringValue?.contains(marker) == true
        }

        // Over the limit: refused from the head, never invited.
        let tooLarge = "POST /webhook HTTP/1.1\r\nHost: \(server.host)\r\nContent-Type: application/json\r\n"
            + "Content-Length: 1048577\r\nExpect: 100-continue\r\n\r\n"
        let refused = await server.expectRefusal("Expect: 100-continue over the limit", Data(tooLarge.utf8),
                                                 statuses: [413], error: "payload_too_large")
        #expect(refused?.raw.starts(with: Data("HTTP/1.1 413 ".utf8)) == true, "\(String(describing: refused))")

        // HTTP/1.0 clients do not understand 100 Continue (RFC 9110 section 10.1.1).
        let old = try await RawSocket.connect(port: server.port)
        defer { old.close() }
        let oldBody = Data(#"{"name":"old-client"}"#.utf8)
        try await old.send("POST /pair HTTP/1.0\r\nHost: \(server.host)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(oldBody.count)\r\nExpect: 100-continue\r\n\r\n")
        let early = await old.wait(timeout: .milliseconds(600)) { !$0.isEmpty }
        #expect(!early, "sent to an HTTP/1.0 client before its body: \(String(decoding: old.unread, as: UTF8.self).debugDescription)")
        try await old.send(oldBody)
        let oldAnswer = try await old.readResponse()
        #expect(oldAnswer.status == 200, "\(oldAnswer)")
        if let token = try? oldAnswer.json()["poll_token"]?.stringValue { server.forbid(token) }
        old.close()
        try await server.expectSurvived()
    }

    @Test func aClientThatHalfClosesAfterItsRequestStillGetsTheAnswer() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let marker = server.marker("half-close")

        let health = try await RawSocket.connect(port: server.port)
        defer { health.close() }
        try await health.send("GET /health HTTP/1.1\r\nHost: \(server.host)\r\n\r\n")
        health.shutdownWrite()
        let answer = try await health.readResponse()
        #expect(answer.status == 200, "\(answer)")
        #expect(await health.waitForEnd(timeout: RawSocket.promptClose) == .closed)
        health.close()

        let hook = try await RawSocket.connect(port: server.port)
        defer { hook.close() }
        try await hook.send(server.signedWebhookRequest(body: #"{"event":"half","marker":"\#(marker)"}"#, connectionClose: false))
        hook.shutdownWrite()
        let received = try await hook.readResponse()
        #expect(received.status == 200, "\(received)")
        hook.close()
        _ = try await server.mcp.message("the half-closed client's webhook") {
            $0["params"]?["content"]?.stringValue?.contains(marker) == true
        }
        try await server.expectSurvived()
    }
}
