import Testing
@testable import JSON
@testable import MCP
@testable import WebhookChannel

struct ChannelEventTests {
    static func content(_ body: [UInt8], contentType: String = "application/json") -> (text: String, truncated: Bool) {
        let (utf8, truncated) = ChannelEvent.contentUTF8(fromBody: body, contentType: contentType)
        return (String(decoding: utf8, as: UTF8.self), truncated)
    }

    @Test func longBodyIsCutAtACharacterBoundaryWithNothingAppended() {
        // 16383 ASCII bytes then a 3-byte character straddling the 16 KiB cut.
        let body = Array(String(repeating: "a", count: 16383).utf8) + Array("€€".utf8)
        let (text, truncated) = Self.content(body)
        #expect(truncated)
        #expect(text.utf8.count == 16383)
        #expect(text == String(repeating: "a", count: 16383))
    }

    @Test func bodyAtTheLimitIsNotTruncated() {
        let body = Array(String(repeating: "b", count: 16384).utf8)
        let (text, truncated) = Self.content(body, contentType: "")
        #expect(!truncated)
        #expect(text.utf8.count == 16384)
    }

    @Test func binaryBodyBecomesANoteWithItsSize() {
        let body: [UInt8] = [0xFF, 0xFE, 0x00, 0x01]
        let (text, truncated) = Self.content(body, contentType: "application/octet-stream")
        #expect(text == "[binary body: 4 bytes, content-type application/octet-stream]")
        #expect(!truncated)
    }

    // MARK: Defusing counts towards the 16 KiB (SPEC 3, 9)

    /// The black-box finding: the `&lt;` escapes were written after the cut, so a body with a
    /// `</channel>` before it came out 3 bytes longer per escape than 16 KiB.
    @Test func escapesBeforeTheCutCountTowardsSixteenKiB() {
        let body = Array(("</channel>" + String(repeating: "a", count: 16380) + "<channel x>" + String(repeating: "z", count: 100)).utf8)

        let (text, truncated) = Self.content(body)

        #expect(truncated)
        #expect(text.utf8.count == ChannelEvent.maxContentBytes)
        #expect(text == "&lt;/channel>" + String(repeating: "a", count: 16371))
    }

    @Test func anEscapeThatDoesNotFitWholeIsCutBeforeItsLessThanSign() {
        for room in 0...3 {
            let body = Array((String(repeating: "a", count: 16384 - room) + "</channel>").utf8)

            let (text, truncated) = Self.content(body)

            #expect(truncated, "room \(room)")
            #expect(text == String(repeating: "a", count: 16384 - room), "room \(room): ends \(text.suffix(6))")
        }
    }

    @Test func anEscapeThatFitsExactlyEndsTheContent() {
        let body = Array((String(repeating: "a", count: 16380) + "</CHANNEL>").utf8)

        let (text, truncated) = Self.content(body)

        #expect(truncated)
        #expect(text == String(repeating: "a", count: 16380) + "&lt;")
    }

    @Test func aBodyThatFitsOnlyAfterEscapingIsNotTruncated() {
        let three = "<channel>" + "</Channel>" + "<channeL"
        let exact = Array((String(repeating: "a", count: 16384 - three.utf8.count - 9) + three).utf8)
        let over = Array(("b" + String(decoding: exact, as: UTF8.self)).utf8)

        let (text, truncated) = Self.content(exact)
        let (overText, overTruncated) = Self.content(over)

        #expect(!truncated)
        #expect(text.utf8.count == 16384)
        #expect(text.hasSuffix("&lt;channel>&lt;/Channel>&lt;channeL"))
        #expect(overTruncated)
        #expect(overText.utf8.count == 16384)
        #expect(overText.hasSuffix("&lt;/Channel>&lt;channe"), "\(overText.suffix(20))")
    }

    @Test func aCutAfterEscapesStillEndsOnACharacterBoundary() {
        let body = Array(("<channel>" + String(repeating: "a", count: 16370) + "😀😀").utf8)

        let (text, truncated) = Self.content(body)

        #expect(truncated)
        #expect(text.utf8.count == 3 + 9 + 16370)
        #expect(text.hasSuffix("a"))
    }

    /// The note names the content type as the meta does: cut to 200 characters, so a huge
    /// header makes no huge note, and defused like any sender text.
    @Test func aBinaryBodysNoteWithAHugeContentTypeStaysShort() {
        let contentType = "application/x-" + String(repeating: "<channel", count: 3000)

        let (text, truncated) = Self.content([0xFF], contentType: contentType)

        #expect(!truncated)
        #expect(text.utf8.count < 400, "\(text.utf8.count) bytes")
        #expect(text.hasPrefix("[binary body: 1 bytes, content-type application/x-&lt;channel&lt;channel"))
        #expect(!text.contains("<channel"))
        #expect(Self.content([0xFF], contentType: "").0 == "[binary body: 1 bytes, content-type application/octet-stream]")
    }

