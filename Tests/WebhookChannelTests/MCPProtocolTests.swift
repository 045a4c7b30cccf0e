import Foundation
import Testing

/// The MCP side over stdio (SPEC section 3): handshake, tools list, and JSON-RPC errors that
/// never end the session. Each test starts its own server.
@Suite struct MCPProtocolTests {
    // MARK: Handshake

    @Test(arguments: ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
    func initializeEchoesASupportedProtocolVersion(version: String) async throws {
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }

        let response = try await channel.mcp.initialize(protocolVersion: version)

        #expect(response["error"] == nil, "\(response)")
        #expect(response["result"]?["protocolVersion"] == .string(version), "\(response)")
    }

    @Test func initializeWithUnsupportedVersionAnswersTheNewest() async throws {
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }

        let response = try await channel.mcp.initialize(protocolVersion: "1999-01-01")

        #expect(response["result"]?["protocolVersion"] == .string(MCPTestClient.newestProtocolVersion), "\(response)")
    }

    @Test func initializeNamesTheServerWebhookAndAdvertisesToolsAndChannel() async throws {
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }

        let result = try #require(try await channel.mcp.initialize()["result"])

        #expect(result["serverInfo"]?["name"] == "webhook")
        #expect(result["serverInfo"]?["version"]?.stringValue?.isEmpty == false, "serverInfo.version: \(result)")
        #expect(result["capabilities"]?["tools"]?.objectValue != nil, "capabilities.tools: \(result)")
        #expect(result["capabilities"]?["experimental"]?["claude/channel"]?.objectValue != nil,
                "capabilities.experimental[\"claude/channel\"]: \(result)")
    }

    @Test func instructionsFitInTwoKilobytesAndExplainHowToReply() async throws {
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }

        let result = try #require(try await channel.mcp.initialize()["result"])
        let instructions = try #require(result["instructions"]?.stringValue, "instructions must be a string: \(result)")

        #expect(instructions.utf8.count <= 2048, "instructions are \(instructions.utf8.count) bytes")
        #expect(instructions.contains("webhook_reply"))
        #expect(instructions.contains("source_id"))
        #expect(instructions.contains("Most events need no reply"), "\(instructions)")
        #expect(instructions.contains("only for a source with a callback"), "\(instructions)")
        #expect(instructions.contains(#"replay="true""#) && instructions.contains("do not act on it twice"), "\(instructions)")
    }

    @Test func pingAnswersAnEmptyObjectWithTheRequestID() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":"ping-1","method":"ping"}"#)
        let response = try await channel.mcp.response(to: "ping-1")

        #expect(response == ["jsonrpc": "2.0", "id": "ping-1", "result": [:]])
    }

    @Test func toolsListOffersReplyAndSourcesWithObjectSchemasAndNoPairingTool() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let tools = try #require(try await channel.mcp.result("tools/list")["tools"]?.arrayValue)
        let byName = Dictionary(tools.compactMap { tool in tool["name"]?.stringValue.map { ($0, tool) } },
                                uniquingKeysWith: { first, _ in first })

        for name in ["webhook_reply", "webhook_sources"] {
            let tool = try #require(byName[name], "tools/list lacks \(name): \(tools)")
            #expect(tool["inputSchema"]?["type"] == "object", "\(name).inputSchema: \(tool)")
            #expect(tool["description"]?.stringValue?.isEmpty == false, "\(name).description")
        }
        #expect(byName["webhook_reply"]?["inputSchema"]?["properties"]?["source_id"] != nil)
        #expect(byName["webhook_reply"]?["inputSchema"]?["properties"]?["payload"] != nil)
        // Pairing, approving and secrets stay with the person at the terminal (SPEC 3).
        let forbidden = byName.keys.filter { $0.contains("pair") || $0.contains("approve") || $0.contains("secret") }
        #expect(forbidden.isEmpty, "tools that must not exist: \(forbidden)")
    }

    // MARK: Errors that keep the session alive

    @Test func malformedJSONGetsParseErrorWithNullIDAndSessionContinues() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"#)
        let error = try await channel.mcp.errorWithNullID()

        #expect(error["error"]?["code"] == -32700, "\(error)")
        #expect(error["error"]?["message"]?.stringValue != nil, "\(error)")
        #expect(error["jsonrpc"] == "2.0")
        #expect(try await channel.mcp.result("ping") == [:])
    }

    @Test(arguments: ["42", #""x""#, "true", "null"])
    func jsonThatIsNotAnObjectIsAnInvalidRequest(line: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.mcp.sendLine(line)
        let error = try await channel.mcp.errorWithNullID()

        #expect(error["error"]?["code"] == -32600, "\(line) → \(error)")
        #expect(try await channel.mcp.result("ping") == [:])
    }

    @Test func batchArrayIsAnInvalidRequestAndIsNotExecuted() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.mcp.sendLine(#"[{"jsonrpc":"2.0","id":901,"method":"ping"},{"jsonrpc":"2.0","id":902,"method":"ping"}]"#)
        let error = try await channel.mcp.errorWithNullID()

        #expect(error["error"]?["code"] == -32600, "\(error)")
        #expect(try await channel.mcp.result("ping") == [:])
        let answeredBatchMembers = channel.mcp.transcript.filter { $0["id"] == 901 || $0["id"] == 902 }
        #expect(answeredBatchMembers.isEmpty, "batch members must not run: \(answeredBatchMembers)")
    }

    @Test(arguments: [#"{"a":1}"#, "[1]", "true"])
    func requestWithIllTypedIDIsAnInvalidRequestWithNullID(id: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":\#(id),"method":"ping"}"#)
        let error = try await channel.mcp.errorWithNullID()

        #expect(error["error"]?["code"] == -32600, "id \(id) → \(error)")
        #expect(try await channel.mcp.result("ping") == [:])
    }

    @Test(arguments: [#""req-7""#, "7"])
    func unknownMethodIsMethodNotFoundWithTheSameID(id: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let expectedID = try JSON.parse(id)

        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":\#(id),"method":"no/such/method","params":{}}"#)
        let response = try await channel.mcp.response(to: expectedID)

        #expect(response["error"]?["code"] == -32601, "\(response)")
        #expect(response["result"] == nil)
        #expect(try await channel.mcp.result("ping") == [:])
    }

    @Test func serverDiscoverIsAnsweredMethodNotFound() async throws {
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }

        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":"d1","method":"server/discover","params":{}}"#)
        let response = try await channel.mcp.response(to: "d1")

        #expect(response["error"]?["code"] == -32601, "\(response)")
    }

    @Test func notificationWithUnknownMethodGetsNoAnswer() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.mcp.sendLine(#"{"jsonrpc":"2.0","method":"notifications/no-such-thing","params":{}}"#)
        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":"after","method":"ping"}"#)
        let first = try await channel.mcp.nextMessage()
        try await Task.sleep(for: .milliseconds(300))

        #expect(first == ["jsonrpc": "2.0", "id": "after", "result": [:]], "the notification was answered: \(first)")
        #expect(channel.mcp.transcript.count == 2, "extra messages: \(channel.mcp.transcript)")
    }

    @Test(arguments: [
        #"{"name":"no_such_tool","arguments":{}}"#,
        #"{"name":"webhook_reply"}"#,
        #"{"name":"webhook_reply","arguments":{}}"#,
        #"{"name":"webhook_reply","arguments":{"source_id":5,"payload":{}}}"#,
        #"{"name":"webhook_reply","arguments":"not an object"}"#,
    ])
    func toolsCallWithUnknownToolOrBadArgumentsIsRejected(params: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":"call","method":"tools/call","params":\#(params)}"#)
        let response = try await channel.mcp.response(to: "call")

        // SPEC 3: either a JSON-RPC -32602 error or a tool result flagged isError.
        let invalidParams = response["error"]?["code"] == -32602
        let toolError = response["result"]?["isError"] == true
        #expect(invalidParams || toolError, "\(params) → \(response)")
        #expect(try await channel.mcp.result("ping") == [:])
    }

    @Test func lineOverOneMebibyteIsAnInvalidRequestAndTheNextLineWorks() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let padding = String(repeating: "a", count: 1_048_576 + 1024)
        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":"huge","method":"ping","params":{"pad":"\#(padding)"}}"#)
        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":"next","method":"ping"}"#)

        let error = try await channel.mcp.errorWithNullID()
        #expect(error["error"]?["code"] == -32600, "\(error)")
        let next = try await channel.mcp.response(to: "next")
        #expect(next["result"] == [:], "\(next)")
        #expect(!channel.mcp.transcript.contains { $0["id"] == "huge" }, "the oversized request was executed")
    }

    @Test func lineJustUnderOneMebibyteIsStillServed() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let padding = String(repeating: "b", count: 1_000_000)
        channel.mcp.sendLine(#"{"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":"\#(padding)"}}"#)

        let response = try await channel.mcp.response(to: "big")
        #expect(response["result"] == [:], "\(response)")
    }

    @Test func stdoutCarriesOnlyJSONRPCMessages() async throws {
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }

        // A session that exercises every path that might print: handshake, tools, errors,
        // pairing, a delivered webhook, a refused webhook, then a clean shutdown.
        try await channel.mcp.handshake()
        _ = try await channel.mcp.request("tools/list")
        _ = try await channel.mcp.callTool("webhook_sources", arguments: [:])
        channel.mcp.sendLine("{oops")
        channel.mcp.sendLine("[]")
        _ = try await channel.mcp.request("no/such")
        let credentials = try await channel.http.pairSource(name: "stdout-check")
        _ = try await channel.http.postWebhook(#"{"event":"x"}"#, as: credentials)
        _ = try await channel.mcp.channelEvent()
        _ = try await channel.http.postWebhook(#"{"event":"x"}"#, as: SourceCredentials(sourceID: credentials.sourceID, secret: "whsec_wrong"))
        _ = try await channel.http.get("/health")
        channel.server.closeStdin()
        _ = try await channel.server.child.waitForExit()
        _ = try await poll("stdout to close") { channel.server.stdout.isFinished ? true : nil }

        #expect(channel.mcp.nonProtocolLines.isEmpty, "non-JSON-RPC lines on stdout: \(channel.mcp.nonProtocolLines)")
        #expect(channel.server.stdout.count == channel.mcp.transcript.count)
        #expect(channel.mcp.transcript.count >= 7, "\(channel.mcp.transcript)")
    }
}
