import Foundation
import Testing

/// `webhook_status`, tool annotations and `_meta` on results (SPEC 13).
@Suite struct StatusAndAnnotationTests {
    @Test func toolsListCarriesAnnotationsAndDescribesEveryProperty() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let tools = try #require(try await channel.mcp.result("tools/list")["tools"]?.arrayValue)

        let byName = Dictionary(uniqueKeysWithValues: tools.compactMap { tool in tool["name"]?.stringValue.map { ($0, tool) } })
        for name in ["webhook_status", "webhook_sources", "webhook_events", "webhook_event", "webhook_deliveries"] {
            #expect(byName[name]?["annotations"]?["readOnlyHint"] == true, "\(name): \(byName[name] ?? .null)")
        }
        #expect(byName["webhook_reply"]?["annotations"]?["openWorldHint"] == true, "\(byName["webhook_reply"] ?? .null)")
        #expect(byName["webhook_reply"]?["annotations"]?["readOnlyHint"] != true)
        for tool in tools {
            for (key, property) in tool["inputSchema"]?["properties"]?.objectValue ?? [:] {
                #expect(property["description"]?.stringValue?.isEmpty == false, "\(tool["name"] ?? .null).\(key) has no description")
            }
        }
    }

    @Test func webhookStatusAnswersWithRoleAddressAndCounts() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        _ = try await channel.http.pairSource(name: "ci")
        _ = try await channel.http.requestPairing(name: "waiting")

        let status = try await EventFilterTests.status(channel)

        #expect(status["role"] == "hub", "\(status)")
        #expect(status["listening"] == .string("127.0.0.1:\(channel.server.port)"), "\(status)")
        #expect(status["not_listening_reason"] == .null, "\(status)")
        #expect(status["sources"] == 1, "\(status)")
        #expect(status["pending_pairings"] == 1, "\(status)")
        #expect(status["sessions"] == 1, "\(status)")
        #expect(status["notifications_waiting"]?.intValue != nil, "\(status)")
    }

    // Two servers at once: both slots are taken together (see `ServerSlots`).
    @Test(.serverSlots(2))
    func webhookStatusOfASecondSessionNamesTheHubItFollows() async throws {
        let first = try await TestChannel.start()
        defer { first.stop() }
        let second = try await TestChannel.start(stateDir: first.stateDir, environment: ["WEBHOOK_PORT": String(first.server.port)])
        defer { second.stop() }
        _ = try await second.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })

        let status = try await EventFilterTests.status(second)

        #expect(status["role"] == "follower", "\(status)")
        #expect(status["listening"] == .null, "\(status)")
        #expect(status["hub"] == .string("127.0.0.1:\(first.server.port)"), "\(status)")
        #expect(status["hub_pid"]?.intValue == Int(first.server.pid), "\(status)")
        #expect(status["sessions"] == 2, "the follower lists what the hub wrote: \(status)")
        let atHub = try await EventFilterTests.status(first)
        #expect(atHub["sessions"] == 2, "\(atHub)")
    }

    @Test(.serverSlots(2))
    func webhookStatusSaysWhyWhenThePortIsTakenByAnotherProgram() async throws {
        let first = try await TestChannel.start()
        defer { first.stop() }
        // Another state dir, with no hub.sock: the port's holder is not a hub this server could
        // follow. Its server.json names the holder (as one left by another setup would).
        let otherDir = try TempStateDir()
        defer { otherDir.remove() }
        let named = #"{"pid": \#(first.server.pid), "host": "127.0.0.1", "port": \#(first.server.port)}"#
        try FileManager.default.createDirectory(at: otherDir.url, withIntermediateDirectories: true)
        try Data(named.utf8).write(to: otherDir.serverFile)
        let second = try await TestChannel.start(stateDir: otherDir, environment: ["WEBHOOK_PORT": String(first.server.port)])
        defer { second.stop() }

        let status = try await EventFilterTests.status(second)

        #expect(status["role"] == "alone", "\(status)")
        #expect(status["listening"] == .null, "\(status)")
        let reason = try #require(status["not_listening_reason"]?.stringValue, "\(status)")
        #expect(reason.contains("\(first.server.port)") && reason.contains("taken"), "\(reason)")
        #expect(reason.contains("pid \(first.server.pid)"), "\(reason)")
        // The session list agrees with the role.
        let own = try #require(status["session_list"]?.arrayValue?.first, "\(status)")
        #expect(own["role"] == "alone" && own["pid"]?.intValue == Int(second.server.pid), "\(status)")

        // Said once: the retries that follow (the first at once, then every 50 ms) are quiet
        // while the reason stays the same. A second and a half covers some thirty of them.
        try await Task.sleep(for: .milliseconds(1500))
        let notStarted = second.server.stderr.textLines.filter { $0.contains("HTTP server not started") }
        #expect(notStarted.count == 1, "\(notStarted)")
    }

    @Test func webhookEventRaisesTheClientsResultSizeLimit() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await channel.http.pairSource(name: "ci")
        let eventID = try #require(expectProviderAccepted(try await channel.http.postWebhook(#"{"event":"x"}"#, as: source)))

        let response = try await channel.mcp.callTool("webhook_event", arguments: ["event_id": .string(eventID)])

        let limit = try #require(response["result"]?["_meta"]?["anthropic/maxResultSizeChars"]?.intValue, "\(response)")
        #expect(limit >= 1_500_000)
    }
}
