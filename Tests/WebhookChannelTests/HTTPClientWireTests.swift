import Foundation
import Testing
@testable import HTTP
@testable import Platform
@testable import Socket
@testable import WebhookChannel

// The client side's wire format, with exact bytes: what the callback client writes and how it
// reads the answer. "\r\n" is spelled out so every line ending is visible.

private func head(_ text: String, limits: HTTPLimits = .standard) -> HTTPResponseHeadResult {
    HTTPResponseParser.parseHead(Array(text.utf8), limits: limits)
}

private func completeHead(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> HTTPResponseHead? {
    let result = head(text)
    guard case .complete(let parsed) = result else {
        Issue.record("expected a complete head, got \(result)", sourceLocation: sourceLocation)
        return nil
    }
    return parsed
}

private func isFailure(_ result: HTTPResponseHeadResult) -> Bool {
    if case .failure = result { return true }
    return false
}

@Suite struct HTTPRequestWriterTests {
    @Test func aPostIsFramedByTheWriterWithTheCallersFieldsAfterTheFraming() {
        let bytes = HTTPRequestWriter.serialize(
            method: "POST", target: "/hook?x=1", host: "example.com:8080",
            headers: [("User-Agent", "webhook-channel"), ("Content-Type", "application/json"), ("X-Source-Id", "src_1")],
            body: Array("{\"a\":1}".utf8))
        #expect(String(decoding: bytes, as: UTF8.self) == "POST /hook?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n"
            + "Content-Length: 7\r\nConnection: close\r\nUser-Agent: webhook-channel\r\nContent-Type: application/json\r\n"
            + "X-Source-Id: src_1\r\n\r\n{\"a\":1}")
    }

    @Test func framingFieldsFromTheCallerAreLeftOut() {
        let bytes = HTTPRequestWriter.serialize(
            method: "POST", target: "/", host: "h",
            headers: [("content-length", "99"), ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive"),
                      ("HOST", "evil"), ("X-Kept", "yes")],
            body: [])
        #expect(String(decoding: bytes, as: UTF8.self)
            == "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\nX-Kept: yes\r\n\r\n")
    }

    @Test func aFieldWithCROrLFOrABadNameIsDroppedWhole() {
        let bytes = HTTPRequestWriter.serialize(
            method: "POST", target: "/", host: "h",
            headers: [("X-Split", "a\r\nX-Injected: 1"), ("X-LF", "a\nb"), ("X-CR", "a\rb"), ("X-Bad\r\nName", "v"),
                      ("Bad Name", "v"), ("", "v"), ("X-Nul", "a\u{0}b"), ("X-Tab", "a\tb")],
            body: [])
        #expect(String(decoding: bytes, as: UTF8.self)
            == "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\nX-Tab: a\tb\r\n\r\n")
    }

    @Test func theHostFieldBracketsIPv6AndLeavesOutTheDefaultPort() {
        #expect(HTTPRequestWriter.hostField(host: "example.com", port: 443, defaultPort: 443) == "example.com")
        #expect(HTTPRequestWriter.hostField(host: "example.com", port: 8443, defaultPort: 443) == "example.com:8443")
        #expect(HTTPRequestWriter.hostField(host: "::1", port: 80, defaultPort: 80) == "[::1]")
        #expect(HTTPRequestWriter.hostField(host: "::1", port: 9000, defaultPort: 80) == "[::1]:9000")
        #expect(HTTPRequestWriter.hostField(host: "[::1]", port: 9000, defaultPort: 80) == "[::1]:9000")
    }

    @Test func whatTheWriterWritesTheServersParserReadsBack() {
        let bytes = HTTPRequestWriter.serialize(method: "POST", target: "/r", host: "127.0.0.1:9",
                                                headers: [("X-Event-Id", "evt_1")], body: Array("hi".utf8))
        guard case .complete(let request, let consumed) = HTTPRequestParser.parse(bytes, limits: .standard) else {
            Issue.record("the server's parser refused the client's request")
            return
        }
        #expect(consumed == bytes.count)
        #expect(request.method == "POST" && request.target == "/r" && request.body == Array("hi".utf8))
        #expect(request.headers["Host"] == "127.0.0.1:9" && request.headers["X-Event-Id"] == "evt_1")
        #expect(!request.keepAlive)
    }
}

