import Testing
@testable import HTTP
@testable import WebhookChannel

// Requests are written as plain strings; "\r\n" is spelled out so every line ending is
// visible and a bare "\n" in a test is always deliberate.

private func parse(_ text: String, limits: HTTPLimits = .standard) -> HTTPParseResult {
    HTTPRequestParser.parse(Array(text.utf8), limits: limits)
}

private func parseBytes(_ bytes: [UInt8], limits: HTTPLimits = .standard) -> HTTPParseResult {
    HTTPRequestParser.parse(bytes, limits: limits)
}

/// The request and consumed count, or a recorded issue.
private func complete(
    _ text: String, limits: HTTPLimits = .standard, sourceLocation: SourceLocation = #_sourceLocation
) -> (request: HTTPRequest, consumed: Int)? {
    let result = parse(text, limits: limits)
    guard case .complete(let request, let consumed) = result else {
        Issue.record("expected a complete request, got \(result)", sourceLocation: sourceLocation)
        return nil
    }
    return (request, consumed)
}

private func expectFailure(
    _ text: String, status: Int, code: String, limits: HTTPLimits = .standard,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    expectFailure(Array(text.utf8), status: status, code: code, limits: limits, sourceLocation: sourceLocation)
}

private func expectFailure(
    _ bytes: [UInt8], status: Int, code: String, limits: HTTPLimits = .standard,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let result = parseBytes(bytes, limits: limits)
    guard case .failure(let error) = result else {
        Issue.record("expected failure \(status), got \(result)", sourceLocation: sourceLocation)
        return
    }
    #expect(error.status == status, sourceLocation: sourceLocation)
    #expect(error.code == code, sourceLocation: sourceLocation)
    #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
}

private func expectBadRequest(
    _ text: String, limits: HTTPLimits = .standard, sourceLocation: SourceLocation = #_sourceLocation
) {
    expectFailure(text, status: 400, code: "bad_request", limits: limits, sourceLocation: sourceLocation)
}

private func expectNeedMore(
    _ text: String, head expectHead: Bool? = nil, limits: HTTPLimits = .standard,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let result = parse(text, limits: limits)
    guard case .needMore(let progress) = result else {
        Issue.record("expected needMore, got \(result)", sourceLocation: sourceLocation)
        return
    }
    if let expectHead {
        #expect((progress.head != nil) == expectHead, sourceLocation: sourceLocation)
    }
}

private func repeated(_ character: Character, _ count: Int) -> String {
    String(repeating: String(character), count: count)
}

struct HTTPRequestParserTests {
    // MARK: Valid requests

    @Test func simpleGetIsParsed() throws {
        let text = "GET /health?x=1 HTTP/1.1\r\nHost: localhost:8788\r\nAccept: */*\r\n\r\n"
        let (request, consumed) = try #require(complete(text))
        #expect(request.method == "GET")
        #expect(request.target == "/health?x=1")
        #expect(request.path == "/health")
        #expect(request.query == "x=1")
        #expect(request.version == .http11)
        #expect(request.headers.count == 2)
        #expect(request.headers["host"] == "localhost:8788")
        #expect(request.body.isEmpty)
        #expect(consumed == text.utf8.count)
    }

    @Test func postWithContentLengthCarriesItsBody() throws {
        let text = "POST /webhook HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n\r\n{\"a\":\"hello\"}"
        let (request, consumed) = try #require(complete(text))
        #expect(request.body == Array("{\"a\":\"hello\"}".utf8))
        #expect(consumed == text.utf8.count)
    }

    @Test func http10WithoutHostIsAccepted() throws {
        let (request, _) = try #require(complete("GET / HTTP/1.0\r\n\r\n"))
        #expect(request.version == .http10)
        #expect(request.headers.isEmpty)
    }

    @Test func targetWithoutQueryHasNilQuery() throws {
        let (request, _) = try #require(complete("GET /pair HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(request.path == "/pair")
        #expect(request.query == nil)
        let (empty, _) = try #require(complete("GET /pair? HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(empty.path == "/pair")
        #expect(empty.query == "")
    }

    @Test func fieldValuesAreTrimmedOfSpacesAndTabs() throws {
        let (request, _) = try #require(complete("GET / HTTP/1.1\r\nHost: a\r\nX-A: \t value with  inner \t \r\n\r\n"))
        #expect(request.headers["X-A"] == "value with  inner")
    }

    @Test func emptyFieldValueIsAllowed() throws {
        let (request, _) = try #require(complete("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blank:   \r\n\r\n"))
        #expect(request.headers["x-empty"] == "")
        #expect(request.headers["x-blank"] == "")
    }

    @Test func tabAndNonASCIIBytesAreAllowedInFieldValues() throws {
        let (request, _) = try #require(complete("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\u{E9}\tbar\r\n\r\n"))
        #expect(request.headers["X-Name"] == "caf\u{E9}\tbar")
    }

    @Test func headerNamesKeepTheirCaseAndOrderAndLookupIgnoresCase() throws {
        let text = "GET / HTTP/1.1\r\nhOsT: a\r\nX-Dup: 1\r\nx-dup: 2\r\nOther: o\r\n\r\n"
        let (request, _) = try #require(complete(text))
        let names = request.headers.map(\.name)
        #expect(names == ["hOsT", "X-Dup", "x-dup", "Other"])
        #expect(request.headers["HOST"] == "a")
        #expect(request.headers["X-DUP"] == "1")
        #expect(request.headers.values(for: "x-DUP") == ["1", "2"])
        #expect(request.headers.contains("other"))
        #expect(!request.headers.contains("Othe"))
    }

