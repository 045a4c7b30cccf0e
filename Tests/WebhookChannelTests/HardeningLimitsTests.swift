import Foundation
import Testing

/// Size limits on the wire (issue 4, SPEC section 5): request line 8 KiB (`414`), header
/// section 16 KiB and 100 fields (`431`), body 1 MiB by default or `WEBHOOK_MAX_BODY_BYTES`
/// (`413`, from `Content-Length` before the body is read), chunked bodies decoded under the
/// same limit with malformed chunks refused (`400`). Each limit is probed at its exact edge.
@Suite struct HardeningLimitsTests {
    @Test func requestLineOver8KiBIs414() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host

        // "GET " + target + " HTTP/1.1" is exactly 8192 bytes: still served.
        func requestLine(length: Int) -> String {
            let fixed = "GET /health?pad= HTTP/1.1".utf8.count
            let target = "/health?pad=" + String(repeating: "a", count: length - fixed)
            return "GET \(target) HTTP/1.1"
        }
        let atLimit = requestLine(length: 8192)
        #expect(atLimit.utf8.count == 8192)
        let (ok, end, _) = try await server.exchange("\(atLimit)\r\nHost: \(h)\r\nConnection: close\r\n\r\n")
        #expect(ok.status == 200, "an 8192-byte request line: \(ok)")
        #expect(end == .closed)

