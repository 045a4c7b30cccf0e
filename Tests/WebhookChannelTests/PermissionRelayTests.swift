import Foundation
import Testing

/// The permission relay end to end (SPEC 12, README "Permission relay"): Claude Code's prompt
/// reaches every approver's callback signed like a reply, and a `v1=`-signed verdict from an
/// approver becomes exactly one `notifications/claude/channel/permission` — never a channel
/// event; everything else approves nothing.
@Suite struct PermissionRelayTests {
    static let requestMethod = "notifications/claude/channel/permission_request"
    static let verdictMethod = "notifications/claude/channel/permission"

    /// A started channel with one approver source whose callback is `receiver`.
    struct Relay {
        let channel: TestChannel
        let receiver: CallbackReceiver
        let approver: SourceCredentials
        let initializeResult: JSON

        func stop() {
            receiver.stop()
            channel.stop()
        }
    }

    /// Pairs a source with a callback, makes it an approver at the terminal, then opens the
    /// MCP session (the capability is decided at `initialize`).
    static func startRelay() async throws -> Relay {
        let channel = try await TestChannel.start(handshake: false)
        do {
            let receiver = try CallbackReceiver(statuses: [200])
            let approver = try await channel.http.pairSource(name: "phone", callbackURL: receiver.url())
            let run = try await runCLI(["approver", approver.sourceID, "on"], stateDir: channel.stateDir)
            guard run.exitCode == 0 else { throw HarnessError("approver on failed: \(run)") }
            let result = try await channel.mcp.handshake()
            return Relay(channel: channel, receiver: receiver, approver: approver, initializeResult: result)
        } catch {
            channel.stop()
            throw error
        }
    }