@Suite struct HTTPResponseParserTests {
    @Test func a503WithRetryAfterGivesTheStatusTheSecondsAndTheBodyStart() {
        let text = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy"
        guard let parsed = completeHead(text) else { return }
        #expect(parsed.status == 503)
        #expect(parsed.version == .http11)
        #expect(parsed.retryAfter(now: 0) == 7)
        #expect(parsed.contentLength == 4)
        #expect(parsed.headers == HTTPHeaders([("Retry-After", "7"), ("Content-Length", "4")]))
        #expect(parsed.bodyStart == text.utf8.count - 4)
    }

    @Test func aHundredContinueIsSkippedAndTheFinalAnswerCounts() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        guard let parsed = completeHead(text) else { return }
        #expect(parsed.status == 200)
        #expect(parsed.contentLength == 2)
        #expect(parsed.bodyStart == text.utf8.count - 2)
        #expect(head("HTTP/1.1 100 Continue\r\n\r\n") == .needMore, "an interim answer alone is not the answer")
        let interims = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
        #expect(head(interims) == .complete(HTTPResponseHead(version: .http11, status: 204, headers: HTTPHeaders(),
                                                              bodyStart: interims.utf8.count)))
    }

    @Test func anAnswerWithoutContentLengthHasNoLength() {
        guard let parsed = completeHead("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nrest of the stream") else { return }
        #expect(parsed.status == 200 && parsed.version == .http10)
        #expect(parsed.contentLength == nil)
        #expect(parsed.retryAfter(now: 0) == nil)
        #expect(parsed.bodyStart == "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n".utf8.count)
    }

    @Test func aStatusLineWithoutReasonOrWithAnEmptyOneIsAccepted() {
        #expect(completeHead("HTTP/1.1 429\r\n\r\n")?.status == 429)
        #expect(completeHead("HTTP/1.1 302 \r\nLocation: /x\r\n\r\n")?.status == 302)
    }

    @Test func aMalformedStatusLineIsAFailure() {
        for text in ["HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n",
                     "HTTP/1.1 600 Nope\r\n\r\n", "http/1.1 200 OK\r\n\r\n", "SSH-2.0-OpenSSH_9.6\r\n\r\n",
                     "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n"] {
            #expect(isFailure(head(text)), "\(text.debugDescription)")
        }
    }

    @Test func bareLineEndsAndFoldedLinesAreFailures() {
        #expect(isFailure(head("HTTP/1.1 200 OK\n\n")))
        #expect(isFailure(head("HTTP/1.1 200 OK\r\nA: b\n\r\n")))
        #expect(isFailure(head("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n")))
        #expect(isFailure(head("HTTP/1.1 200 OK\r\nA: b\r\n continued\r\n\r\n")))
    }

    @Test func aHeaderLineTooLongIsAFailureBeforeItsEndArrives() {
        let limits = HTTPLimits(maxRequestLineBytes: 64, maxHeaderBytes: 100, maxHeaderCount: 5)
        let long = "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: 200)
        #expect(isFailure(head(long, limits: limits)), "no CRLF yet, but already over the budget")
        let fits = "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: 80)
        #expect(head(fits, limits: limits) == .needMore)
        #expect(isFailure(head("HTTP/1.1 200 " + String(repeating: "O", count: 100), limits: limits)), "status line")
        let many = "HTTP/1.1 200 OK\r\n" + String(repeating: "A: b\r\n", count: 6) + "\r\n"
        #expect(isFailure(head(many, limits: limits)), "more fields than the count limit")
    }

    @Test func anIncompleteHeadNeedsMore() {
        for text in ["", "HTTP/1.1 200", "HTTP/1.1 200 OK\r", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nA: b\r\n\r"] {
            #expect(head(text) == .needMore, "\(text.debugDescription)")
        }
    }

    @Test func aLineThatIsNotAFieldIsSkippedNotFatal() {
        guard let parsed = completeHead("HTTP/1.1 200 OK\r\nno colon here\r\nBad Name: x\r\n: empty\r\nGood: yes\r\n\r\n")
        else { return }
        #expect(parsed.status == 200)
        #expect(parsed.headers == HTTPHeaders([("Good", "yes")]))
    }

    /// `Retry-After` is delay-seconds (digits) or an HTTP-date in any of its three forms,
    /// counted from now; anything else leaves the caller's schedule in charge.
    @Test func retryAfterIsSecondsOrAnHTTPDateAndAnythingElseIsIgnored() {
        let now = 1_445_412_470.0  // Wed, 21 Oct 2015 07:27:50 GMT
        func after(_ value: String) -> Double? {
            completeHead("HTTP/1.1 503 x\r\nRetry-After: \(value)\r\n\r\n")?.retryAfter(now: now)
        }
        #expect(after("7") == 7)
        #expect(after(" 120 ") == 120)
        #expect(after("Wed, 21 Oct 2015 07:28:00 GMT") == 10)
        #expect(after("Wednesday, 21-Oct-15 07:28:00 GMT") == 10)
        #expect(after("Wed Oct 21 07:28:00 2015") == 10)
        #expect(after("Wed, 21 Oct 2015 07:27:00 GMT") == 0, "a date already past is now")
        #expect(after("Thu, 01 Jan 1970 00:00:00 GMT") == 0)
        for bad in ["1.5", "-5", "nan", "soon", "Wed, 21 Oct 2015 07:28:00 PST", "Wed, 32 Oct 2015 07:28:00 GMT",
                    "Wed, 21 Foo 2015 07:28:00 GMT", "Wed, 21 Oct 2015 7:28 GMT", ""] {
            #expect(after(bad) == nil, "Retry-After: \(bad)")
        }
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == 784_111_777)
        #expect(HTTPDate.parse("Tue, 29 Feb 2000 00:00:00 GMT", now: now) == 951_782_400)
        #expect(completeHead("HTTP/1.1 200 x\r\nContent-Length: -1\r\n\r\n")?.contentLength == nil)
        #expect(completeHead("HTTP/1.1 200 x\r\nContent-Length: 12\r\n\r\n")?.contentLength == 12)
    }
}

