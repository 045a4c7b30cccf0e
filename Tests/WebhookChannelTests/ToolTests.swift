import Foundation
import Testing

/// The MCP tools Claude uses: `webhook_sources` and `webhook_reply` (SPEC 3 and 6).
@Suite struct ToolTests {
    @Test func webhookSourcesListsIDsNamesAndCallbacksButNeverASecret() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let callback = "http://127.0.0.1:9/answers"
        let withCallback = try await channel.http.pairSource(name: "ci-alpha", callbackURL: callback)
        let without = try await channel.http.pairSource(name: "ci-beta")

        let response = try await channel.mcp.callTool("webhook_sources", arguments: [:])

        let result = try #require(response["result"], "\(response)")
        #expect(result["isError"] != true, "\(result)")
        let text = toolText(result)
        for (credentials, name) in [(withCallback, "ci-alpha"), (without, "ci-beta")] {
            #expect(text.contains(credentials.sourceID), "\(credentials.sourceID) missing from: \(text)")
            #expect(text.contains(name), "\(name) missing from: \(text)")
            #expect(!text.contains(String(credentials.secret.dropFirst("whsec_".count))), "a secret is shown: \(text)")
        }
        #expect(text.contains(callback), "callback URL missing from: \(text)")
        #expect(!text.contains("whsec_"), "\(text)")
    }

    @Test func webhookReplyPostsThePayloadSignedWithBothSchemesAndNamesTheStatus() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [202])
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "ci", callbackURL: receiver.url())
        let payload: JSON = ["answer": 42, "text": "héllo ✓", "nested": ["ok": true]]

        let response = try await channel.mcp.callTool("webhook_reply", arguments: [
            "source_id": .string(credentials.sourceID), "payload": payload,
        ])

        let result = try #require(response["result"], "\(response)")
        #expect(result["isError"] != true, "\(result)")
        #expect(toolText(result).contains("202"), "the result should name the HTTP status: \(result)")

        let delivery = try #require(try await receiver.waitForDeliveries(1).first).request
        #expect(delivery.method == "POST")
        #expect(delivery.target == "/callback")
        #expect(delivery.header("Content-Type")?.lowercased().hasPrefix("application/json") == true, "\(delivery.headers)")
        #expect(delivery.header("X-Source-Id") == credentials.sourceID)
        #expect(delivery.header("X-Webhook-Id")?.isEmpty == false, "\(delivery.headers)")
        #expect(try JSON.parse(delivery.body) == payload, "\(String(decoding: delivery.body, as: UTF8.self))")
        expectValidReplySignature(delivery, secret: credentials.secret)
    }

    @Test func webhookReplyRetriesAServerErrorWithTheSameWebhookID() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [503, 200])
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "ci", callbackURL: receiver.url())

        let response = try await channel.mcp.callTool("webhook_reply", arguments: [
            "source_id": .string(credentials.sourceID), "payload": ["attempt": "me"],
        ])

        // SPEC 6: the tool answers after the first attempt; "retrying" is not an error.
        #expect(response["result"]?["isError"] != true, "\(response)")
        let deliveries = try await receiver.waitForDeliveries(2)
        let gap = deliveries[1].arrivedAt - deliveries[0].arrivedAt
        #expect(gap >= .milliseconds(900), "retried after \(gap), SPEC says wait 1 s")
        #expect(deliveries[0].request.header("X-Webhook-Id") != nil)
        #expect(deliveries[1].request.header("X-Webhook-Id") == deliveries[0].request.header("X-Webhook-Id"))
        #expect(deliveries[1].request.body == deliveries[0].request.body)
        expectValidReplySignature(deliveries[1].request, secret: credentials.secret)
    }

    @Test func webhookReplyDoesNotRetryAClientErrorAndReportsIt() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [400])
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "ci", callbackURL: receiver.url())

        let response = try await channel.mcp.callTool("webhook_reply", arguments: [
            "source_id": .string(credentials.sourceID), "payload": ["x": 1],
        ])

        let result = try #require(response["result"], "\(response)")
        #expect(result["isError"] == true, "a 400 is a final failure: \(result)")
        #expect(toolText(result).contains("400"), "\(result)")
        try await Task.sleep(for: .milliseconds(1_500))
        #expect(receiver.deliveries.count == 1, "a 4xx was retried")
    }

    @Test func webhookReplyToAnUnknownSourceIsAnError() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let response = try await channel.mcp.callTool("webhook_reply", arguments: [
            "source_id": "src_00000000000000000000000000000000", "payload": ["x": 1],
        ])

        let result = try #require(response["result"], "\(response)")
        #expect(result["isError"] == true, "\(result)")
        #expect(!toolText(result).isEmpty)
    }

    @Test func webhookReplyToASourceWithoutCallbackIsAnError() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "no-callback")

        let response = try await channel.mcp.callTool("webhook_reply", arguments: [
            "source_id": .string(credentials.sourceID), "payload": ["x": 1],
        ])

        let result = try #require(response["result"], "\(response)")
        #expect(result["isError"] == true, "\(result)")
        #expect(!toolText(result).isEmpty)
    }
}

/// The text of a tool result's `content` items, joined.
func toolText(_ result: JSON) -> String {
    (result["content"]?.arrayValue ?? [])
        .filter { $0["type"] == "text" }
        .compactMap { $0["text"]?.stringValue }
        .joined(separator: "\n")
}

/// SPEC 6 outbound: `X-Timestamp` now, `X-Signature` carrying both `v1=` over
/// `"<ts>.<body>"` and `sha256=` over the body, comma-separated.
func expectValidReplySignature(_ request: ReceivedRequest, secret: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let timestamp = request.header("X-Timestamp"), let seconds = Int(timestamp) else {
        Issue.record("X-Timestamp missing or not Unix seconds: \(request.headers)", sourceLocation: sourceLocation)
        return
    }
    #expect(abs(seconds - unixNow()) <= 60, "X-Timestamp \(timestamp) is not now", sourceLocation: sourceLocation)
    let parts = (request.header("X-Signature") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let v1 = TestSigner.v1Signature(secret: secret, timestamp: timestamp, body: request.body)
    let seed = TestSigner.seedSignature(secret: secret, body: request.body)
    #expect(parts.contains(v1), "X-Signature \(parts) lacks a valid v1=", sourceLocation: sourceLocation)
    #expect(parts.contains(seed), "X-Signature \(parts) lacks a valid sha256=", sourceLocation: sourceLocation)
}