    static func requestParams(_ id: String) -> JSON {
        ["request_id": .string(id), "tool_name": "Bash", "description": "Run the test suite",
         "input_preview": #"{"command":"swift test"}"#]
    }

    static func verdictBody(_ id: String, _ behavior: String = "allow") -> String {
        #"{"type":"permission_verdict","request_id":"\#(id)","behavior":"\#(behavior)"}"#
    }

    /// Sends a permission request and waits until the approver's callback has it.
    static func ask(_ relay: Relay, _ id: String, deliveries: Int = 1) async throws -> ReceivedRequest {
        relay.channel.mcp.notify(requestMethod, params: requestParams(id))
        return try #require(try await relay.receiver.waitForDeliveries(deliveries).last).request
    }

    static func verdictNotifications(_ mcp: MCPTestClient) -> [JSON] {
        mcp.transcript.filter { $0["method"]?.stringValue == verdictMethod }
    }

    // MARK: Request and verdict

    @Test func aPromptReachesTheApproverSignedAndAnAllowVerdictBecomesOnePermissionNotification() async throws {
        let relay = try await Self.startRelay()
        defer { relay.stop() }
        let experimental = relay.initializeResult["capabilities"]?["experimental"]
        #expect(experimental?["claude/channel/permission"] == [:], "\(relay.initializeResult)")
        #expect(experimental?["claude/channel"] == [:], "\(relay.initializeResult)")

        let request = try await Self.ask(relay, "abcde")

        let expected: JSON = ["type": "permission_request", "request_id": "abcde", "tool_name": "Bash",
                              "description": "Run the test suite", "input_preview": #"{"command":"swift test"}"#]
        ReplyDeliveryTests.expectSignedReply(request, sourceID: relay.approver.sourceID, secret: relay.approver.secret,
                                             payload: expected)

        let answer = try await relay.channel.http.postWebhook(Self.verdictBody("abcde"), as: relay.approver)

        #expect(answer.status == 200, "\(answer)")
        #expect(try answer.json() == ["received": true, "verdict": "allow"], "\(answer)")
        let notification = try await relay.channel.mcp.message("a \(Self.verdictMethod) notification") {
            $0["method"]?.stringValue == Self.verdictMethod
        }
        #expect(notification["params"] == ["request_id": "abcde", "behavior": "allow"], "\(notification)")
        #expect(notification["id"] == nil, "a notification has no id: \(notification)")
        let events = try await relay.channel.mcp.channelEventsUntilQuiet()
        #expect(events.isEmpty, "a verdict is never a channel event: \(events)")
        #expect(Self.verdictNotifications(relay.channel.mcp).count == 1)
        #expect(relay.channel.mcp.nonProtocolLines.isEmpty, "\(relay.channel.mcp.nonProtocolLines)")

        let listed = try await relay.channel.mcp.callTool("webhook_events", arguments: [:])
        #expect(!ProviderFixtures.text(ofToolResult: try #require(listed["result"])).contains("permission_verdict"),
                "a verdict is not logged as an event: \(listed)")
    }

    @Test func aDenyVerdictIsPassedOnAndASecondVerdictForTheSameRequestIsUnknown() async throws {
        let relay = try await Self.startRelay()
        defer { relay.stop() }
        _ = try await Self.ask(relay, "qwert")

        let first = try await relay.channel.http.postWebhook(Self.verdictBody("qwert", "deny"), as: relay.approver)
        let second = try await relay.channel.http.postWebhook(Self.verdictBody("qwert", "allow"), as: relay.approver)
        let never = try await relay.channel.http.postWebhook(Self.verdictBody("zzzzz"), as: relay.approver)

        #expect(try first.json() == ["received": true, "verdict": "deny"], "\(first)")
        expectJSONError(second, status: 404, error: "unknown_request")
        expectJSONError(never, status: 404, error: "unknown_request")
        _ = try await relay.channel.mcp.channelEventsUntilQuiet()
        let verdicts = Self.verdictNotifications(relay.channel.mcp)
        #expect(verdicts.map { $0["params"] } == [["request_id": "qwert", "behavior": "deny"]], "\(verdicts)")
    }

    @Test(arguments: [
        ("abcdl", "allow"), ("ABCDE", "allow"), ("abcd", "allow"), ("abcdef", "allow"), ("abcd1", "allow"),
        ("abcde", "maybe"), ("abcde", "Allow"),
    ])
    func aMalformedRequestIDOrBehaviorIsBadRequest(_ id: String, _ behavior: String) async throws {
        let relay = try await Self.startRelay()
        defer { relay.stop() }
        _ = try await Self.ask(relay, "abcde")

        let answer = try await relay.channel.http.postWebhook(Self.verdictBody(id, behavior), as: relay.approver)

        expectJSONError(answer, status: 400, error: "invalid_verdict")
        let valid = try await relay.channel.http.postWebhook(Self.verdictBody("abcde"), as: relay.approver)
        #expect(valid.status == 200, "the open request is still open after a malformed verdict: \(valid)")
    }

    // MARK: What approves nothing

    @Test func theSameBodyFromANonApproverIsAnOrdinaryEventAndApprovesNothing() async throws {
        let relay = try await Self.startRelay()
        defer { relay.stop() }
        let stranger = try await relay.channel.http.pairSource(name: "stranger", callbackURL: relay.receiver.url(path: "/other"))
        _ = try await Self.ask(relay, "hjkmn")

        let forged = try await relay.channel.http.postWebhook(Self.verdictBody("hjkmn"), as: stranger)

        let eventID = try #require(expectProviderAccepted(forged))
        #expect(try forged.json()["verdict"] == nil, "\(forged)")
        let event = try await relay.channel.mcp.channelEvent()
        #expect(event["meta"]?["event_id"] == .string(eventID), "\(event)")
        #expect(event["meta"]?["source_id"] == .string(stranger.sourceID), "\(event)")
        #expect(event["meta"]?["event_type"] == "permission_verdict", "\(event)")
        _ = try await relay.channel.mcp.channelEventsUntilQuiet()
        #expect(Self.verdictNotifications(relay.channel.mcp).isEmpty, "a non-approver approved something")
        #expect(relay.receiver.deliveries.count == 1, "the prompt goes to approvers only")

        let real = try await relay.channel.http.postWebhook(Self.verdictBody("hjkmn", "deny"), as: relay.approver)
        #expect(try real.json() == ["received": true, "verdict": "deny"], "the request stayed open: \(real)")
    }

    @Test func aSeedSignedVerdictIsRefusedAndApprovesNothing() async throws {
        let relay = try await Self.startRelay()
        defer { relay.stop() }
        _ = try await Self.ask(relay, "vwxyz")

        let seed = try await relay.channel.http.postWebhook(Self.verdictBody("vwxyz"), as: relay.approver, scheme: .seed)

        expectJSONError(seed, status: 401, error: "unauthorized")
        let events = try await relay.channel.mcp.channelEventsUntilQuiet()
        #expect(events.isEmpty, "\(events)")
        #expect(Self.verdictNotifications(relay.channel.mcp).isEmpty, "a sha256=-only verdict approved something")
        let real = try await relay.channel.http.postWebhook(Self.verdictBody("vwxyz"), as: relay.approver)
        #expect(real.status == 200, "the request stayed open: \(real)")
    }

    @Test func aVerdictThroughThePerSourceRouteIsAnOrdinaryEvent() async throws {
        let relay = try await Self.startRelay()
        defer { relay.stop() }
        _ = try await Self.ask(relay, "pqrst")
        let body = Data(Self.verdictBody("pqrst").utf8)

        let viaPath = try await relay.channel.http.postJSON(
            "/webhook/\(relay.approver.sourceID)", body: body,
            headers: RawHTTPClient.webhookHeaders(relay.approver, body: body))

        expectProviderAccepted(viaPath)
        _ = try await relay.channel.mcp.channelEvent()
        #expect(Self.verdictNotifications(relay.channel.mcp).isEmpty)
    }

    @Test func aReplayedVerdictDeliveryApprovesNothingTwice() async throws {
        let relay = try await Self.startRelay()
        defer { relay.stop() }
        _ = try await Self.ask(relay, "bcdfg")
        let body = Data(Self.verdictBody("bcdfg").utf8)
        let headers = RawHTTPClient.webhookHeaders(relay.approver, body: body) + [("X-Webhook-Id", "verdict-1")]

        let first = try await relay.channel.http.postJSON("/webhook", body: body, headers: headers)
        let again = try await relay.channel.http.postJSON("/webhook", body: body, headers: headers)

        #expect(first.status == 200, "\(first)")
        #expect(again.status == 404, "the same bytes again approve nothing: \(again)")
        _ = try await relay.channel.mcp.channelEventsUntilQuiet()
        #expect(Self.verdictNotifications(relay.channel.mcp).count == 1)
    }

    @Test func withoutAnApproverNoCapabilityIsDeclaredAndVerdictShapedBodiesAreEvents() async throws {
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }
        let source = try await channel.http.pairSource(name: "ci", callbackURL: "http://127.0.0.1:9/cb")
        let result = try await channel.mcp.handshake()
        #expect(result["capabilities"]?["experimental"]?["claude/channel/permission"] == nil, "\(result)")
        #expect(result["capabilities"]?["experimental"]?["claude/channel"] == [:], "\(result)")

        let response = try await channel.http.postWebhook(Self.verdictBody("abcde"), as: source)

        expectProviderAccepted(response)
        _ = try await channel.mcp.channelEvent()
    }