    @Test func oneLeadingEmptyLineIsSkipped() throws {
        let text = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
        let (request, consumed) = try #require(complete(text))
        #expect(request.target == "/")
        #expect(consumed == text.utf8.count)
    }

    @Test func twoLeadingEmptyLinesAreRejected() {
        expectBadRequest("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    }

    @Test func unusualButValidMethodsAndTargetsAreAccepted() throws {
        let (options, _) = try #require(complete("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(options.method == "OPTIONS")
        #expect(options.target == "*")
        let (custom, _) = try #require(complete("M-SEARCH http://a/b?c=%20d HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(custom.method == "M-SEARCH")
        #expect(custom.target == "http://a/b?c=%20d")
        // Absolute form: the path and query are the target's, its authority stands in for Host.
        #expect(custom.path == "/b")
        #expect(custom.query == "c=%20d")
        #expect(custom.authority == "a")
        #expect(HTTPRequest(method: "GET", target: "HTTPS://h:1").path == "/")
        #expect(HTTPRequest(method: "GET", target: "http://h:1?x").path == "/")
        #expect(HTTPRequest(method: "GET", target: "/p").authority == nil)
    }

    @Test func aTargetInNoneOfTheFourFormsIsABadRequest() throws {
        for target in ["health", "pair/status", "*/x", "**", "1http://a/", "-:x", "%2F"] {
            expectBadRequest("GET \(target) HTTP/1.1\r\nHost: a\r\n\r\n")
        }
        // Authority form reads as a scheme and a colon; it is routed, not refused here.
        let (connect, _) = try #require(complete("CONNECT localhost:80 HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(connect.target == "localhost:80")
    }

    @Test func aHostThatIsNoHostAndPortIsABadRequest() throws {
        for host in ["a b", "a:8x", "a:80@evil", "[::1", "[::1]x", "[]", "a/b", "a?b", "a:80:90", "caf\u{E9}"] {
            expectBadRequest("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        }
        for host in ["", "a", "a:", "localhost:8788", "127.0.0.1:1", "[::1]:8788", "[fe80::1%25eth0]", "xn--bcher-kva.example:443"] {
            let (request, _) = try #require(complete("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n"), "Host: \(host)")
            #expect(request.headers["Host"] == host)
        }
    }

    @Test func methodsOtherThanPostPutPatchNeedNoLength() throws {
        for method in ["GET", "DELETE", "HEAD", "OPTIONS", "post"] {
            let (request, _) = try #require(complete("\(method) / HTTP/1.1\r\nHost: a\r\n\r\n"))
            #expect(request.body.isEmpty)
        }
    }

    @Test func getWithContentLengthHasABody() throws {
        let (request, _) = try #require(complete("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"))
        #expect(request.body == Array("hi".utf8))
    }

    @Test func zeroContentLengthPostIsComplete() throws {
        let (request, _) = try #require(complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"))
        #expect(request.body.isEmpty)
    }

    @Test func bodyBytesAreNotInterpreted() throws {
        let body = "\r\n\n\0\u{7F}GET / HTTP/1.1\r\n"
        let text = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
        let (request, consumed) = try #require(complete(text))
        #expect(request.body == Array(body.utf8))
        #expect(consumed == text.utf8.count)
    }

    // MARK: Line endings and control characters

    @Test func bareLFEndingTheRequestLineIsRejected() {
        expectBadRequest("GET / HTTP/1.1\nHost: a\r\n\r\n")
    }

    @Test func bareLFEndingAHeaderLineIsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n")
    }

    @Test func bareLFEndingTheHeadIsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\n\n")
        expectBadRequest("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    }

    @Test func bareLFIsRejectedBeforeTheLineIsComplete() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\nc")
    }

    @Test func bareCRIsRejected() {
        expectBadRequest("GET / HTTP/1.1\rHost: a\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\n\rx")
        expectBadRequest("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    }

    @Test func nulInTheRequestLineIsRejected() {
        expectBadRequest("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n")
        expectBadRequest("GE\0")
    }

    @Test func controlCharactersInFieldsAreRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}b\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nX\u{1B}: ab\r\n\r\n")
    }

    @Test func tabInTheRequestLineIsRejected() {
        expectBadRequest("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n")
        expectBadRequest("GET /\tx HTTP/1.1\r\nHost: a\r\n\r\n")
    }

    // MARK: Field lines

    @Test func obsFoldIsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n")
    }

    @Test func whitespaceBeforeTheFirstHeaderIsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\n Host: a\r\n\r\n")
    }

    @Test func obsFoldIsRejectedBeforeTheLineIsComplete() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\n ")
    }

