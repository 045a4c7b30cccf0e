import Foundation
import Testing

/// Pairing abuse (issue 4, SPEC sections 4 and 5): `/pair/complete` only from a loopback
/// peer without `Forwarded` / `X-Forwarded-For` (`403`), failed completions rate limited
/// (`429` after 10 within a minute), at most 16 pending codes (`429` for the 17th), and
/// hostile JSON bodies refused with `400` — never a crash, never a 500.
@Suite struct HardeningPairingTests {
    @Test func forwardedHeadersOnPairCompleteAre403AndLeaveTheCodePending() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let ticket = try await server.http.requestPairing(name: "tunnel")
        server.forbid(ticket.pollToken)
        let body = #"{"code":"\#(ticket.code)"}"#

        for field in [
            "Forwarded: for=203.0.113.7", "Forwarded: for=127.0.0.1;proto=http", "FORWARDED: for=\"[::1]\"",
            "X-Forwarded-For: 203.0.113.7", "X-Forwarded-For: 127.0.0.1", "x-forwarded-for: ::1", "X-Forwarded-For: ",
        ] {
            await server.expectRefusal("POST /pair/complete with \(field)",
                                       "POST /pair/complete HTTP/1.1\r\nHost: \(server.host)\r\nContent-Type: application/json\r\n\(field)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)",
                                       status: 403, error: "forbidden")
        }
        try await server.expectAlive("after forwarded completions:")
        let status = try await server.http.get("/pair/status?code=\(ticket.code)")
        #expect(try status.json()["status"] == "pending", "a refused completion consumed the code: \(status)")

