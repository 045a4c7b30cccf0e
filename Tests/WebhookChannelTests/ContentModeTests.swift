import Foundation
import Testing
@testable import Signing
@testable import MCP
@testable import WebhookChannel

/// SPEC 14: which content a source's mode gives, what the notification then carries, and how
/// the mode is kept in `sources.json`.
struct ContentModeTests {
    static func record(body: [UInt8], type: String? = "pull_request") -> EventRecord {
        EventRecord(id: "evt_0123456789abcdef0123456789abcdef", sourceID: "src_a", sourceName: "gh", deliveryID: "d-1",
                    type: type, receivedAt: 1_800_000_000, contentType: "application/json", headers: [:], body: body,
                    replayKeys: [])
    }

    /// A JSON object of exactly `size` bytes.
    static func body(ofSize size: Int) -> [UInt8] {
        let shell = #"{"action":"opened","pad":""}"#
        return Array(#"{"action":"opened","pad":"\#(String(repeating: "p", count: size - shell.utf8.count))"}"#.utf8)
    }

    static func metaKeys(_ event: ChannelEvent) -> [String] { event.meta.map(\.key) }

    @Test func newSourcesOfProviderSchemesStartInAutoAndTheSeedsInFull() {
        #expect(ContentMode.defaultMode(for: .webhook) == .full)
        for scheme in [SignatureScheme.github, .stripe, .standard, .slack] {
            #expect(ContentMode.defaultMode(for: scheme) == .auto, "\(scheme)")
        }
    }

    @Test func autoDeliversABodyOf2048BytesAsItIsAndALargerOneAsADigest() {
        let atLimit = Self.record(body: Self.body(ofSize: 2048))
        let over = Self.record(body: Self.body(ofSize: 2049))

        let small = EventNotification.channelEvent(for: atLimit, replay: false, contentMode: .auto, scheme: .github)
        let large = EventNotification.channelEvent(for: over, replay: false, contentMode: .auto, scheme: .github)

        #expect(small.content == String(decoding: atLimit.body, as: UTF8.self))
        #expect(!Self.metaKeys(small).contains("digest"))
        #expect(large.content == EventDigest.text(scheme: .github, eventType: "pull_request", contentType: over.contentType,
                                                       body: over.body, eventID: over.id))
        #expect(large.content.hasPrefix("GitHub event: pull_request, action: opened\n"))
    }

    @Test func aDigestAddsDigestAndBodyBytesMetaAndNeverTruncated() throws {
        let record = Self.record(body: try DigestFixtures.github("pull_request"))

        let event = EventNotification.channelEvent(for: record, replay: true, contentMode: .auto, scheme: .github)

        #expect(event.meta.map { "\($0.key)=\($0.value)" } == [
            "source_id=src_a", "source_name=gh", "event_id=evt_0123456789abcdef0123456789abcdef", "event_type=pull_request",
            "delivery_id=d-1", "received_at=2027-01-15T08:00:00.000Z", "content_type=application/json",
            "digest=true", "body_bytes=23633", "replay=true",
        ])
    }

    @Test func fullModeIsTodaysNotificationExactly() throws {
        let record = Self.record(body: try DigestFixtures.github("pull_request"))

        let full = EventNotification.channelEvent(for: record, replay: false, contentMode: .full, scheme: .github)
        let today = EventNotification.channelEvent(for: record, replay: false)

        #expect(full == today)
        #expect(full.content.utf8.count == ChannelEvent.maxContentBytes)
        #expect(Self.metaKeys(full).contains("truncated"))
        #expect(!Self.metaKeys(full).contains("digest"))
    }

    @Test func digestModeDigestsEveryBodyATinyOneToo() {
        let tiny = Self.record(body: Array(#"{"action":"opened"}"#.utf8))
        let larger = Self.record(body: Self.body(ofSize: 600))

        let tinyEvent = EventNotification.channelEvent(for: tiny, replay: false, contentMode: .digest, scheme: .github)
        let largerEvent = EventNotification.channelEvent(for: larger, replay: false, contentMode: .digest, scheme: .github)

        #expect(tinyEvent.content.hasPrefix("GitHub event: pull_request, action: opened\nFull payload: 19 bytes"))
        #expect(tinyEvent.meta.last { $0.key == "digest" }?.value == "true")
        #expect(tinyEvent.meta.last { $0.key == "body_bytes" }?.value == "19")
        #expect(largerEvent.content.hasPrefix("GitHub event: pull_request, action: opened\nFull payload: 600 bytes"))
        #expect(largerEvent.meta.last { $0.key == "body_bytes" }?.value == "600")
    }

    // MARK: sources.json

    @Test func aFileWithoutContentModeLoadsWithTheSchemesDefaultAndIsWrittenBackUnchanged() throws {
        let file = try SourcesFile.decode(Array(SourcesFileTests.seedFile.utf8))

        #expect(file.sources.first?.chosenContentMode == nil)
        #expect(file.sources.first?.contentMode == .full)
        #expect(String(decoding: file.encode(), as: UTF8.self) == SourcesFileTests.seedFile)
    }

    @Test func aChosenModeIsWrittenAndReadBack() throws {
        var file = try SourcesFile.decode(Array(SourcesFileTests.seedFile.utf8))
        let id = try #require(file.sources.first?.id)

        let changed = try SourceAdmin.setContentMode(&file, id: id, mode: .digest)
        let again = try SourcesFile.decode(file.encode())

        #expect(changed.contentMode == .digest)
        #expect(again.sources.first?.contentMode == .digest)
        #expect(String(decoding: file.encode(), as: UTF8.self).contains("\"paired_at\": \"2026-03-01T10:00:00.000Z\",\n      \"content_mode\": \"digest\"\n"))
        #expect(try SourcesFile.decode(again.encode()) == again)
    }

    @Test func anUnknownModeWordIsKeptAndReadAsTheDefaultUntilAModeIsChosen() throws {
        let text = #"{"sources":{"src_a":{"name":"n","hmac_secret":"s","callback_url":null,"paired_at":"t","scheme":"github","content_mode":"brief"}},"pending_pairings":{}}"#
        var file = try SourcesFile.decode(Array(text.utf8))

        #expect(file.sources.first?.contentMode == .auto)
        #expect(try SourcesFile.decode(file.encode()).sources.first?.extra["content_mode"] == "brief")
        _ = try SourceAdmin.setContentMode(&file, id: "src_a", mode: .full)
        let rewritten = try SourcesFile.decode(file.encode())
        #expect(rewritten.sources.first?.contentMode == .full)
        #expect(rewritten.sources.first?.extra["content_mode"] == nil)
    }

    @Test func settingTheModeOfAnUnknownSourceFails() {
        var file = SourcesFile()
        #expect(throws: SourceAdmin.Failure.unknownSource) { try SourceAdmin.setContentMode(&file, id: "src_x", mode: .full) }
    }

    // MARK: Figures for the README / report

    @Test(arguments: DigestFixtures.githubEvents)
    func autoModeNotificationOfEachDocumentedGitHubPayloadIsSmallerThanFullMode(_ eventName: String) throws {
        let record = Self.record(body: try DigestFixtures.github(eventName), type: eventName)

        let full = EventNotification.channelEvent(for: record, replay: false, contentMode: .full, scheme: .github)
        let auto = EventNotification.channelEvent(for: record, replay: false, contentMode: .auto, scheme: .github)

        #expect(full.content.utf8.count == min(record.body.count, ChannelEvent.maxContentBytes))
        #expect(auto.content.utf8.count < full.content.utf8.count / 10, "\(eventName): \(auto.content.utf8.count) of \(full.content.utf8.count)")
    }
}
