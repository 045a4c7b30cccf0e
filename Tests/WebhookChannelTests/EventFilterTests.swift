import Foundation
import Testing
@testable import WebhookChannel

/// Per-source event filters (SPEC 13): what is filtered is verified, logged, deduplicated and
/// answered as usual, listed with `"filtered": true`, and never notified.
@Suite struct EventFilterTests {
    // MARK: Matching (unit)

    @Test func exactTypesAndTrailingStarPrefixesPass() throws {
        let filter = try #require(EventFilter(list: "workflow_run, check_suite,pull_request*"))
        #expect(filter.patterns == ["workflow_run", "check_suite", "pull_request*"])
        for type in ["workflow_run", "check_suite", "pull_request", "pull_request_review"] {
            #expect(filter.passes(type), "\(type)")
        }
        for type in ["workflow_job", "check_suite_x", "push", "pull", ""] {
            #expect(!filter.passes(type), "\(type)")
        }
        #expect(!filter.passes(nil), "an event without a type passes only a lone *")
        #expect(try #require(EventFilter(list: "*,deploy")).passes(nil))
        #expect(!(try #require(EventFilter(list: "charge.dispute.*")).passes(nil)))
    }

    @Test func emptyListsAndInnerStarsAreRefused() {
        for list in ["", " , ", "a*b", "*x", "a,\u{7}b"] {
            #expect(EventFilter(list: list) == nil, "\(list)")
        }
    }