        // Refusals of this kind are not failed guesses: the code still completes.
        let credentials = try await server.http.completePairing(code: ticket.code)
        server.forbid(credentials.secret)
        try await server.expectSurvived()
    }

    @Test(.enabled(if: nonLoopbackIPv4() != nil, "needs a non-loopback IPv4 address on this machine"))
    func pairCompleteFromANonLoopbackPeerIs403() async throws {
        // Bound to every interface on purpose, so a connection can arrive from a
        // non-loopback address of this same machine.
        let server = try await HardenedServer.start(environment: ["WEBHOOK_HOST": "0.0.0.0"])
        defer { server.stop() }
        let address = try #require(nonLoopbackIPv4())
        let ticket = try await server.http.requestPairing(name: "remote")
        server.forbid(ticket.pollToken)
        let body = #"{"code":"\#(ticket.code)"}"#
        let request = "POST /pair/complete HTTP/1.1\r\nHost: \(address):\(server.port)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"

        let socket = try await RawSocket.connect(host: address, port: server.port)
        defer { socket.close() }
        try await socket.send(request)
        let response = try await socket.readResponse()
        #expect(response.status == 403, "completion from \(address): \(response)")
        expectJSONErrorBody(response, code: "forbidden", "completion from \(address)")
        #expect(!response.bodyText.contains("whsec_"), "\(response)")
        socket.close()

        // Other routes still answer a remote peer on a non-loopback bind.
        let remoteHealth = try await RawSocket.connect(host: address, port: server.port)
        defer { remoteHealth.close() }
        try await remoteHealth.send("GET /health HTTP/1.1\r\nHost: \(address):\(server.port)\r\nConnection: close\r\n\r\n")
        #expect(try await remoteHealth.readResponse().status == 200)
        remoteHealth.close()

        let status = try await server.http.get("/pair/status?code=\(ticket.code)")
        #expect(try status.json()["status"] == "pending", "\(status)")
        let credentials = try await server.http.completePairing(code: ticket.code)
        server.forbid(credentials.secret)
        #expect(server.stderr.text.contains("warning"), "a non-loopback bind must log a warning")
        try await server.expectSurvived()
    }

    @Test func failedCompletionsAreRateLimitedAfterTen() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        func wrongCode(_ index: Int) -> String {
            // Well-formed codes nobody requested.
            String((0..<6).map { alphabet[(index * 7 + $0 * 3) % alphabet.count] })
        }

        for attempt in 1...10 {
            let response = try await server.http.postJSON("/pair/complete", ["code": .string(wrongCode(attempt))])
            #expect(response.status == 404, "failed attempt \(attempt): \(response)")
            #expect(try response.json()["error"] == "unknown_code", "failed attempt \(attempt): \(response)")
        }
        for attempt in 11...13 {
            let response = try await server.http.postJSON("/pair/complete", ["code": .string(wrongCode(attempt))])
            #expect(response.status == 429, "attempt \(attempt) after 10 failures: \(response)")
            #expect(try response.json()["error"]?.stringValue?.isEmpty == false, "\(response)")
            #expect(response.header("Retry-After") != nil, "\(response)")
        }
        // The lock-out hits the pairing route only: everything else carries on.
        try await server.expectSurvived()
    }

    @Test func pendingPairingsAreCappedAtSixteen() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        var codes = Set<String>()
        for index in 1...16 {
            let ticket = try await server.http.requestPairing(name: "flood-\(index)")
            server.forbid(ticket.pollToken)
            codes.insert(ticket.code)
        }
        #expect(codes.count == 16, "pairing codes repeated: \(codes.sorted())")
        for index in 17...18 {
            let response = try await server.http.postJSON("/pair", ["name": .string("flood-\(index)")])
            #expect(response.status == 429, "pairing request \(index): \(response)")
            #expect(try response.json()["error"] == "too_many_pending", "\(response)")
            #expect(response.header("Retry-After") != nil, "\(response)")
        }
        let health = try await server.http.get("/health")
        #expect(try health.json()["pending"] == 16, "\(health)")
        try await server.expectSurvived()
    }

    @Test func hostileJSONBodiesAre400NeverACrash() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let deepArray = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let deepObject = String(repeating: #"{"a":"#, count: 50_000) + "1" + String(repeating: "}", count: 50_000)
        let json: Set<String> = ["invalid_json"]
        let name: Set<String> = ["invalid_name"]
        let cases: [(String, Data, Set<String>)] = [
            ("100 000 nested arrays", Data(deepArray.utf8), json),
            ("50 000 nested objects", Data(deepObject.utf8), json),
            ("unterminated nesting", Data(String(repeating: "[", count: 200_000).utf8), json),
            ("invalid UTF-8 in a string", Data(#"{"name":""#.utf8) + Data([0xFF, 0xFE]) + Data(#""}"#.utf8), json),
            ("an overlong UTF-8 encoding", Data(#"{"name":""#.utf8) + Data([0xC0, 0xAF]) + Data(#""}"#.utf8), json),
            ("a UTF-8 encoded surrogate", Data(#"{"name":""#.utf8) + Data([0xED, 0xA0, 0x80]) + Data(#""}"#.utf8), json),
            ("a truncated UTF-8 sequence", Data(#"{"name":""#.utf8) + Data([0xE2, 0x82]) + Data(#""}"#.utf8), json),
            ("a raw control byte in a string", Data(#"{"name":"a\#u{01}b"}"#.utf8), json),
            ("a JSON array", Data(#"["name"]"#.utf8), json),
            ("a JSON string", Data(#""name""#.utf8), json),
            ("trailing garbage", Data(#"{"name":"x"} {"#.utf8), json),
            ("an empty body", Data(), json),
            ("a NUL after the object", Data(#"{"name":"x"}"#.utf8) + Data([0]), json),
            ("a 100 000-digit number as name", Data(("{\"name\":1" + String(repeating: "9", count: 100_000) + "}").utf8), json.union(name)),
            ("a name of the wrong type", Data(#"{"name":{"a":1}}"#.utf8), name),
            ("a 10 000-byte name", Data(#"{"name":"\#(String(repeating: "n", count: 10_000))"}"#.utf8), name),
            ("a name with a NUL escape", Data(#"{"name":"a\u0000b"}"#.utf8), name),
            ("a name with a newline escape (log injection)", Data(#"{"name":"a\nwebhook-channel: paired source src_0"}"#.utf8), name),
        ]
        for (label, body, codes) in cases {
            var request = Data("POST /pair HTTP/1.1\r\nHost: \(server.host)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
            request.append(body)
            // Past 64 KiB the unauthenticated JSON routes refuse the body unread.
            let tooLarge = body.count > 64 * 1024
            let expectedCodes = tooLarge ? ["payload_too_large"] : codes
            if let response = await server.expectRefusal("POST /pair with \(label)", request, statuses: [tooLarge ? 413 : 400]) {
                let code = (try? response.json())?["error"]?.stringValue ?? "(none)"
                #expect(expectedCodes.contains(code), "POST /pair with \(label): expected \(expectedCodes.sorted()), got \(response)")
            }
            try await server.expectAlive("after POST /pair with \(label):")
        }
        let health = try await server.http.get("/health")
        #expect(try health.json()["pending"] == 0, "a hostile body created a pairing: \(health)")

        // Signed, then not JSON: 400 invalid_json, not delivered, no crash.
        for (name, text) in [("nested arrays", deepArray), ("nested objects", deepObject)] {
            await server.expectRefusal("a signed webhook of \(name)", server.signedWebhookRequest(body: text),
                                       statuses: [400], error: "invalid_json")
        }
        await server.expectRefusal("/pair/complete with nested arrays",
                                   "POST /pair/complete HTTP/1.1\r\nHost: \(server.host)\r\nContent-Type: application/json\r\nContent-Length: \(deepArray.utf8.count)\r\nConnection: close\r\n\r\n\(deepArray)",
                                   status: 413, error: "payload_too_large")
        try await server.expectSurvived()
    }
}
