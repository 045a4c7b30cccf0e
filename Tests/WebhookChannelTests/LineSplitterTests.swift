import Testing
@testable import MCP
@testable import WebhookChannel

struct LineSplitterTests {
    private func split(_ chunks: [String], limit: Int = 16) -> [String] {
        var splitter = LineSplitter(maxLineBytes: limit)
        var events: [String] = []
        let emit: (LineReader.Event) -> Void = { event in
            switch event {
            case .line(let bytes): events.append(String(decoding: bytes, as: UTF8.self))
            case .oversized: events.append("<oversized>")
            case .endOfInput: events.append("<eof>")
            }
        }
        for chunk in chunks { splitter.feed(ArraySlice(Array(chunk.utf8)), emit: emit) }
        if let last = splitter.finish() { emit(last) }
        return events
    }

    @Test func joinsLinesSplitAcrossReads() {
        #expect(split(["{\"a\"", ":1}\n{}", "\n"]) == ["{\"a\":1}", "{}"])
    }

    @Test func stripsCarriageReturns() {
        #expect(split(["a\r\nb\r\n"]) == ["a", "b"])
    }

    @Test func oversizedLineIsReportedOnceAndDiscardedToItsNewline() {
        #expect(split(["0123456789", "0123456789", "0123456789\nok\n"]) == ["<oversized>", "ok"])
    }

    @Test func finalLineWithoutNewlineIsDelivered() {
        #expect(split(["a\nb"]) == ["a", "b"])
    }
}