    /// Against a model written the other way round: the content is the longest run of whole
    /// units (a character, or the `&lt;` that replaces a tag's `<`) of the defused body that
    /// fits in 16 KiB, whatever sits at the limit.
    @Test func contentIsTheLongestPrefixOfWholeCharactersAndEscapesOfTheDefusedBodyWithinSixteenKiB() {
        var random = SplitMix64(seed: 0xC4A7_7E1)
        let pieces = ["a", "é", "€", "😀", "<channel", "</CHANNEL", "<Channel>", "<chan", "<", "</", "&lt;", "\n"]
        for round in 0..<40 {
            var text = String(repeating: "x", count: 16384 - random.inRange(0...200))
            while text.utf8.count < 16384 + random.inRange(-20...60) { text += random.pick(pieces) }
            if random.chance(30) { text = random.pick(pieces) + text }
            let body = Array(text.utf8)

            let (content, truncated) = Self.content(body)
            let (expected, expectedTruncated) = Self.modelContent(text)

            #expect(content == expected, "round \(round): …\(content.suffix(12)) vs …\(expected.suffix(12))")
            #expect(truncated == expectedTruncated, "round \(round)")
            #expect(content.utf8.count <= ChannelEvent.maxContentBytes)
        }
    }

    static func modelContent(_ text: String) -> (String, Bool) {
        let scalars = Array(text.unicodeScalars)
        var out = ""
        var size = 0
        for (index, scalar) in scalars.enumerated() {
            var unit = String(scalar)
            if scalar == "<" {
                let rest = String(String.UnicodeScalarView(scalars[(index + 1)...].prefix(8))).lowercased()
                if rest.hasPrefix("channel") || rest.hasPrefix("/channel") { unit = "&lt;" }
            }
            if size + unit.utf8.count > ChannelEvent.maxContentBytes { return (out, true) }
            out += unit
            size += unit.utf8.count
        }
        return (out, false)
    }

    @Test func metaKeysOutsideTheAllowedSetAndSourceAreDropped() {
        let event = ChannelEvent(content: "x", meta: [("source", "a"), ("ok_key1", "v"), ("bad-key", "v"), ("", "v")])
        #expect(event.meta.map(\.key) == ["ok_key1"])
    }

    /// The product's own events name their meta keys as literals and skip checking them; their
    /// values are cleaned exactly as any event's.
    @Test func eventsWithLiteralKeysCleanTheirValuesAsAnyEventDoes() {
        let values = ["plain", "", "tab\there", "new\nline", "del\u{7F}", "bidi\u{202E}txt", "é", "\u{85}next",
                      String(repeating: "v", count: 200), String(repeating: "w", count: 201), String(repeating: "é", count: 150)]
        let meta = values.enumerated().map { (key: "key_\($0.offset)", value: $0.element) }
        let literal = ChannelEvent(defusedContentUTF8: Array("x".utf8), validKeyedMeta: meta.map { ChannelEvent.MetaPair($0.key, $0.value) })
        let checked = ChannelEvent(defusedContentUTF8: Array("x".utf8), meta: meta)
        #expect(literal == checked)
        #expect(literal.meta.map(\.value)[0] == "plain" && literal.meta.map(\.value)[3] == "newline")
    }

    /// The body is escaped once and the literal serves the notification and the log line: both
    /// lines must be byte for byte what escaping each on its own writes.
    @Test func aBodyEscapedOnceWritesTheSameNotificationAndLogLine() {
        let bodies = ["", "plain", #"{"a":"q\"uote","b":"back\\slash"}"#, "line\nbreak\u{1}\t", "é日本😀", String(repeating: "x\"", count: 3000)]
        for text in bodies {
            let body = Array(text.utf8)
            let record = EventRecord(id: "evt_1", sourceID: "src_1", sourceName: "s", deliveryID: "d", type: "t", receivedAt: 1,
                                     contentType: "application/json", headers: ["content-type": "application/json"], body: body,
                                     replayKeys: ["k"])
            let plain = EventNotification.channelEvent(for: record, replay: false)
            var once = plain
            #expect(once.contentIsStored(in: body) || body.isEmpty)
            let literal = once.makeContentLiteral()
            var plainLine: [UInt8] = [], onceLine: [UInt8] = []
            plain.writeNotification(into: &plainLine)
            once.writeNotification(into: &onceLine)
            #expect(onceLine == plainLine)
            var plainLog: [UInt8] = [], onceLog: [UInt8] = []
            EventLog.appendLine(record, into: &plainLog)
            EventLog.appendLine(record, into: &onceLog, bodyLiteral: literal)
            #expect(onceLog == plainLog)
        }
    }

    /// Queued for stdout as `any DeferredMessage`, an event of three words or less is stored in
    /// the existential itself; a fourth word would put every event in a heap box.
    @Test func anEventFitsAnExistentialsInlineBufferSoQueueingItAllocatesNoBox() {
        #expect(MemoryLayout<ChannelEvent>.size <= 3 * MemoryLayout<Int>.size)
    }

    /// An event made from a whole encoded line writes that line, also after its (empty) content
    /// was escaped.
    @Test func anEncodedEventWritesItsLineEvenAfterItsContentWasEscaped() {
        let line = Array(#"{"jsonrpc":"2.0","method":"notifications/claude/channel","params":{"content":"x","meta":{}}}"#.utf8)
        var event = ChannelEvent(encodedNotification: line)
        _ = event.makeContentLiteral()
        var written: [UInt8] = []
        event.writeNotification(into: &written)
        #expect(written == line)
        #expect(event == ChannelEvent(encodedNotification: line))
        #expect(event != ChannelEvent(encodedNotification: Array(line.dropLast())))
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
