import Testing
@testable import JSON
@testable import WebhookChannel

struct JSONParserTests {
    @Test func parsesNestedValuesKeepingMemberOrder() throws {
        let value = try JSONParser.parse(#"{"b": [1, -2.5, true, null], "a": {"x": "y"}}"#)
        #expect(value.objectValue?.keys == ["b", "a"])
        #expect(value["b"] == [1, .double(-2.5), true, nil])
        #expect(value["a"]?["x"] == "y")
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONParser.parse(#""a\"\\\/\n\t\u00e9\ud83d\ude00""#)
        #expect(value == .string("a\"\\/\n\té😀"))
    }

    @Test func loneSurrogateBecomesReplacementCharacter() throws {
        #expect(try JSONParser.parse(#""\ud800x""#) == .string("\u{FFFD}x"))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":}", "01", "1.", "tru", "\"abc", "{} x", "[1 2]", "\"\u{01}\"", "{'a':1}", "-"])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    /// The named strings found are a short list: a later value replaces an earlier one, nil
    /// removes, and two lists are equal with the same pairs in any order.
    @Test func namedStringsBehaveAsADictionaryOfTheirNames() throws {
        var strings = JSONParser.NamedStrings()
        #expect(strings.isEmpty && strings["type"] == nil)
        strings["type"] = "a"
        strings["id"] = "1"
        strings["type"] = "b"
        #expect(strings.count == 2 && strings["type"] == "b" && strings["id"] == "1")
        #expect(strings == ["id": "1", "type": "b"])
        #expect(strings != ["id": "1", "type": "a"] && strings != ["id": "1"])
        strings["type"] = nil
        strings["absent"] = nil
        #expect(strings == ["id": "1"])
        strings["a"] = "x"
        strings["b"] = "y"
        strings["a"] = nil
        #expect(strings.count == 2 && strings == ["id": "1", "b": "y"] && strings["a"] == nil)
        strings["id"] = nil
        #expect(strings.count == 1 && strings["b"] == "y" && strings["id"] == nil)
        strings["b"] = nil
        #expect(strings.isEmpty && strings.count == 0)
        let last = try Array(#"{"type":"x","type":"y"}"#.utf8).withUnsafeBufferPointer {
            try JSONParser.validate($0, collectingStrings: ["type"])
        }
        #expect(last == ["type": "y"])
    }

    /// Looking for a few top-level names compares member names without making strings of
    /// them; what it finds must be what comparing strings found.
    @Test func topLevelNamesAreFoundWithEscapesAndOnlyAtTheTopLevel() throws {
        func strings(_ text: String, _ names: [String]) throws -> JSONParser.NamedStrings {
            try Array(text.utf8).withUnsafeBufferPointer { try JSONParser.validate($0, collectingStrings: names) }
        }
        #expect(try strings(#"{"t\u0079pe":"escaped"}"#, ["type"]) == ["type": "escaped"])
        #expect(try strings(#"{"a":{"type":"inner"},"typ":"short","types":"long","type":"outer"}"#, ["type"])
            == ["type": "outer"])
        #expect(try strings(#"{"Type":"upper"}"#, ["type"]).isEmpty)
        // Unicode's canonical equivalence, as String equality has it: a decomposed é (by
        // escape or as raw bytes) is the precomposed name asked for.
        #expect(try strings(#"{"caf\u0065\u0301":"escaped"}"#, ["café"]) == ["café": "escaped"])
        #expect(try strings("{\"cafe\u{301}\":\"raw\"}", ["café"]) == ["café": "raw"])
    }

    @Test func aNestedMemberNameIsStillCheckedThoughNeverMade() {
        // Invalid UTF-8 and a bad escape in names nobody asked for still make the body invalid.
        let invalidUTF8: [UInt8] = Array(#"{"a":{""#.utf8) + [0xFF] + Array(#"":1}}"#.utf8)
        #expect(throws: JSONParseError.self) {
            try invalidUTF8.withUnsafeBufferPointer { try JSONParser.validate($0, collectingStrings: ["type"]) }
        }
        #expect(throws: JSONParseError.self) {
            try Array(#"{"a":{"\q":1}}"#.utf8).withUnsafeBufferPointer { try JSONParser.validate($0, collectingStrings: ["type"]) }
        }
        #expect(throws: JSONParseError.self) { try JSONParser.parse(invalidUTF8) }
    }

    @Test func rejectsInvalidUTF8InStrings() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func boundsNestingDepth() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try JSONParser.parse(fine) }
    }

    @Test func integersStayExact() throws {
        #expect(try JSONParser.parse("9007199254740993") == .int(9_007_199_254_740_993))
        #expect(try JSONParser.parse("1e3") == .double(1000))
    }

    /// A number no Int64 or Double holds as written is kept as its text, and written back so.
    @Test(arguments: ["12345678901234567890123", "-9223372036854775809", "1E400", "-1e400", "1.00000000000000000001",
                      "123456789012345678.5"])
    func aNumberNoIntegerOrDoubleHoldsIsKeptAsWritten(text: String) throws {
        #expect(try JSONParser.parse(text) == .number(text))
        #expect(String(decoding: JSONWriter.compact(try JSONParser.parse("[\(text)]")), as: UTF8.self) == "[\(text)]")
    }

    @Test func ordinaryNumbersAreStillIntegersAndDoubles() throws {
        #expect(try JSONParser.parse("0.1") == .double(0.1))
        #expect(try JSONParser.parse("-2.5e-3") == .double(-0.0025))
        #expect(try JSONParser.parse("0.00000000000000000001") == .double(1e-20))
    }

    @Test func compactWriterEscapesControlCharacters() {
        let bytes = JSONWriter.compact(["k": .string("line\nbreak\u{01}\"q\"")])
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"k":"line\nbreak\u0001\"q\""}"#)
    }

    @Test func prettyWriterMatchesJavaScriptStringify() {
        let value: JSONValue = ["sources": .object(JSONObject()), "list": [1, 2], "n": nil]
        let text = String(decoding: JSONWriter.pretty(value), as: UTF8.self)
        #expect(text == "{\n  \"sources\": {},\n  \"list\": [\n    1,\n    2\n  ],\n  \"n\": null\n}\n")
    }

    @Test func writerOutputParsesBackToTheSameValue() throws {
        let value: JSONValue = ["a": ["b": [true, false, nil, 1, .double(0.5), "é\u{7f}\\"]], "c": ""]
        #expect(try JSONParser.parse(JSONWriter.compact(value)) == value)
        #expect(try JSONParser.parse(JSONWriter.pretty(value)) == value)
    }
}