    @Test func whitespaceBetweenFieldNameAndColonIsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nHost : a\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n")
        expectBadRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello")
    }

    @Test func emptyFieldNameIsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n")
    }

    @Test func nonTokenFieldNameIsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nX\"A: b\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nCaf\u{E9}: b\r\n\r\n")
    }

    @Test func headerLineWithoutColonIsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n")
    }

    // MARK: Request line

    @Test(arguments: [
        "GET  / HTTP/1.1",
        "GET /  HTTP/1.1",
        "GET /",
        "GET / ",
        "GET",
        "GET / HTTP/1.1 ",
        " GET / HTTP/1.1",
        "G(T / HTTP/1.1",
        "/ HTTP/1.1",
        "GET /a b HTTP/1.1",
        "GET /caf\u{E9} HTTP/1.1",
        "GET / http/1.1",
        "GET / HTTP/x",
        "GET / HTTP/1",
        "GET / HTTP/1.",
        "GET / HTTP/1.1x",
        "GET / HTTP/11.1",
        "GET / HTTP/1,1",
        "GET / HTTPS/1.1",
    ])
    func malformedRequestLineIsRejected(line: String) {
        expectBadRequest(line + "\r\nHost: a\r\n\r\n")
    }

    @Test(arguments: ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.1", "HTTP/9.9"])
    func unsupportedVersionGets505(version: String) {
        expectFailure("GET / \(version)\r\nHost: a\r\n\r\n", status: 505, code: "version_not_supported")
    }

    // MARK: Host

    @Test func missingHostOnHTTP11IsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")
    }

    @Test func moreThanOneHostIsRejected() {
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")
        expectBadRequest("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n")
        expectBadRequest("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n")
    }

    // MARK: Framing

    @Test func contentLengthWithTransferEncodingIsRejected() {
        expectBadRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        expectBadRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")
    }

    @Test(arguments: ["abc", "-1", "+5", "1.0", "", "5 5", "0x10", "1e3", "99999999999999999999999x", ",", "5,", ",5", "5;"])
    func invalidContentLengthIsRejected(value: String) {
        expectBadRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\nhello")
    }

    /// A valid length too large for any integer (RFC 9110 section 8.6: recipients anticipate
    /// large numerals) is a body too large, not a malformed request.
    @Test(arguments: ["9223372036854775808", "99999999999999999999999", "00000000000000000000000099999999999999999999"])
    func aContentLengthPastEveryIntegerIs413(value: String) {
        expectFailure("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\n", status: 413, code: "payload_too_large")
    }

    @Test func identicalContentLengthsAreAccepted() throws {
        let (fields, _) = try #require(complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"))
        #expect(fields.body == Array("hello".utf8))
        let (list, _) = try #require(complete("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 ,\t5, 005\r\n\r\nhello"))
        #expect(list.body == Array("hello".utf8))
    }

    @Test func differingContentLengthsAreRejected() {
        expectBadRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
        expectBadRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!")
    }

    @Test(arguments: ["gzip", "identity", "chunked, gzip", "gzip, chunked", "chunked, chunked", "chunked;q=1", "chunkedx", ""])
    func transferEncodingOtherThanChunkedGets501(value: String) {
        expectFailure(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(value)\r\n\r\n0\r\n\r\n",
            status: 501, code: "not_implemented")
    }

    @Test func twoTransferEncodingFieldsGet501() {
        expectFailure(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            status: 501, code: "not_implemented")
    }

    @Test func transferEncodingIsCaseInsensitiveAndTrimmed() throws {
        let (request, _) = try #require(complete("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \t ChUnKeD  \r\n\r\n2\r\nhi\r\n0\r\n\r\n"))
        #expect(request.body == Array("hi".utf8))
    }

    /// The framing fields are told apart by their length, first and last letter, then the
    /// whole name: a name that agrees in the first three is not taken for them.
    @Test func framingFieldsAreKnownByTheirWholeNameInAnyCase() throws {
        let (request, _) = try #require(complete("POST / HTTP/1.1\r\nhOST: a\r\ncONTENT-lENGTH: 2\r\n\r\nhi"))
        #expect(request.body == Array("hi".utf8))
        expectBadRequest("GET / HTTP/1.1\r\nHeat: a\r\n\r\n")  // no Host
        expectFailure("POST / HTTP/1.1\r\nHost: a\r\nCxntent-Length: 2\r\n\r\nhi", status: 411, code: "length_required")
        expectFailure("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encodinx: chunked\r\n\r\n", status: 411, code: "length_required")
        expectFailure(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkez\r\n\r\n0\r\n\r\n", status: 501, code: "not_implemented")
    }

    @Test func transferEncodingOnHTTP10IsRejected() {
        expectBadRequest("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    }

    @Test(arguments: ["POST", "PUT", "PATCH"])
    func bodyMethodWithoutLengthGets411(method: String) {
        expectFailure("\(method) /pair HTTP/1.1\r\nHost: a\r\n\r\n", status: 411, code: "length_required")
    }

    // MARK: Chunked bodies

    @Test func chunkedBodyIsDecoded() throws {
        let text = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
        let (request, consumed) = try #require(complete(text))
        #expect(request.body == Array("hello, world".utf8))
        #expect(consumed == text.utf8.count)
        #expect(request.headers["Transfer-Encoding"] == "chunked")
    }

    @Test func emptyChunkedBodyIsComplete() throws {
        let (request, _) = try #require(complete("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
        #expect(request.body.isEmpty)
    }

    @Test func chunkSizeHexIsCaseInsensitiveAndMayHaveLeadingZeros() throws {
        let data = repeated("x", 26)
        for size in ["1a", "1A", "001a", "0000000000000000000001A"] {
            let (request, _) = try #require(complete(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\n\(data)\r\n0\r\n\r\n"))
            #expect(request.body.count == 26)
        }
    }

    @Test func chunkExtensionsAreIgnored() throws {
        let text = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n1 ; a = \"b c\";d\r\n!\r\n0;last\r\n\r\n"
        let (request, _) = try #require(complete(text))
        #expect(request.body == Array("hello!".utf8))
    }

    @Test func trailersAreParsedAndDiscarded() throws {
        let text = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "2\r\nhi\r\n0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n"
        let (request, consumed) = try #require(complete(text))
        #expect(request.body == Array("hi".utf8))
        #expect(!request.headers.contains("X-Trailer"))
        #expect(consumed == text.utf8.count)
    }

    @Test func invalidTrailersAreRejected() {
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        expectBadRequest(head + "X-T : y\r\n\r\n")
        expectBadRequest(head + "X-T: y\r\n z\r\n\r\n")
        expectBadRequest(head + "X-T: y\n\r\n")
        expectBadRequest(head + "\n")
    }

    @Test func chunkDataWithoutCRLFIsRejected() {
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        expectBadRequest(head + "5\r\nhelloX\r\n0\r\n\r\n")
        expectBadRequest(head + "5\r\nhello\n0\r\n\r\n")
        expectBadRequest(head + "5\r\nhello\rX")
        expectBadRequest(head + "3\r\nhello\r\n0\r\n\r\n")
    }

    @Test func chunkSizeLineWithoutCRLFIsRejected() {
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        expectBadRequest(head + "5\nhello\r\n0\r\n\r\n")
        expectBadRequest(head + "5\rhello\r\n0\r\n\r\n")
        expectBadRequest(head + "2\r\nhi\r\n0\n\r\n")
    }

    @Test(arguments: ["", "g", "-1", "+1", " 5", "5 ", "0x5", "5 x", "5\t", "FFFFFFFFFFFFFFFFF", "10000000000000000"])
    func malformedChunkSizeIsRejected(size: String) {
        expectBadRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\nhello\r\n0\r\n\r\n")
    }

    @Test func chunkedBodyOverTheLimitGets413BeforeTheDataArrives() {
        let limits = HTTPLimits(maxBodyBytes: 10)
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        expectFailure(head + "b\r\n", status: 413, code: "payload_too_large", limits: limits)
        expectFailure(head + "6\r\nhello!\r\n5\r\n", status: 413, code: "payload_too_large", limits: limits)
        expectFailure(head + "7FFFFFFFFFFFFFFF\r\n", status: 413, code: "payload_too_large", limits: limits)
    }

    @Test func chunkedBodyExactlyAtTheLimitIsAccepted() throws {
        let limits = HTTPLimits(maxBodyBytes: 10)
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        let (request, _) = try #require(complete(head + "6\r\nhello!\r\n4\r\nabcd\r\n0\r\n\r\n", limits: limits))
        #expect(request.body.count == 10)
    }

    @Test func overlongChunkSizeLineIsRejectedBeforeItEnds() {
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        let line = "5;" + repeated("e", HTTPLimits.maxChunkLineBytes - 2)
        // Exactly at the limit the line is fine.
        #expect(complete(head + line + "\r\nhello\r\n0\r\n\r\n") != nil)
        expectBadRequest(head + line + "e")
    }

    @Test func chunkFramingBeyondItsBudgetGets413() {
        // The budget is maxBodyBytes + maxChunkLineBytes = 4196 here: five 1-byte chunks
        // with 1000-byte extensions stay under the body limit but not under the budget.
        let limits = HTTPLimits(maxBodyBytes: 100)
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        let chunk = "1;" + repeated("e", 1000) + "\r\nx\r\n"
        #expect(complete(head + String(repeating: chunk, count: 4) + "0\r\n\r\n", limits: limits) != nil)
        let result = parse(head + String(repeating: chunk, count: 5), limits: limits)
        guard case .failure(let error) = result else {
            Issue.record("expected 413, got \(result)")
            return
        }
        #expect(error.status == 413)
        #expect(error.message.contains("framing"))
    }

    @Test func tooManyTrailerFieldsGet431() {
        let limits = HTTPLimits(maxHeaderCount: 3)
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        #expect(complete(head + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits) != nil)
        expectFailure(head + "A: 1\r\nB: 2\r\nC: 3\r\nD", status: 431, code: "headers_too_large", limits: limits)
    }

    @Test func oversizedTrailerSectionGets431() {
        let limits = HTTPLimits(maxHeaderBytes: 64)
        let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
        expectFailure(head + "X: " + repeated("v", 62), status: 431, code: "headers_too_large", limits: limits)
    }

    @Test func incompleteChunkedBodyReportsTheHead() throws {
        let result = parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        guard case .needMore(let progress) = result, let head = progress.head else {
            Issue.record("expected needMore with a head, got \(result)")
            return
        }
        #expect(head.chunked)
        #expect(head.contentLength == nil)
    }

    // MARK: Incremental input

    static let validRequests: [String] = [
        "GET /health HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n",
        "\r\nGET / HTTP/1.0\r\n\r\n",
        "POST /webhook HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nX-Signature: sha256=ab\r\n\r\n{\"a\":\"bc\"}\n",
        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n",
        "PUT /y HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    ]

    @Test(arguments: HTTPRequestParserTests.validRequests)
    func everyPrefixOfAValidRequestNeedsMore(text: String) throws {
        let bytes = Array(text.utf8)
        guard case .complete(let full, let consumed) = parseBytes(bytes) else {
            Issue.record("the full request should parse")
            return
        }
        #expect(consumed == bytes.count)
        for split in 0..<bytes.count {
            let result = parseBytes(Array(bytes[..<split]))
            guard case .needMore(let progress) = result else {
                Issue.record("prefix of \(split) bytes gave \(result)")
                continue
            }
            if let head = progress.head {
                #expect(head.method == full.method)
                #expect(head.headers == full.headers)
            }
        }
    }

    @Test func headIsReportedOnlyOnceTheHeadIsComplete() {
        let head = "POST /pair HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        expectNeedMore(head, head: false)
        expectNeedMore(head + "\r", head: false)
        expectNeedMore(head + "\r\n", head: true)
        expectNeedMore(head + "\r\nhell", head: true)
    }

    @Test func expectContinueHeadIsReportedBeforeTheBody() throws {
        let result = parse("POST /webhook HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n")
        guard case .needMore(let progress) = result, let head = progress.head else {
            Issue.record("expected a head, got \(result)")
            return
        }
        #expect(head.expectsContinue)
        #expect(head.contentLength == 5)
        #expect(!head.chunked)
        #expect(head.method == "POST")
        #expect(head.target == "/webhook")
        #expect(head.version == .http11)
    }

    @Test func expectContinueIsIgnoredForHTTP10() throws {
        let (request, _) = try #require(complete("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"))
        #expect(!request.expectsContinue)
        let (other, _) = try #require(complete("GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n"))
        #expect(!other.expectsContinue)
    }

    @Test func pipelinedRequestsAreParsedOneAtATime() throws {
        let first = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        let second = "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n"
        let third = "GET /c HTTP/1.1\r\nHost: a\r\n\r\n"
        var buffer = Array((first + second + third).utf8)
        var seen: [(String, [UInt8])] = []
        while !buffer.isEmpty {
            guard case .complete(let request, let consumed) = parseBytes(buffer) else {
                Issue.record("pipelined request did not parse")
                return
            }
            seen.append((request.path, request.body))
            buffer.removeFirst(consumed)
        }
        #expect(seen.map(\.0) == ["/a", "/b", "/c"])
        #expect(seen.map(\.1) == [Array("abc".utf8), Array("z".utf8), []])
    }

    @Test func consumedStopsAtTheEndOfTheFirstRequest() throws {
        let first = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
        let (_, consumed) = try #require(complete(first + "GET /b HT"))
        #expect(consumed == first.utf8.count)
    }

    // MARK: Resuming

    /// Feeds `wire` in reads of `readSize` bytes, passing the progress back each time as
    /// `HTTPServerConnection` does (or not, with `resume: false`). Returns the last result
    /// and how many bytes the parser looked at in all.
    private func parseInReads(_ wire: [UInt8], readSize: Int, resume: Bool = true) -> (HTTPParseResult?, examined: Int) {
        var examined = 0
        var progress: HTTPParseProgress?
        var result: HTTPParseResult?
        var received = 0
        while received < wire.count {
            received = min(wire.count, received + readSize)
            result = wire.withUnsafeBytes { raw in
                HTTPRequestParser.parse(
                    UnsafeRawBufferPointer(rebasing: raw[..<received]), limits: .standard,
                    resuming: resume ? progress : nil, examined: &examined)
            }
            guard case .needMore(let next) = result else { break }
            progress = next
        }
        return (result, examined)
    }

    private func tinyChunks(_ count: Int) -> [UInt8] {
        var wire = Array("POST /webhook HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        wire.reserveCapacity(wire.count + 6 * count + 5)
        for _ in 0..<count { wire += Array("1\r\nx\r\n".utf8) }
        wire += Array("0\r\n\r\n".utf8)
        return wire
    }

    /// 170 000 one-byte chunks are about 1 MB of framing. Read again from the start on every
    /// read, they cost time quadratic in their size and stalled the event loop; resumed,
    /// each byte is looked at a bounded number of times however the reads fall.
    @Test func aBodyOfManyTinyChunksCostsWorkInProportionToItsSize() throws {
        let wire = tinyChunks(170_000)
        for readSize in [65_536, 4096, 100] {
            let (result, examined) = parseInReads(wire, readSize: readSize)
            guard case .complete(let request, let consumed) = result else {
                Issue.record("reads of \(readSize): \(String(describing: result))")
                continue
            }
            #expect(consumed == wire.count)
            #expect(request.body == [UInt8](repeating: UInt8(ascii: "x"), count: 170_000))
            // Chunk lines are scanned once, then the body decoded once.
            #expect(examined <= 2 * wire.count + wire.count / readSize + 2,
                    "reads of \(readSize): looked at \(examined) bytes of \(wire.count)")
        }
    }

    /// The counter above measures what it claims: parsing from the start on every read
    /// looks at far more bytes, already for a small body.
    @Test func parsingFromTheStartOnEveryReadLooksAtQuadraticallyManyBytes() {
        let wire = tinyChunks(5000)
        let (resumed, resumedWork) = parseInReads(wire, readSize: 256)
        let (restarted, restartedWork) = parseInReads(wire, readSize: 256, resume: false)
        #expect(resumed == restarted)
        #expect(restartedWork > 10 * resumedWork, "from the start: \(restartedWork) bytes, resumed: \(resumedWork)")
    }

    /// Once the head says how long the body is, waiting for it is a length check: none of
    /// the body is looked at until all of it is there, and then it is copied once.
    @Test func aContentLengthBodyIsNotReadUntilItIsComplete() {
        let head = Array("POST /webhook HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n".utf8)
        let wire = head + [UInt8](repeating: UInt8(ascii: "b"), count: 100_000)
        let (waiting, headWork) = parseInReads(Array(wire[..<(wire.count - 1)]), readSize: 1000)
        guard case .needMore(let progress) = waiting else {
            Issue.record("expected needMore, got \(String(describing: waiting))")
            return
        }
        #expect(progress.head?.contentLength == 100_000)
        // The head is scanned once and its fields collected once; then nothing.
        #expect(headWork <= 2 * head.count + 1, "looked at \(headWork) bytes while waiting for the body")

        let (result, work) = parseInReads(wire, readSize: 1000)
        guard case .complete(let request, let consumed) = result else {
            Issue.record("expected a complete request, got \(String(describing: result))")
            return
        }
        #expect(consumed == wire.count)
        #expect(request.body.count == 100_000)
        #expect(work <= headWork + 100_000)
    }

    @Test func resumingGivesWhatParsingAtOnceGives() {
        for text in Self.validRequests {
            let bytes = Array(text.utf8)
            for readSize in 1...8 {
                #expect(parseInReads(bytes, readSize: readSize).0 == parseBytes(bytes), "\(text.debugDescription) in reads of \(readSize)")
            }
        }
        // The same holds for refusals, decided at the same byte.
        let refused = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n"
        #expect(parseInReads(Array(refused.utf8), readSize: 3).0 == parse(refused))
    }

    /// A progress from other bytes (its positions past their end) cannot be trusted, and
    /// reading where it points could go out of bounds: the parser starts from the beginning.
    @Test func aProgressThatDoesNotFitTheBytesIsIgnored() throws {
        let longer = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel"
        guard case .needMore(let progress) = parse(longer) else {
            Issue.record("expected needMore")
            return
        }
        let shorter = Array("GET / HTTP/1.1\r\n".utf8)
        #expect(HTTPRequestParser.parse(shorter, limits: .standard, resuming: progress) == parseBytes(shorter))
    }

    // MARK: Limits

    @Test func requestLineExactlyAtTheLimitIsAccepted() throws {
        let limits = HTTPLimits(maxRequestLineBytes: 64)
        let target = "/" + repeated("a", 64 - "GET  HTTP/1.1".utf8.count - 1)
        let line = "GET \(target) HTTP/1.1"
        #expect(line.utf8.count == 64)
        #expect(complete(line + "\r\nHost: a\r\n\r\n", limits: limits) != nil)
    }

    @Test func requestLineOneOverTheLimitGets414() {
        let limits = HTTPLimits(maxRequestLineBytes: 64)
        let target = "/" + repeated("a", 64 - "GET  HTTP/1.1".utf8.count)
        let line = "GET \(target) HTTP/1.1"
        #expect(line.utf8.count == 65)
        expectFailure(line + "\r\nHost: a\r\n\r\n", status: 414, code: "uri_too_long", limits: limits)
    }

    @Test func overlongRequestLineGets414BeforeItsCRLFArrives() {
        let limits = HTTPLimits(maxRequestLineBytes: 64)
        expectNeedMore("GET /" + repeated("a", 59), limits: limits)
        expectFailure("GET /" + repeated("a", 60), status: 414, code: "uri_too_long", limits: limits)
        expectFailure("\r\nGET /" + repeated("a", 60), status: 414, code: "uri_too_long", limits: limits)
        expectFailure("GET /" + repeated("a", 9000), status: 414, code: "uri_too_long")
    }

    /// A header section of exactly `size` bytes (field lines with their CRLFs).
    private func headerSection(size: Int, fill: Character = "v") -> String {
        let first = "Host: a\r\n"
        let rest = size - first.utf8.count - "X: \r\n".utf8.count
        return first + "X: " + repeated(fill, rest) + "\r\n"
    }

    @Test func headerSectionExactlyAtTheLimitIsAccepted() throws {
        let limits = HTTPLimits(maxHeaderBytes: 200)
        let headers = headerSection(size: 200)
        #expect(headers.utf8.count == 200)
        let (request, _) = try #require(complete("GET / HTTP/1.1\r\n" + headers + "\r\n", limits: limits))
        #expect(request.headers.count == 2)
    }

    @Test func headerSectionOneOverTheLimitGets431() {
        let limits = HTTPLimits(maxHeaderBytes: 200)
        expectFailure(
            "GET / HTTP/1.1\r\n" + headerSection(size: 201) + "\r\n",
            status: 431, code: "headers_too_large", limits: limits)
        // One more field line after a section that is exactly full.
        expectFailure(
            "GET / HTTP/1.1\r\n" + headerSection(size: 200) + "Y",
            status: 431, code: "headers_too_large", limits: limits)
    }

    @Test func oversizedHeaderSectionGets431BeforeItEnds() {
        let limits = HTTPLimits(maxHeaderBytes: 200)
        let start = "GET / HTTP/1.1\r\nHost: a\r\nX: "
        // 9 + 3 + 186 = 198 bytes of field line, 2 left for its CRLF: still possible.
        expectNeedMore(start + repeated("v", 186), limits: limits)
        expectFailure(start + repeated("v", 187), status: 431, code: "headers_too_large", limits: limits)
        expectFailure(
            "GET / HTTP/1.1\r\nX: " + repeated("v", 20_000), status: 431, code: "headers_too_large")
    }

    @Test func headerCountAtTheLimitIsAcceptedAndOneMoreGets431() {
        let limits = HTTPLimits(maxHeaderCount: 5)
        var fields = "Host: a\r\n"
        for index in 1..<5 { fields += "X-\(index): v\r\n" }
        #expect(complete("GET / HTTP/1.1\r\n" + fields + "\r\n", limits: limits) != nil)
        expectFailure(
            "GET / HTTP/1.1\r\n" + fields + "X-5: v\r\n\r\n",
            status: 431, code: "headers_too_large", limits: limits)
        // Known as soon as the sixth line starts.
        expectFailure("GET / HTTP/1.1\r\n" + fields + "X", status: 431, code: "headers_too_large", limits: limits)
    }

    @Test func defaultLimitsAllowAHundredHeaders() {
        var fields = "Host: a\r\n"
        for index in 1..<100 { fields += "X-\(index): v\r\n" }
        #expect(complete("GET / HTTP/1.1\r\n" + fields + "\r\n") != nil)
        expectFailure("GET / HTTP/1.1\r\n" + fields + "X-100: v\r\n\r\n", status: 431, code: "headers_too_large")
    }

    @Test func contentLengthAtTheLimitIsAccepted() throws {
        let limits = HTTPLimits(maxBodyBytes: 16)
        let (request, _) = try #require(complete(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 16\r\n\r\n" + repeated("b", 16), limits: limits))
        #expect(request.body.count == 16)
    }

    @Test func contentLengthOverTheLimitGets413FromTheHeadAlone() {
        let limits = HTTPLimits(maxBodyBytes: 16)
        expectFailure(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n",
            status: 413, code: "payload_too_large", limits: limits)
        expectFailure(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(1 << 20 + 1)\r\n\r\n",
            status: 413, code: "payload_too_large")
        expectFailure(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n",
            status: 413, code: "payload_too_large")
    }

    @Test func errorMessagesDoNotEchoClientBytes() {
        let marker = "zq7marker"
        let inputs = [
            "GET /\(marker)\0 HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\n\(marker) : x\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(marker)\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(marker)\r\n\r\n",
            "\(marker) / HTTP/7.0\r\n\r\n",
        ]
        for input in inputs {
            guard case .failure(let error) = parse(input) else {
                Issue.record("expected a failure")
                continue
            }
            #expect(!error.message.contains(marker))
        }
    }

    @Test func emptyInputNeedsMore() {
        expectNeedMore("", head: false)
        expectNeedMore("\r", head: false)
        expectNeedMore("\r\n", head: false)
    }

    @Test func parsingFromARawBufferMatchesParsingFromAnArray() {
        let bytes = Array(Self.validRequests[2].utf8)
        let viaBuffer = bytes.withUnsafeBytes { HTTPRequestParser.parse($0, limits: .standard) }
        #expect(viaBuffer == parseBytes(bytes))
        let empty = HTTPRequestParser.parse(UnsafeRawBufferPointer(start: nil, count: 0), limits: .standard)
        #expect(empty == .needMore(HTTPParseProgress()))
    }

    // MARK: HTTPRequest helpers

    struct KeepAliveCase: Sendable, CustomTestStringConvertible {
        var version: String
        var connection: String
        var keepAlive: Bool
        var testDescription: String { "\(version) Connection: \(connection)" }
    }

    @Test(arguments: [
        KeepAliveCase(version: "HTTP/1.1", connection: "", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.1", connection: "close", keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: "Keep-Alive, CLOSE", keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: "upgrade", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: "", keepAlive: false),
        KeepAliveCase(version: "HTTP/1.0", connection: "keep-alive", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: " Upgrade ,Keep-Alive ", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: "keep-alive, close", keepAlive: false),
        KeepAliveCase(version: "HTTP/1.0", connection: "keep-alive-ish", keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: "closed", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.1", connection: "upgrade,,\tclose\t,", keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: ",", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.1", connection: "clos e", keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: "KEEP-ALIVE,", keepAlive: true),
    ])
    func keepAliveFollowsVersionAndConnectionHeader(example: KeepAliveCase) throws {
        let field = example.connection.isEmpty ? "" : "Connection: \(example.connection)\r\n"
        let (request, _) = try #require(complete("GET / \(example.version)\r\nHost: a\r\n\(field)\r\n"))
        #expect(request.keepAlive == example.keepAlive)
    }

    @Test func keepAliveReadsEveryConnectionField() throws {
        let (request, _) = try #require(complete("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nConnection: close\r\n\r\n"))
        #expect(!request.keepAlive)
    }

    @Test func queryParametersArePercentDecoded() throws {
        let (request, _) = try #require(complete(
            "GET /pair/status?code=a3kx9z&name=caf%C3%A9+bar&flag&x%20y=%2B1&bad=%zz%4&code=second HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(request.queryParameter("code") == "a3kx9z")
        #expect(request.queryParameter("name") == "caf\u{E9} bar")
        #expect(request.queryParameter("flag") == "")
        #expect(request.queryParameter("x y") == "+1")
        #expect(request.queryParameter("bad") == "%zz%4")
        #expect(request.queryParameter("missing") == nil)
        let (noQuery, _) = try #require(complete("GET /pair/status HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(noQuery.queryParameter("code") == nil)
    }

    @Test func serializedRequestUsesOneContentLength() {
        var headers = HTTPHeaders()
        headers.append(name: "Host", value: "a")
        headers.append(name: "transfer-encoding", value: "chunked")
        headers.append(name: "X-A", value: "b")
        let request = HTTPRequest(method: "POST", target: "/p?q", headers: headers, body: Array("hi".utf8))
        let text = String(decoding: request.serialized(), as: UTF8.self)
        #expect(text == "POST /p?q HTTP/1.1\r\nHost: a\r\nX-A: b\r\nContent-Length: 2\r\n\r\nhi")
        let empty = HTTPRequest(method: "POST", target: "/", headers: ["Host": "a"])
        #expect(String(decoding: empty.serialized(), as: UTF8.self) == "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
        let get = HTTPRequest(method: "GET", target: "/", version: .http10)
        #expect(String(decoding: get.serialized(), as: UTF8.self) == "GET / HTTP/1.0\r\n\r\n")
    }

    @Test func reparsingASerializedRequestGivesItBack() throws {
        let (request, _) = try #require(complete(
            "POST /w?a=1 HTTP/1.1\r\nHost: a\r\nX-Sig: s\r\nContent-Length: 3\r\n\r\nabc"))
        guard case .complete(let again, _) = parseBytes(request.serialized()) else {
            Issue.record("serialized request did not parse")
            return
        }
        #expect(again == request)
    }

    // MARK: HTTPResponse

    @Test func jsonResponseIsSerializedExactly() {
        let response = HTTPResponse.json(status: 200, body: Array("{\"status\":\"ok\"}".utf8))
        let text = String(decoding: response.serialized(keepAlive: true), as: UTF8.self)
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: keep-alive\r\n\r\n{\"status\":\"ok\"}")
    }

    @Test func closingResponseCarriesExtraHeadersAfterTheFramingOnes() {
        let response = HTTPResponse.json(
            status: 405, body: Array("{}".utf8),
            extraHeaders: [("Allow", "POST"), ("Content-Length", "99"), ("Connection", "keep-alive")])
        let text = String(decoding: response.serialized(keepAlive: false), as: UTF8.self)
        #expect(text == "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\nAllow: POST\r\n\r\n{}")
    }

    @Test func explicitContentTypeIsKept() {
        let response = HTTPResponse(status: 200, headers: [("content-type", "text/plain")], body: Array("x".utf8))
        let text = String(decoding: response.serialized(keepAlive: true), as: UTF8.self)
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\ncontent-type: text/plain\r\n\r\nx")
    }

    @Test func emptyBodyHasNoContentType() {
        let text = String(decoding: HTTPResponse(status: 404).serialized(keepAlive: true), as: UTF8.self)
        #expect(text == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func continueResponseIsOnlyAStatusLine() {
        let text = String(decoding: HTTPResponse(status: 100).serialized(keepAlive: true), as: UTF8.self)
        #expect(text == "HTTP/1.1 100 Continue\r\n\r\n")
    }

    @Test func responseHeaderValuesCannotStartANewLine() {
        let response = HTTPResponse(status: 200, headers: [("X-A", "a\r\nSet-Cookie: b")])
        let text = String(decoding: response.serialized(keepAlive: true), as: UTF8.self)
        #expect(text.contains("X-A: a  Set-Cookie: b\r\n"))
        #expect(!text.contains("\r\nSet-Cookie"))
    }

    @Test(arguments: [100, 200, 400, 401, 403, 404, 405, 408, 411, 413, 414, 415, 421, 429, 431, 500, 501, 503, 505])
    func everyStatusTheServerSendsHasAReasonPhrase(status: Int) {
        #expect(!HTTPResponse.reasonPhrase(for: status).isEmpty)
        let text = String(decoding: HTTPResponse.json(status: status, body: []).serialized(keepAlive: false), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 \(status) \(HTTPResponse.reasonPhrase(for: status))\r\n"))
        #expect(!text.lowercased().contains("access-control"))
    }

    @Test func parseErrorsMapToResponsesWithKnownReasons() {
        let inputs = [
            "GET / HTTP/1.1\n",
            "GET /" + repeated("a", 9000),
            "GET / HTTP/2.0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        ]
        for input in inputs {
            guard case .failure(let error) = parse(input) else {
                Issue.record("expected a failure")
                continue
            }
            #expect(!HTTPResponse.reasonPhrase(for: error.status).isEmpty)
        }
    }
}