    @Test func sourcesFileKeepsTheFilterAndAFileWithoutItLoadsUnchanged() throws {
        let seed = #"""
        {
          "sources": {
            "src_1": {"name": "ci", "hmac_secret": "whsec_x", "callback_url": null, "paired_at": "2026-01-01T00:00:00.000Z"}
          },
          "pending_pairings": {}
        }
        """#
        var file = try SourcesFile.decode(Array(seed.utf8))
        #expect(file.sources[0].eventFilter == nil && file.sources[0].approver == false)
        #expect(try SourcesFile.decode(file.encode()) == file)
        _ = try SourceAdmin.setEventFilter(&file, id: "src_1", filter: EventFilter(list: "deploy,build.*"))
        let again = try SourcesFile.decode(file.encode())
        #expect(again.sources[0].eventFilter?.patterns == ["deploy", "build.*"])
        #expect(again.sources[0].extra.isEmpty, "\(again.sources[0].extra)")
    }

    // MARK: End to end

    @Test func filteredEventsAreLoggedAnsweredFilteredAndNotNotified() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await channel.http.pairSource(name: "ci")
        let set = try await runCLI(["filter", source.sourceID, "--events", "deploy,build.*"], stateDir: channel.stateDir)
        #expect(set.exitCode == 0, "\(set)")

        var answers: [String: JSON] = [:]
        for body in [#"{"event":"test","n":1}"#, #"{"event":"deploy","n":2}"#, #"{"type":"build.started","n":3}"#,
                     #"{"n":4}"#] {
            let response = try await channel.http.postWebhook(body, as: source)
            #expect(response.status == 200, "\(response)")
            answers[body] = try response.json()
        }

        let events = try await channel.mcp.channelEventsUntilQuiet()
        #expect(events.compactMap { $0["meta"]?["event_type"]?.stringValue } == ["deploy", "build.started"], "\(events)")
        let filteredAnswers = answers.values.filter { $0["filtered"] == true }
        #expect(filteredAnswers.count == 2, "\(answers)")
        for answer in answers.values {
            #expect(answer["received"] == true && answer["event_id"]?.stringValue?.hasPrefix("evt_") == true, "\(answer)")
        }
        #expect(answers[#"{"event":"deploy","n":2}"#]?["filtered"] == nil, "\(answers)")

        let listed = try await channel.mcp.callTool("webhook_events", arguments: [:])
        let records = try ProviderFixtures.list(from: ProviderFixtures.text(ofToolResult: try #require(listed["result"])),
                                                key: "events")
        #expect(records.count == 4, "every event is logged: \(records)")
        let filteredTypes = records.filter { $0["filtered"] == true }.map { $0["event_type"] ?? .null }
        #expect(Set(filteredTypes.map(\.encodedString)) == Set([JSON.string("test"), JSON.null].map(\.encodedString)),
                "\(records)")

        let duplicate = try await channel.http.postWebhook(#"{"event":"test"}"#, as: source,
                                                           extraHeaders: [("X-Webhook-Id", "same")])
        let again = try await channel.http.postWebhook(#"{"event":"test"}"#, as: source,
                                                       extraHeaders: [("X-Webhook-Id", "same")])
        #expect(try duplicate.json()["filtered"] == true, "\(duplicate)")
        #expect(try again.json() == ["received": true, "duplicate": true], "filtered events are deduplicated: \(again)")

        let cleared = try await runCLI(["filter", source.sourceID, "--clear"], stateDir: channel.stateDir)
        #expect(cleared.exitCode == 0, "\(cleared)")
        _ = try await channel.http.postWebhook(#"{"event":"test","n":5}"#, as: source)
        let after = try await channel.mcp.channelEvent()
        #expect(after["meta"]?["event_type"] == "test", "\(after)")
    }

    @Test func aFilteredEventDoesNotWaitAsANotification() async throws {
        // Not initialized: notified events wait in the queue; filtered ones never join it.
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }
        _ = try await channel.mcp.initialize()
        let source = try await channel.http.pairSource(name: "ci")
        _ = try await runCLI(["filter", source.sourceID, "--events", "deploy"], stateDir: channel.stateDir)

        let filtered = try await channel.http.postWebhook(#"{"event":"noise"}"#, as: source)
        #expect(try filtered.json()["filtered"] == true, "\(filtered)")
        #expect(try await Self.status(channel)["notifications_waiting"] == 0)

        _ = try await channel.http.postWebhook(#"{"event":"deploy"}"#, as: source)
        #expect(try await Self.status(channel)["notifications_waiting"] == 1)
    }

    @Test func filterUsageAndListing() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let github = try await ProviderFixtures.add("repo", scheme: .github, secret: nil, stateDir: dir)

        for arguments in [["filter", github.sourceID], ["filter", github.sourceID, "--events", "a", "--clear"],
                          ["filter", github.sourceID, "--events", ","], ["filter", "--clear"]] {
            let run = try await runCLI(arguments, stateDir: dir)
            #expect(run.exitCode == 2, "\(arguments): \(run)")
        }
        let unknown = try await runCLI(["filter", "src_0000000000000000000000000000abcd", "--clear"], stateDir: dir)
        #expect(unknown.exitCode == 1, "\(unknown)")

        let set = try await runCLI(["filter", github.sourceID, "--events", "workflow_run,check_suite,pull_request*"],
                                   stateDir: dir)
        #expect(set.exitCode == 0, "\(set)")
        #expect(try ProviderFixtures.sourcesFile(dir)["sources"]?[github.sourceID]?["event_filter"]
            == ["workflow_run", "check_suite", "pull_request*"])
        let text = try await runCLI(["sources"], stateDir: dir)
        #expect(text.stdout.contains("events=workflow_run,check_suite,pull_request*"), "\(text)")
        let json = try await runCLI(["sources", "--json"], stateDir: dir)
        let listed = try ProviderFixtures.list(from: json.stdout, key: "sources")
        #expect(listed.first?["event_filter"] == ["workflow_run", "check_suite", "pull_request*"], "\(json)")
    }

    static func status(_ channel: TestChannel) async throws -> JSON {
        let response = try await channel.mcp.callTool("webhook_status", arguments: [:])
        return try JSON.parse(ProviderFixtures.text(ofToolResult: try #require(response["result"], "\(response)")))
    }
}