        await server.expectRefusal("an 8193-byte request line", "\(requestLine(length: 8193))\r\nHost: \(h)\r\n\r\n",
                                   status: 414, error: "uri_too_long")
        try await server.expectAlive("after 8193 bytes:")
        await server.expectRefusal("a 64 KiB request line", "\(requestLine(length: 65_536))\r\nHost: \(h)\r\n\r\n",
                                   status: 414, error: "uri_too_long")
        try await server.expectAlive("after 64 KiB:")
        // A megabyte with no line end at all: refused once 8 KiB have arrived, not buffered.
        let endless = "GET /" + String(repeating: "b", count: 1 << 20)
        await server.expectRefusal("1 MiB of request line without CRLF", Data(endless.utf8), statuses: [414], error: "uri_too_long")
        try await server.expectSurvived()
    }

    @Test func headerSectionOver16KiBIs431() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let hostLine = "Host: \(server.host)\r\n"
        let closeLine = "Connection: close\r\n"

        // The field lines with their CRLFs (request line and final empty line excluded).
        func head(sectionBytes: Int) -> String {
            let padPrefix = "X-Pad: "
            let padLength = sectionBytes - hostLine.utf8.count - closeLine.utf8.count - padPrefix.utf8.count - 2
            let section = hostLine + closeLine + padPrefix + String(repeating: "p", count: padLength) + "\r\n"
            precondition(section.utf8.count == sectionBytes)
            return "GET /health HTTP/1.1\r\n" + section + "\r\n"
        }
        let (ok, _, _) = try await server.exchange(head(sectionBytes: 16_384))
        #expect(ok.status == 200, "a 16384-byte header section: \(ok)")

        await server.expectRefusal("a 16385-byte header section", head(sectionBytes: 16_385), status: 431, error: "headers_too_large")
        try await server.expectAlive("after 16385 bytes:")
        await server.expectRefusal("one 64 KiB header", head(sectionBytes: 65_536), status: 431, error: "headers_too_large")
        try await server.expectAlive("after 64 KiB:")
        let many = (0..<400).map { "X-Field-\($0): \(String(repeating: "v", count: 60))\r\n" }.joined()
        await server.expectRefusal("400 fields of 80 bytes", "GET /health HTTP/1.1\r\n\(hostLine)\(many)\r\n",
                                   status: 431, error: "headers_too_large")
        try await server.expectSurvived()
    }

    @Test func moreThan100HeaderFieldsIs431() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        func head(fields: Int) -> String {
            let extra = (0..<(fields - 2)).map { "X-F\($0): \($0)\r\n" }.joined()
            return "GET /health HTTP/1.1\r\nHost: \(server.host)\r\nConnection: close\r\n\(extra)\r\n"
        }
        let (ok, _, _) = try await server.exchange(head(fields: 100))
        #expect(ok.status == 200, "100 fields: \(ok)")
        await server.expectRefusal("101 fields", head(fields: 101), status: 431, error: "headers_too_large")
        try await server.expectAlive("after 101 fields:")
        await server.expectRefusal("1000 empty fields", "GET /health HTTP/1.1\r\nHost: \(server.host)\r\n"
            + String(repeating: "X-E:\r\n", count: 1000) + "\r\n", status: 431, error: "headers_too_large")
        try await server.expectSurvived()
    }

    @Test func bodyOverTheDefaultLimitIsRefusedFromContentLengthBeforeItIsRead() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host

        // Only the head is sent: the answer must not wait for a body.
        for (route, length) in [("/webhook", "1048577"), ("/webhook", "99999999999"), ("/pair", "1048577"),
                                ("/webhook/\(server.credentials.sourceID)", "1048577")] {
            let head = "POST \(route) HTTP/1.1\r\nHost: \(h)\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\r\n"
            await server.expectRefusal("Content-Length \(length) on \(route), head only", head, status: 413, error: "payload_too_large")
            try await server.expectAlive("after Content-Length \(length):")
        }

        // The body actually sent: refused, drained, closed in order.
        var twoMiB = Data("POST /webhook HTTP/1.1\r\nHost: \(h)\r\nContent-Type: application/json\r\nContent-Length: \(2 << 20)\r\n\r\n".utf8)
        twoMiB.append(Data(repeating: UInt8(ascii: "x"), count: 2 << 20))
        await server.expectRefusal("a 2 MiB body", twoMiB, statuses: [413], error: "payload_too_large")
        try await server.expectAlive("after a 2 MiB body:")

        // Exactly 1 MiB, signed: accepted and delivered.
        let marker = server.marker("one-mebibyte")
        let prefix = #"{"event":"big","marker":"\#(marker)","pad":""#
        let suffix = #""}"#
        let body = prefix + String(repeating: "m", count: (1 << 20) - prefix.utf8.count - suffix.utf8.count) + suffix
        #expect(body.utf8.count == 1 << 20)
        let (accepted, _, _) = try await server.exchange(server.signedWebhookRequest(body: body))
        #expect(accepted.status == 200, "a 1 MiB signed webhook: \(accepted)")
        _ = try await server.mcp.message("the 1 MiB webhook") {
            $0["params"]?["content"]?.stringValue?.contains(marker) == true
        }
        try await server.expectSurvived()
    }

    /// SPEC 9, memory under 64 MiB: many large bodies arriving slowly at once are held only up
    /// to a budget (16 MiB); past it a new one is refused `503 busy` at its head, not held.
    /// Once they are gone, a large webhook is taken again.
    @Test func manyLargeBodiesArrivingAtOnceAreHeldOnlyUpToABudgetAndTheRestRefused() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let h = server.host
        let length = 1_000_000
        var senders: [RawSocket] = []
        defer { senders.forEach { $0.close() } }
        // Each sends its head and half its body, then waits.
        let half = Data(repeating: UInt8(ascii: "x"), count: length / 2)
        for _ in 0..<40 {
            let socket = try await RawSocket.connect(port: server.port)
            senders.append(socket)
            var partial = Data("POST /webhook HTTP/1.1\r\nHost: \(h)\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\r\n".utf8)
            partial.append(half)
            _ = await socket.trySend(partial)
        }
        // Answered after every head above was read (each connection's first read has its head).
        try await server.expectAlive("after 40 half-sent bodies:")
        var refused = 0
        for socket in senders {
            // A refusal is waiting already; a held body gets no answer until its timeout.
            guard let response = try? await socket.readResponse(timeout: .milliseconds(500)), response.status != 408 else { continue }
            #expect(response.status == 503, "\(response)")
            expectJSONErrorBody(response, code: "busy", "past the body budget")
            #expect(response.header("Retry-After") != nil, "\(response)")
            refused += 1
        }
        #expect(refused >= 20 && refused <= 25, "\(refused) of 40 half-sent 1 MB bodies refused (16 MiB budget)")
        let peak = try Durability.peakResidentBytes(of: server.pid)
        #expect(peak < 64 << 20, "VmHWM \(peak >> 20) MiB")

        senders.forEach { $0.close() }
        senders = []
        let marker = server.marker("after-budget")
        let prefix = #"{"event":"big","marker":"\#(marker)","pad":""#
        let body = prefix + String(repeating: "m", count: 500_000) + #""}"#
        var status: Int?
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while status != 200 && ContinuousClock.now < deadline {
            status = try? await server.exchange(server.signedWebhookRequest(body: body)).response.status
            if status != 200 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(status == 200, "a large webhook after the others left: \(status.map(String.init) ?? "none")")
    }

    /// The same budget holds for chunked bodies, which announce no length: each reserves what
    /// it holds as it grows, and past the budget it is refused.
    @Test func manyLargeChunkedBodiesArrivingAtOnceAreHeldOnlyUpToTheBudget() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        var senders: [RawSocket] = []
        defer { senders.forEach { $0.close() } }
        var partial = Data("POST /webhook HTTP/1.1\r\nHost: \(server.host)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        for _ in 0..<15 {
            partial.append(Data("F000\r\n".utf8))
            partial.append(Data(repeating: UInt8(ascii: "x"), count: 0xF000))
            partial.append(Data("\r\n".utf8))
        }
        for _ in 0..<40 {
            let socket = try await RawSocket.connect(port: server.port)
            senders.append(socket)
            _ = await socket.trySend(partial)
        }
        try await server.expectAlive("after 40 unfinished chunked bodies:")
        var refused = 0
        for socket in senders {
            guard let response = try? await socket.readResponse(timeout: .milliseconds(500)), response.status != 408 else { continue }
            #expect(response.status == 503, "\(response)")
            refused += 1
        }
        #expect(refused >= 15, "\(refused) of 40 unfinished 900 KiB chunked bodies refused (16 MiB budget)")
        let peak = try Durability.peakResidentBytes(of: server.pid)
        #expect(peak < 64 << 20, "VmHWM \(peak >> 20) MiB")
    }

    @Test func configuredBodyLimitAppliesToLengthAndChunkedBodies() async throws {
        let server = try await HardenedServer.start(environment: ["WEBHOOK_MAX_BODY_BYTES": "2048"])
        defer { server.stop() }
        let h = server.host

        func body(_ size: Int, _ marker: String) -> String {
            let prefix = #"{"event":"sized","marker":"\#(marker)","pad":""#
            return prefix + String(repeating: "s", count: size - prefix.utf8.count - 2) + #""}"#
        }
        func chunked(_ text: String, extraFields: [String] = []) -> Data {
            let data = Data(text.utf8)
            var chunks = ""
            var rest = Substring(text)
            while !rest.isEmpty {
                let piece = rest.prefix(700)
                chunks += String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n"
                rest = rest.dropFirst(piece.count)
            }
            let head = ["POST /webhook HTTP/1.1", "Host: \(h)", "Content-Type: application/json", "Transfer-Encoding: chunked",
                        "Connection: close"] + server.signedFields(body: data) + extraFields
            return Data((head.joined(separator: "\r\n") + "\r\n\r\n" + chunks + "0\r\n\r\n").utf8)
        }

        let exact = server.marker("exact-limit")
        let (ok, _, _) = try await server.exchange(server.signedWebhookRequest(body: body(2048, exact)))
        #expect(ok.status == 200, "a 2048-byte body under a 2048-byte limit: \(ok)")
        _ = try await server.mcp.message("the 2048-byte webhook") { $0["params"]?["content"]?.stringValue?.contains(exact) == true }

        let over = server.marker("over-limit")
        await server.expectRefusal("a signed 2049-byte body", server.signedWebhookRequest(body: body(2049, over)),
                                   statuses: [413], error: "payload_too_large")
        await server.expectRefusal("Content-Length 2049, head only",
                                   "POST /webhook HTTP/1.1\r\nHost: \(h)\r\nContent-Type: application/json\r\nContent-Length: 2049\r\n\r\n",
                                   status: 413, error: "payload_too_large")
        try await server.expectAlive("after 2049 bytes:")

        let chunkedExact = server.marker("chunked-exact")
        let (chunkedOK, _, _) = try await server.exchange(chunked(body(2048, chunkedExact)))
        #expect(chunkedOK.status == 200, "a chunked 2048-byte body: \(chunkedOK)")
        _ = try await server.mcp.message("the chunked 2048-byte webhook") {
            $0["params"]?["content"]?.stringValue?.contains(chunkedExact) == true
        }
        let chunkedOver = server.marker("chunked-over")
        await server.expectRefusal("a chunked 2049-byte body", chunked(body(2049, chunkedOver)), statuses: [413], error: "payload_too_large")
        await server.expectRefusal("a chunk size over the limit, before its data",
                                   "POST /webhook HTTP/1.1\r\nHost: \(h)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n801\r\n",
                                   status: 413, error: "payload_too_large")
        try await server.expectAlive("after chunked bodies over the limit:")

        let delivered = try await server.mcp.channelEventsUntilQuiet()
        for refused in [over, chunkedOver] {
            #expect(!delivered.contains { $0["content"]?.stringValue?.contains(refused) == true }, "\(refused) was delivered")
        }
        try await server.expectSurvived()
    }

    @Test func malformedChunkedBodiesAre400() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let head = "POST /webhook HTTP/1.1\r\nHost: \(server.host)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"

        let cases: [(String, String)] = [
            ("chunk-size overflowing 64 bits", "10000000000000000\r\nx\r\n0\r\n\r\n"),
            ("chunk-size of twenty f", "ffffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
            ("non-hex chunk-size", "zz\r\nhello\r\n0\r\n\r\n"),
            ("chunk-size with 0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
            ("negative chunk-size", "-5\r\nhello\r\n0\r\n\r\n"),
            ("empty chunk-size line", "\r\nhello\r\n0\r\n\r\n"),
            ("chunk-size with leading space", " 5\r\nhello\r\n0\r\n\r\n"),
            ("chunk-size followed by garbage", "5 x\r\nhello\r\n0\r\n\r\n"),
            ("chunk data not followed by CRLF", "5\r\nhelloXX\r\n0\r\n\r\n"),
            ("chunk data followed by a bare LF", "5\r\nhello\n0\r\n\r\n"),
            ("chunk-size line ended by a bare LF", "5\nhello\r\n0\r\n\r\n"),
            ("NUL in a chunk extension", "5;a=\u{0}\r\nhello\r\n0\r\n\r\n"),
            ("obs-fold in the trailer", "5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"),
            ("trailer line without a colon", "5\r\nhello\r\n0\r\nbroken\r\n\r\n"),
        ]
        for (name, body) in cases {
            await server.expectRefusal(name, head + body, status: 400, error: "bad_request")
            try await server.expectAlive("after \(name):")
        }
        await server.expectRefusal("a chunk-size line over 4 KiB", head + "5;" + String(repeating: "e", count: 8192) + "\r\n",
                                   status: 400, error: "bad_request")
        await server.expectRefusal("a chunk over the 1 MiB limit, before its data", head + "100001\r\n",
                                   status: 413, error: "payload_too_large")
        try await server.expectAlive("after oversized chunks:")

        // A valid chunked webhook with extensions and a trailer is still delivered.
        let marker = server.marker("chunked-ok")
        let body = #"{"event":"chunked","marker":"\#(marker)"}"#
        let data = Data(body.utf8)
        let split = body.utf8.count / 2
        let first = String(decoding: data.prefix(split), as: UTF8.self)
        let second = String(decoding: data.dropFirst(split), as: UTF8.self)
        let fields = ["POST /webhook HTTP/1.1", "Host: \(server.host)", "Content-Type: application/json",
                      "Transfer-Encoding: chunked", "Connection: close"] + server.signedFields(body: data)
        let request = fields.joined(separator: "\r\n") + "\r\n\r\n"
            + String(first.utf8.count, radix: 16) + ";name=value\r\n" + first + "\r\n"
            + String(second.utf8.count, radix: 16).uppercased() + "\r\n" + second + "\r\n"
            + "0\r\nX-Trailer: ignored\r\n\r\n"
        let (response, end, _) = try await server.exchange(request)
        #expect(response.status == 200, "\(response)")
        #expect(end == .closed)
        _ = try await server.mcp.message("the chunked webhook") { $0["params"]?["content"]?.stringValue?.contains(marker) == true }
        try await server.expectSurvived()
    }
}
