import Testing
@testable import JSON
@testable import MCP
@testable import WebhookChannel

struct ChannelEventTests {
    @Test func longBodyIsCutAtACharacterBoundaryWithNothingAppended() {
        // 16383 ASCII bytes then a 3-byte character straddling the 16 KiB cut.
        let body = Array(String(repeating: "a", count: 16383).utf8) + Array("€€".utf8)
        let (text, truncated) = body.withUnsafeBytes { ChannelEvent.content(fromBody: $0, contentType: "application/json") }
        #expect(truncated)
        #expect(text.utf8.count == 16383)
        #expect(text == String(repeating: "a", count: 16383))
    }

    @Test func bodyAtTheLimitIsNotTruncated() {
        let body = Array(String(repeating: "b", count: 16384).utf8)
        let (text, truncated) = body.withUnsafeBytes { ChannelEvent.content(fromBody: $0, contentType: "") }
        #expect(!truncated)
        #expect(text.utf8.count == 16384)
    }

    @Test func binaryBodyBecomesANoteWithItsSize() {
        let body: [UInt8] = [0xFF, 0xFE, 0x00, 0x01]
        let (text, truncated) = body.withUnsafeBytes { ChannelEvent.content(fromBody: $0, contentType: "application/octet-stream") }
        #expect(text == "[binary body: 4 bytes, content-type application/octet-stream]")
        #expect(!truncated)
    }

    @Test func metaKeysOutsideTheAllowedSetAndSourceAreDropped() {
        let event = ChannelEvent(content: "x", meta: [("source", "a"), ("ok_key1", "v"), ("bad-key", "v"), ("", "v")])
        #expect(event.meta.map(\.key) == ["ok_key1"])
    }

    @Test func notificationLineIsExactJSON() throws {
        let event = ChannelEvent(content: "hi \"there\"\n", meta: [("source_id", "src_1"), ("truncated", "true")])
        var line: [UInt8] = []
        event.writeNotification(into: &line)
        #expect(String(decoding: line, as: UTF8.self)
            == #"{"jsonrpc":"2.0","method":"notifications/claude/channel","params":{"content":"hi \"there\"\n","meta":{"source_id":"src_1","truncated":"true"}}}"#)
        #expect(try JSONParser.parse(line)["params"]?["meta"]?["source_id"] == "src_1")
    }
}
