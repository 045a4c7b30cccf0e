import Testing
@testable import HTTP

/// The parser takes a common field name or value from `InternedStrings` instead of making it:
/// only bytes equal to one exactly may give it, and a request parses the same either way.
struct InternedStringsTests {
    static func look(_ table: InternedStrings, _ text: String) -> String? {
        Array(text.utf8).withUnsafeBytes { table.string(equalTo: $0) }
    }

    @Test func onlyBytesEqualToAStringByteForByteGiveIt() {
        let table = InternedStrings(["Host", "Content-Type", "host", "X-A", "X-B", "application/json", ""])
        #expect(Self.look(table, "Host") == "Host")
        #expect(Self.look(table, "host") == "host")
        #expect(Self.look(table, "HOST") == nil)
        #expect(Self.look(table, "Hosts") == nil)
        #expect(Self.look(table, "Hose") == nil)
        #expect(Self.look(table, "X-B") == "X-B")
        #expect(Self.look(table, "X-C") == nil)
        #expect(Self.look(table, "Content-Typf") == nil)
        #expect(Self.look(table, "Content-Type") == "Content-Type")
        #expect(Self.look(table, "application/json") == "application/json")
        #expect(Self.look(table, "") == nil)
        #expect(Self.look(table, String(repeating: "x", count: 200)) == nil)
    }

    @Test func theSameFirstLastAndLengthIsNotEnough() {
        let table = InternedStrings(["abcd", "axxd"])
        #expect(Self.look(table, "abcd") == "abcd")
        #expect(Self.look(table, "axxd") == "axxd")
        #expect(Self.look(table, "ayyd") == nil)
    }

    @Test func headersParseTheSameWhetherTheirNamesAndValuesAreCommonOrNot() throws {
        let request = "POST /webhook HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\ncontent-type: Application/JSON\r\n"
            + "X-Custom-Thing: application/jsonx\r\nContent-Length: 2\r\n\r\n{}"
        let bytes = Array(request.utf8)
        let parsed = HTTPRequestParser.parse(bytes, limits: HTTPLimits())
        guard case .complete(let parsedRequest, _) = parsed else {
            Issue.record("not parsed: \(parsed)")
            return
        }
        let fields = parsedRequest.headers.map { "\($0.name)=\($0.value)" }
        #expect(fields == ["Host=a", "Content-Type=application/json", "content-type=Application/JSON",
                           "X-Custom-Thing=application/jsonx", "Content-Length=2"])
    }
}
