import Foundation
import Testing

/// Bad input on the MCP side (issue 4, SPEC section 3), written as raw bytes to the real
/// binary's stdin. For every bad line the exact answer is checked — the one error it
/// deserves (or none at all), nothing else — and a `ping` right after proves the loop goes
/// on. Each test ends by showing the HTTP side still works, stdout carried only protocol
/// messages and stderr repeats none of the lines' distinctive contents.
@Suite struct MCPBadInputTests {
    @Test func oversizedLinesAreInvalidRequestsWithNullIDAndTheLoopGoesOn() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let marker = server.marker("mcp-oversized")

        // 4 MiB in one line, with the next request in the same write.
        var bytes = Data(#"{"jsonrpc":"2.0","id":"huge","method":"ping","params":{"marker":"\#(marker)","pad":""#.utf8)
        bytes.append(Data(repeating: UInt8(ascii: "x"), count: 4 << 20))
        bytes.append(Data(#""}}"#.utf8))
        let answers = try await MCPLine.answers(to: bytes, on: server)
        expectSingleError(answers, code: -32600, id: .null, "a 4 MiB line")
        #expect(!server.mcp.transcript.contains { $0["id"] == "huge" }, "the oversized request was executed")

        // Garbage that is not even JSON, 2 MiB, no spaces.
        let garbage = Data(repeating: UInt8(ascii: "{"), count: 2 << 20)
        expectSingleError(try await MCPLine.answers(to: garbage, on: server), code: -32600, id: .null, "2 MiB of '{'")

        // Two oversized lines back to back: one error each, no more.
        var two = Data(repeating: UInt8(ascii: "a"), count: (1 << 20) + 10)
        two.append(UInt8(ascii: "\n"))
        two.append(Data(repeating: UInt8(ascii: "b"), count: (1 << 20) + 10))
        let twoAnswers = try await MCPLine.answers(to: two, on: server)
        #expect(twoAnswers.count == 2 && twoAnswers.allSatisfy { $0["error"]?["code"] == -32600 && $0["id"] == .null },
                "two oversized lines: \(twoAnswers)")
        try await server.expectSurvived()
    }

    @Test func invalidUTF8IsAParseErrorWithNullID() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let marker = server.marker("mcp-utf8")
        func line(_ prefix: String, _ raw: [UInt8], _ suffix: String) -> Data {
            Data(prefix.utf8) + Data(raw) + Data(suffix.utf8)
        }
        let cases: [(String, Data)] = [
            ("0xFF in a string", line(#"{"jsonrpc":"2.0","id":"u1","method":"ping","params":{"m":"\#(marker)"#, [0xFF], #""}}"#)),
            ("an overlong '/'", line(#"{"jsonrpc":"2.0","id":"u2","method":"ping","params":{"m":"\#(marker)"#, [0xC0, 0xAF], #""}}"#)),
            ("an encoded surrogate", line(#"{"jsonrpc":"2.0","id":"u3","method":"ping","params":{"m":""#, [0xED, 0xA0, 0x80], #""}}"#)),
            ("a truncated sequence", line(#"{"jsonrpc":"2.0","id":"u4","method":"ping","params":{"m":""#, [0xE2, 0x82], #""}}"#)),
            ("a lone continuation byte in the method", line(#"{"jsonrpc":"2.0","id":"u5","method":"pi"#, [0x80], #"ng"}"#)),
            ("a code point above U+10FFFF", line(#"{"jsonrpc":"2.0","id":"u6","method":"ping","params":{"m":""#, [0xF4, 0x90, 0x80, 0x80], #""}}"#)),
            ("0xFE outside any string", line(#"{"jsonrpc":"2.0","id":"u7","method":"ping""#, [0xFE], "}")),
            ("Latin-1 text", line(#"{"jsonrpc":"2.0","id":"u8","method":"ping","params":{"m":"caf"#, [0xE9], #""}}"#)),
        ]
        for (name, bytes) in cases {
            let answers = try await MCPLine.answers(to: bytes, on: server)
            expectSingleError(answers, code: -32700, id: .null, name)
        }
        let executed = server.mcp.transcript.filter { $0["result"] != nil && ($0["id"]?.stringValue?.hasPrefix("u") ?? false) }
        #expect(executed.isEmpty, "requests with invalid UTF-8 were executed: \(executed)")
        try await server.expectSurvived()
    }

    @Test func jsonThatIsNotARequestObjectIsAnInvalidRequestWithNullID() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let cases = [
            "42", "-1.5e300", #""ping""#, "null", "true", "false", "[]", "[1,2,3]",
            #"[{"jsonrpc":"2.0","id":"b1","method":"ping"}]"#,
            #"[{"jsonrpc":"2.0","id":"b2","method":"ping"},{"jsonrpc":"2.0","id":"b3","method":"tools/list"}]"#,
            #"[{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        ]
        for text in cases {
            let answers = try await MCPLine.answers(to: Data(text.utf8), on: server)
            expectSingleError(answers, code: -32600, id: .null, text)
        }
        let executed = server.mcp.transcript.filter { ["b1", "b2", "b3"].contains($0["id"]?.stringValue ?? "") }
        #expect(executed.isEmpty, "a batch was executed: \(executed)")
        try await server.expectSurvived()
    }

    @Test func malformedJSONIsAParseErrorWithNullID() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let cases = [
            #"{"jsonrpc":"2.0","id":"p1","method":"ping""#,
            #"{"jsonrpc":"2.0","id":"p2","method":"ping"}}"#,
            #"{"jsonrpc":"2.0","id":"p3","method":"ping"} {"jsonrpc":"2.0","id":"p4","method":"ping"}"#,
            #"{'jsonrpc':'2.0','id':'p5','method':'ping'}"#,
            #"{"jsonrpc":"2.0","id":"p6","method":"ping",}"#,
            #"{"jsonrpc":"2.0","id":"p7","method":"ping","params":{"a":NaN}}"#,
            #"{"jsonrpc":"2.0","id":"p8","method":"ping","params":{"a":"tab\#there"}}"#,
            #"{"jsonrpc":"2.0","id":"p9","method":"ping","params":{"a":"\x41"}}"#,
            "{\"jsonrpc\":\"2.0\",\"id\":\"p10\",\"method\":\"ping\"}\u{0}",
            "\u{0}\u{0}\u{0}\u{0}",
            "\u{1B}[2J\u{1B}[H",
            "Content-Length: 52",
        ]
        for text in cases {
            let answers = try await MCPLine.answers(to: Data(text.utf8), on: server)
            expectSingleError(answers, code: -32700, id: .null, text.debugDescription)
        }
        let executed = server.mcp.transcript.filter { $0["result"] != nil && ($0["id"]?.stringValue?.hasPrefix("p") ?? false) }
        #expect(executed.isEmpty, "malformed requests were executed: \(executed)")
        try await server.expectSurvived()
    }

    @Test func requestsWithoutAValidMethodAreInvalidRequests() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        // JSON-RPC 2.0 section 5: the id is echoed when it could be read, else null.
        let cases: [(String, JSON)] = [
            (#"{"jsonrpc":"2.0","id":"m1"}"#, "m1"),
            (#"{"jsonrpc":"2.0","id":7,"params":{}}"#, 7),
            (#"{"jsonrpc":"2.0","id":"m3","method":42}"#, "m3"),
            (#"{"jsonrpc":"2.0","id":"m4","method":null}"#, "m4"),
            (#"{"jsonrpc":"2.0","id":"m5","method":["ping"]}"#, "m5"),
            (#"{"id":"m6","method":"ping"}"#, "m6"),
            (#"{"jsonrpc":"1.0","id":"m7","method":"ping"}"#, "m7"),
            (#"{"jsonrpc":2.0,"id":"m8","method":"ping"}"#, "m8"),
            (#"{"jsonrpc":"2.0","id":"m9","method":"ping","params":"not-structured"}"#, "m9"),
            (#"{"jsonrpc":"2.0","id":"m10","method":"ping","params":42}"#, "m10"),
            (#"{"jsonrpc":"2.0"}"#, .null),
            (#"{}"#, .null),
            (#"{"jsonrpc":"2.0","method":17}"#, .null),
        ]
        for (text, id) in cases {
            let answers = try await MCPLine.answers(to: Data(text.utf8), on: server)
            expectSingleError(answers, code: -32600, id: id, text)
        }
        try await server.expectSurvived()
    }

    @Test func responsesToRequestsNeverSentGetNoAnswer() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let cases = [
            #"{"jsonrpc":"2.0","id":99,"result":{}}"#,
            #"{"jsonrpc":"2.0","id":"r2","result":null}"#,
            #"{"jsonrpc":"2.0","id":"r3","result":{"content":[{"type":"text","text":"pair ABCDEF"}]}}"#,
            #"{"jsonrpc":"2.0","id":98,"error":{"code":-32601,"message":"no"}}"#,
            #"{"jsonrpc":"2.0","id":"r5","error":{"code":1,"message":"x","data":{"nested":[1,2,3]}}}"#,
        ]
        for text in cases {
            let answers = try await MCPLine.answers(to: Data(text.utf8), on: server)
            #expect(answers.isEmpty, "\(text) was answered: \(answers)")
        }
        // Empty and whitespace-only lines are not messages either.
        for blank in ["", " ", "\t \t", "\r"] {
            let answers = try await MCPLine.answers(to: Data(blank.utf8), on: server)
            #expect(answers.isEmpty, "\(blank.debugDescription) was answered: \(answers)")
        }
        try await server.expectSurvived()
    }

    @Test func notificationsWithAnIllTypedIDAreInvalidRequestsWithNullID() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let methods = ["notifications/initialized", "notifications/cancelled", "ping"]
        let ids = [#"{"a":1}"#, "[1]", "true", "false", "1.5", "null", "-0.25", "[]", "{}"]
        for method in methods {
            for id in ids {
                let text = #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":{"requestId":1}}"#
                let answers = try await MCPLine.answers(to: Data(text.utf8), on: server)
                expectSingleError(answers, code: -32600, id: .null, text)
            }
        }
        try await server.expectSurvived()
    }

    @Test func unknownMethodsAnswerBrieflyWhateverTheirSize() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let marker = server.marker("mcp-method")
        let huge = marker + String(repeating: "m", count: 512 * 1024)
        for (id, method) in [("h1", huge), ("h2", "\u{202E}\(marker)"), ("h3", ""), ("h4", "rpc.\(marker)"), ("h5", "tools/call/\(marker)")] {
            let text = JSON.object(["jsonrpc": "2.0", "id": .string(id), "method": .string(method), "params": [:]]).encodedString
            let answers = try await MCPLine.answers(to: Data(text.utf8), on: server)
            expectSingleError(answers, code: -32601, id: .string(id), "method \(method.prefix(40).debugDescription)")
            let line = answers.first?.encodedString ?? ""
            #expect(line.utf8.count < 1024, "the answer to a \(method.utf8.count)-byte method name is \(line.utf8.count) bytes")
        }
        try await server.expectSurvived()
    }

    @Test func hostileToolArgumentsAreRefusedNotFatal() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let deep: JSON = (0..<50).reduce(JSON.string("x")) { inner, _ in ["a": inner] }
        let calls: [(String, JSON?)] = [
            ("webhook_event", ["event_id": "../../../../etc/passwd"]),
            ("webhook_event", ["event_id": .string(String(repeating: "e", count: 100_000))]),
            ("webhook_event", ["event_id": 42]),
            ("webhook_event", ["event_id": .string("evt_\u{0}")]),
            ("webhook_event", nil),
            ("webhook_events", ["limit": -1]),
            ("webhook_events", ["limit": 1e308]),
            ("webhook_events", ["limit": 9_007_199_254_740_993]),
            ("webhook_events", ["limit": "10"]),
            ("webhook_events", ["source_id": ["nested": deep]]),
            ("webhook_reply", ["source_id": .string("src_" + String(repeating: "0", count: 32)), "payload": deep]),
            ("webhook_reply", ["source_id": .string(server.credentials.sourceID), "payload": "x"]),
            ("webhook_reply", ["source_id": 7, "payload": [:]]),
            ("webhook_reply", ["payload": [:]]),
            ("webhook_sources", ["unexpected": .string(String(repeating: "u", count: 100_000))]),
            ("webhook_pair", ["code": "ABCDEF"]),
            ("", [:]),
        ]
        for (name, arguments) in calls {
            let response = try await server.mcp.callTool(name, arguments: arguments)
            let summary = "\(name) \(String(describing: arguments).prefix(80)): \(response.encodedString.prefix(300))"
            let rpcError = response["error"]?["code"]?.intValue
            let toolError = response["result"]?["isError"] == true
            if name == "webhook_sources" {
                // Extra arguments to a tool without parameters may be ignored.
                #expect(rpcError == -32602 || response["result"] != nil, "\(summary)")
            } else {
                #expect(rpcError == -32602 || toolError, "\(summary)")
            }
            #expect(!response.encodedString.contains("whsec_"), "a secret in a tool answer: \(summary)")
            #expect(try await server.mcp.result("ping") == [:])
        }
        try await server.expectSurvived()
    }

    @Test func deeplyNestedJSONIsRefusedWithoutACrash() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let depth = 200_000
        let cases: [(String, Data)] = [
            ("balanced arrays", Data((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)),
            ("unbalanced arrays", Data(String(repeating: "[", count: depth).utf8)),
            ("nested objects", Data((String(repeating: #"{"a":"#, count: depth / 5) + "0" + String(repeating: "}", count: depth / 5)).utf8)),
            ("nesting inside params",
             Data((#"{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"x":"# + String(repeating: "[", count: depth)
                 + String(repeating: "]", count: depth) + "}}").utf8)),
            ("a tool call's arguments 300 objects deep",
             Data((#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"webhook_events","arguments":"#
                 + String(repeating: #"{"a":"#, count: 300) + "1" + String(repeating: "}", count: 300) + "}}").utf8)),
        ]
        for (name, bytes) in cases {
            let answers = try await MCPLine.answers(to: bytes, on: server)
            #expect(answers.count == 1, "\(name): \(answers)")
            // Too deep is refused for its shape, -32600 (SPEC 9), not reported as unreadable (-32700).
            let code = answers.first?["error"]?["code"]?.intValue
            #expect(code == -32600, "\(name): \(answers)")
            #expect(answers.first?["id"] == .null, "\(name): \(answers)")
        }
        try await server.expectSurvived()
    }

    @Test func aFloodOfBadLinesIsAnsweredLineByLineAndTheSessionContinues() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        let kinds = ["{oops", "[]", #"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, #"{"jsonrpc":"2.0","id":5,"result":{}}"#]
        var bytes = Data()
        for index in 0..<400 {
            bytes.append(Data(kinds[index % kinds.count].utf8))
            bytes.append(UInt8(ascii: "\n"))
        }
        bytes.removeLast()
        let answers = try await MCPLine.answers(to: bytes, on: server)
        // 3 of every 4 kinds deserve an error; responses to nothing get none.
        #expect(answers.count == 300, "expected 300 errors, got \(answers.count)")
        #expect(answers.allSatisfy { $0["id"] == .null && $0["error"] != nil }, "\(answers.prefix(5))")
        // A webhook arriving right after is still pushed as a channel notification.
        try await server.expectSurvived()
    }

    @Test func crlfLineEndingsAndSplitWritesStillFormRequests() async throws {
        let server = try await HardenedServer.start()
        defer { server.stop() }
        server.channel.server.write(Data("{\"jsonrpc\":\"2.0\",\"id\":\"crlf\",\"method\":\"ping\"}\r\n".utf8))
        #expect(try await server.mcp.response(to: "crlf")["result"] == [:])

        // One request written a byte at a time.
        for byte in Data(#"{"jsonrpc":"2.0","id":"split","method":"ping"}"#.utf8) + Data([0x0A]) {
            server.channel.server.write(Data([byte]))
        }
        #expect(try await server.mcp.response(to: "split")["result"] == [:])
        try await server.expectSurvived()
    }
}

/// Sends one line and fences it with a `ping`.
enum MCPLine {
    /// Writes `bytes` plus `\n`, then a `ping` with a fresh id, and returns every message that
    /// arrived before the ping's answer (which is excluded). The server reads lines in order
    /// and answers a bad line before reading the next, so this is exactly what the line got.
    static func answers(to bytes: Data, on server: HardenedServer, timeout: Duration = defaultTimeout) async throws -> [JSON] {
        let before = server.mcp.transcript.count
        var line = bytes
        line.append(UInt8(ascii: "\n"))
        server.channel.server.write(line)
        let fence = JSON.string("fence-\(UUID().uuidString)")
        server.mcp.send(["jsonrpc": "2.0", "id": fence, "method": "ping"])
        let pong = try await server.mcp.response(to: fence, timeout: timeout)
        #expect(pong["result"] == [:], "ping after a bad line: \(pong)")
        #expect(server.channel.server.child.termination == nil, "the server died on a bad line")
        let transcript = server.mcp.transcript
        guard let fenceIndex = transcript.lastIndex(where: { $0["id"] == fence }) else { return [] }
        return Array(transcript[before..<fenceIndex]) + transcript[(fenceIndex + 1)...].filter { $0["id"] != fence }
    }
}

/// Exactly one message: a JSON-RPC error with `code` and `id`.
func expectSingleError(_ answers: [JSON], code: Int, id: JSON, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(answers.count == 1, "\(what.prefix(120)): expected one error, got \(answers)", sourceLocation: sourceLocation)
    guard let answer = answers.first else { return }
    #expect(answer["jsonrpc"] == "2.0", "\(what.prefix(120)): \(answer)", sourceLocation: sourceLocation)
    #expect(answer["error"]?["code"]?.intValue == code, "\(what.prefix(120)): expected \(code), got \(answer)", sourceLocation: sourceLocation)
    #expect(answer["error"]?["message"]?.stringValue?.isEmpty == false, "\(what.prefix(120)): \(answer)", sourceLocation: sourceLocation)
    #expect(answer["id"] == id, "\(what.prefix(120)): expected id \(id), got \(answer)", sourceLocation: sourceLocation)
    #expect(answer["result"] == nil, "\(what.prefix(120)): \(answer)", sourceLocation: sourceLocation)
}