    // MARK: The approver command

    @Test func approverIsRefusedForAProviderSchemeAndForASourceWithoutCallback() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let dir = channel.stateDir
        let github = try await ProviderFixtures.add("repo", scheme: .github, secret: nil, stateDir: dir)
        let noCallback = try await channel.http.pairSource(name: "no-callback")
        let withCallback = try await channel.http.pairSource(name: "phone", callbackURL: "http://127.0.0.1:9/cb")

        let refusedGitHub = try await runCLI(["approver", github.sourceID, "on"], stateDir: dir)
        let refusedNoCallback = try await runCLI(["approver", noCallback.sourceID, "on"], stateDir: dir)
        let unknown = try await runCLI(["approver", "src_0000000000000000000000000000abcd", "on"], stateDir: dir)
        let badWord = try await runCLI(["approver", withCallback.sourceID, "yes"], stateDir: dir)
        let missing = try await runCLI(["approver", withCallback.sourceID], stateDir: dir)
        let accepted = try await runCLI(["approver", withCallback.sourceID, "on"], stateDir: dir)

        #expect(refusedGitHub.exitCode == 1, "\(refusedGitHub)")
        #expect(refusedGitHub.stderr.contains("refused") && refusedGitHub.stderr.contains("github"), "\(refusedGitHub)")
        #expect(refusedNoCallback.exitCode == 1, "\(refusedNoCallback)")
        #expect(refusedNoCallback.stderr.contains("callback"), "\(refusedNoCallback)")
        #expect(unknown.exitCode == 1, "\(unknown)")
        #expect(badWord.exitCode == 2, "\(badWord)")
        #expect(missing.exitCode == 2, "\(missing)")
        #expect(accepted.exitCode == 0, "\(accepted)")

        let file = try ProviderFixtures.sourcesFile(dir)
        #expect(file["sources"]?[withCallback.sourceID]?["approver"] == true, "\(file)")
        #expect(file["sources"]?[github.sourceID]?["approver"] == nil, "\(file)")
        #expect(file["sources"]?[noCallback.sourceID]?["approver"] == nil, "\(file)")

        let listing = try await runCLI(["sources", "--json"], stateDir: dir)
        let sources = try ProviderFixtures.list(from: listing.stdout, key: "sources")
        #expect(sources.first { $0["source_id"] == .string(withCallback.sourceID) }?["approver"] == true, "\(listing)")
        #expect(sources.first { $0["source_id"] == .string(github.sourceID) }?["approver"] == false, "\(listing)")
        let tool = try await channel.mcp.callTool("webhook_sources", arguments: [:])
        let listed = try ProviderFixtures.list(from: ProviderFixtures.text(ofToolResult: try #require(tool["result"])), key: "sources")
        #expect(listed.first { $0["source_id"] == .string(withCallback.sourceID) }?["approver"] == true, "\(listed)")

        let off = try await runCLI(["approver", withCallback.sourceID, "off"], stateDir: dir)
        #expect(off.exitCode == 0, "\(off)")
        #expect(try ProviderFixtures.sourcesFile(dir)["sources"]?[withCallback.sourceID]?["approver"] == nil)
    }
}