@Suite struct CallbackWireTests {
    @Test func theCallbackDeadlinePassesOnlyWhenTheInjectedClockDoes() {
        let clock = ManualClock()
        let deadline = Deadline(clock: clock, seconds: 10)
        #expect(deadline.remainingMilliseconds == 10_000)
        clock.advance(bySeconds: 9.9995)
        #expect(deadline.remainingMilliseconds == 1, "rounded up, so a poll never spins at 0 ms")
        clock.advance(byNanoseconds: 500_000)
        #expect(deadline.remainingMilliseconds == nil)
        #expect(Deadline(clock: clock, seconds: 600).remainingMilliseconds == 60_000, "one poll waits at most a minute")
    }

    @Test func oneResolverServesBindingAndConnecting() {
        #expect(SocketAddress.resolveAll(host: "127.0.0.1", port: 80).map(\.description) == ["127.0.0.1:80"])
        #expect(SocketAddress.resolveAll(host: "[::1]", port: 81).map(\.description) == ["[::1]:81"])
        #expect(SocketAddress.resolveAll(host: "no such host.invalid", port: 80).isEmpty)
        #expect(SocketAddress.resolve(host: "localhost", port: 82)?.family == .ipv4, "IPv4 preferred for binding")
    }

    /// A receiver that reads one request and answers with `answer` verbatim, then closes.
    private static func rawReceiver(_ answer: String) throws -> LoopbackListener {
        let listener = try LoopbackListener()
        Thread.detachNewThread {
            listener.acceptUntilStopped { fd in
                let connection = HTTPConnection(fd: fd)
                defer { connection.close() }
                guard (try? connection.readRequestBlocking(timeout: Duration.seconds(5))) != nil else { return }
                try? connection.sendBlocking(Data(answer.utf8), timeout: Duration.seconds(5))
            }
        }
        return listener
    }

    @Test func theClientReadsAnInterimAnswerThenA503WithoutLengthToTheEndOfTheConnection() throws {
        let listener = try Self.rawReceiver("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nRetry-After: 7\r\n\r\nbusy")
        defer { listener.stop() }
        let result = CallbackClient.postBlocking(url: "http://127.0.0.1:\(listener.port)/cb", headers: [], body: [1],
                                                 policy: CallbackURLPolicy(allowPrivate: true), timeout: 10)
        #expect(result == .success(CallbackClient.Response(status: 503, retryAfter: 7, body: Array("busy".utf8))))
    }

    @Test func theClientCallsAMalformedAnswerNotHTTPAndRetryable() throws {
        let listener = try Self.rawReceiver("HTTP/1.1 OK 200\r\n\r\n")
        defer { listener.stop() }
        let result = CallbackClient.postBlocking(url: "http://127.0.0.1:\(listener.port)/cb", headers: [], body: [],
                                                 policy: CallbackURLPolicy(allowPrivate: true), timeout: 10)
        guard case .failure(let failure) = result else {
            Issue.record("expected a failure, got \(result)")
            return
        }
        #expect(failure.retryable)
        #expect(failure.reason.hasPrefix("the receiver's answer was not HTTP"), "\(failure.reason)")
    }
}
