import Foundation
import Testing

/// `webhook_reply` end to end (SPEC 6 outbound, README "Replying"): signed POSTs to the
/// source's callback, retries with the same `X-Webhook-Id`, no redirects, and the callback
/// URL policy at `/pair`. Servers run with `WEBHOOK_RETRY_DELAYS=0.2,0.2,0.2`.
@Suite struct ReplyDeliveryTests {
    static let fastRetries = ["WEBHOOK_RETRY_DELAYS": "0.2,0.2,0.2"]

    static func reply(_ channel: TestChannel, _ arguments: JSON) async throws -> JSON {
        let response = try await channel.mcp.callTool("webhook_reply", arguments: arguments)
        guard let result = response["result"] else { throw HarnessError("webhook_reply answered no result: \(response)") }
        return result
    }

    static func deliveries(_ channel: TestChannel) async throws -> [JSON] {
        let response = try await channel.mcp.callTool("webhook_deliveries", arguments: [:])
        let result = try #require(response["result"], "\(response)")
        let text = ProviderFixtures.text(ofToolResult: result)
        if text.lowercased().hasPrefix("no ") { return [] }
        return try ProviderFixtures.list(from: text, key: "deliveries")
    }

    /// Checks one outbound request: headers, exact `X-Signature: v1=<hex>,sha256=<hex>` for
    /// this attempt's timestamp and body, computed here.
    static func expectSignedReply(
        _ request: ReceivedRequest, sourceID: String, secret: String, payload: JSON,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(request.method == "POST", sourceLocation: sourceLocation)
        #expect(request.target == "/callback", sourceLocation: sourceLocation)
        #expect(request.header("Content-Type")?.lowercased().hasPrefix("application/json") == true,
                "\(request.headers)", sourceLocation: sourceLocation)
        #expect(request.header("X-Source-Id") == sourceID, "\(request.headers)", sourceLocation: sourceLocation)
        #expect(request.header("X-Webhook-Id")?.isEmpty == false, "\(request.headers)", sourceLocation: sourceLocation)
        #expect((try? JSON.parse(request.body)) == payload, "\(String(decoding: request.body, as: UTF8.self))",
                sourceLocation: sourceLocation)
        guard let ts = request.header("X-Timestamp"), let seconds = Int(ts), ts.allSatisfy(\.isNumber) else {
            Issue.record("X-Timestamp is not Unix seconds: \(request.headers)", sourceLocation: sourceLocation)
            return
        }
        #expect(abs(seconds - unixNow()) <= 60, "X-Timestamp \(ts) is not now", sourceLocation: sourceLocation)
        let v1 = ProviderSigner.webhookV1(secret: secret, timestamp: ts, body: request.body)
        let seed = ProviderSigner.webhookSeed(secret: secret, body: request.body)
        #expect(request.header("X-Signature") == "\(v1),\(seed)", "X-Signature: \(request.header("X-Signature") ?? "(none)")",
                sourceLocation: sourceLocation)
    }

    // MARK: Retries

    @Test func fiveHundredTwiceThenTwoHundredIsThreeSignedAttemptsWithOneWebhookID() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [500, 500, 200])
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "replier", callbackURL: receiver.url())
        let payload: JSON = ["text": "thanks, deploying ✓", "n": 3, "nested": ["ok": true]]

        let result = try await Self.reply(channel, ["source_id": .string(credentials.sourceID), "payload": payload])

        #expect(result["isError"] != true, "retrying is not an error: \(result)")
        #expect(ProviderFixtures.text(ofToolResult: result).lowercased().contains("retrying"), "\(result)")
        let attempts = try await receiver.waitForDeliveries(3)
        let webhookID = try #require(attempts[0].request.header("X-Webhook-Id"))
        for (index, attempt) in attempts.enumerated() {
            #expect(attempt.request.header("X-Webhook-Id") == webhookID, "attempt \(index + 1)")
            Self.expectSignedReply(attempt.request, sourceID: credentials.sourceID, secret: credentials.secret, payload: payload)
        }

        let delivered = try await Self.waitForDeliveryState("delivered", in: channel)
        #expect(delivered["source_id"] == .string(credentials.sourceID), "\(delivered)")
        #expect(delivered["attempts"]?.arrayValue?.count == 3, "\(delivered)")
        try await Task.sleep(for: .milliseconds(800))
        #expect(receiver.deliveries.count == 3, "no attempt after the 200")
    }

    static func waitForDeliveryState(_ state: String, in channel: TestChannel, timeout: Duration = defaultTimeout) async throws -> JSON {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var last: [JSON] = []
        while clock.now < deadline {
            last = try await deliveries(channel)
            if let found = last.first(where: { $0["state"] == .string(state) }) { return found }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("webhook_deliveries never showed state \(state); last: \(last)")
    }

    /// The payload is any JSON, passed on as written: numbers no Int64 or Double holds are
    /// not rounded or turned into null.
    @Test func aReplyPayloadsNumbersArriveAsWritten() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [200])
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "numbers", callbackURL: receiver.url())
        let payload = #"{"amount":1E400,"id":12345678901234567890123,"price":0.1,"n":3}"#
        channel.server.writeLine(#"{"jsonrpc":"2.0","id":"numbers-1","method":"tools/call","params":{"name":"webhook_reply","arguments":{"source_id":"\#(credentials.sourceID)","payload":\#(payload)}}}"#)
        let response = try await channel.mcp.response(to: "numbers-1")
        #expect(response["result"]?["isError"] != true, "\(response)")
        let delivery = try #require(try await receiver.waitForDeliveries(1).first)
        #expect(String(decoding: delivery.request.body, as: UTF8.self) == payload)
    }

    @Test func aReplyWithAnEventIDCarriesXEventId() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [200])
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "replier", callbackURL: receiver.url())
        let eventID = try #require(expectProviderAccepted(try await channel.http.postWebhook(#"{"event":"q"}"#, as: credentials)))

        let result = try await Self.reply(channel, ["source_id": .string(credentials.sourceID), "payload": ["a": 1],
                                                    "event_id": .string(eventID)])

        #expect(result["isError"] != true, "\(result)")
        #expect(ProviderFixtures.text(ofToolResult: result).contains("200"), "success names the status: \(result)")
        let request = try #require(try await receiver.waitForDeliveries(1).first).request
        #expect(request.header("X-Event-Id") == eventID, "\(request.headers)")
        Self.expectSignedReply(request, sourceID: credentials.sourceID, secret: credentials.secret, payload: ["a": 1])
    }

    @Test func tooManyRequestsIsRetriedHonouringRetryAfter() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        // When the retry comes (Retry-After honoured, capped) is ReplyRetryTimingTests' part;
        // here, that a 429 with Retry-After is retried on the wire as the same delivery.
        let receiver = try ScriptedReceiver([.init(status: 429, headers: [("Retry-After", "0")]), .init(status: 200)])
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "limited", callbackURL: receiver.url())

        let result = try await Self.reply(channel, ["source_id": .string(credentials.sourceID), "payload": ["x": 1]])

        #expect(result["isError"] != true, "\(result)")
        let attempts = try await receiver.waitForDeliveries(2)
        #expect(attempts[1].request.header("X-Webhook-Id") == attempts[0].request.header("X-Webhook-Id"))
        _ = try await Self.waitForDeliveryState("delivered", in: channel)
    }

    @Test func anUnreachableCallbackIsRetriedThenReportedFailed() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        // A port bound but not listening, held for the whole test: connections are refused,
        // and no listener a test running in parallel opens can be given it meanwhile (as a
        // port that was merely free a moment ago could be).
        let closed = try ClosedPort()
        defer { closed.close() }
        let url = "http://127.0.0.1:\(closed.port)/callback"
        let credentials = try await channel.http.pairSource(name: "down", callbackURL: url)

        let result = try await Self.reply(channel, ["source_id": .string(credentials.sourceID), "payload": ["x": 1]])

        #expect(result["isError"] != true, "a network error is retried first, so the first answer is 'retrying': \(result)")
        let failed = try await Self.waitForDeliveryState("failed", in: channel)
        #expect(failed["attempts"]?.arrayValue?.count == 4, "1 attempt + 3 retries: \(failed)")
    }

    // MARK: Final failures

    @Test func aFourHundredIsOneAttemptAndAnError() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [400])
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "picky", callbackURL: receiver.url())

        let result = try await Self.reply(channel, ["source_id": .string(credentials.sourceID), "payload": ["x": 1]])

        #expect(result["isError"] == true, "\(result)")
        #expect(ProviderFixtures.text(ofToolResult: result).contains("400"), "\(result)")
        try await Task.sleep(for: .milliseconds(1_000))
        #expect(receiver.deliveries.count == 1, "a 400 must not be retried: \(receiver.deliveries.count) attempts")
        if let only = receiver.deliveries.first {
            Self.expectSignedReply(only.request, sourceID: credentials.sourceID, secret: credentials.secret, payload: ["x": 1])
        }
        let failed = try await Self.waitForDeliveryState("failed", in: channel)
        #expect(failed["attempts"]?.arrayValue?.count == 1, "\(failed)")
    }

    @Test func aRedirectIsNotFollowedAndIsAnError() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let elsewhere = try CallbackReceiver(statuses: [200])
        defer { elsewhere.stop() }
        let redirecting = try ScriptedReceiver([.init(status: 302, headers: [("Location", elsewhere.url(path: "/elsewhere"))])])
        defer { redirecting.stop() }
        let credentials = try await channel.http.pairSource(name: "moved", callbackURL: redirecting.url())

        let result = try await Self.reply(channel, ["source_id": .string(credentials.sourceID), "payload": ["x": 1]])

        #expect(result["isError"] == true, "\(result)")
        try await Task.sleep(for: .milliseconds(1_000))
        #expect(redirecting.deliveries.count == 1, "one request only: \(redirecting.deliveries.count)")
        #expect(elsewhere.deliveries.isEmpty, "the redirect was followed")
    }

    @Test func anUnknownSourceIsAnError() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }

        let result = try await Self.reply(channel, ["source_id": "src_0123456789abcdef0123456789abcdef", "payload": ["x": 1]])

        #expect(result["isError"] == true, "\(result)")
        #expect(!ProviderFixtures.text(ofToolResult: result).isEmpty)
    }

    @Test func sourcesWithoutCallbackAreAnError() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let paired = try await channel.http.pairSource(name: "no-callback")
        let added = try await ProviderFixtures.add("gh-no-callback", scheme: .github, secret: "s", stateDir: channel.stateDir)

        for id in [paired.sourceID, added.sourceID] {
            let result = try await Self.reply(channel, ["source_id": .string(id), "payload": ["x": 1]])
            #expect(result["isError"] == true, "\(id): \(result)")
            #expect(!ProviderFixtures.text(ofToolResult: result).isEmpty)
        }
    }

    @Test func aProviderSourceAddedWithACallbackGetsSignedReplies() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [201])
        defer { receiver.stop() }
        let source = try await ProviderFixtures.add("gh-cb", scheme: .github, secret: "gh-reply-secret", stateDir: channel.stateDir,
                                                    extraArguments: ["--callback", receiver.url()])

        let result = try await Self.reply(channel, ["source_id": .string(source.sourceID), "payload": ["done": true]])

        #expect(result["isError"] != true, "\(result)")
        #expect(ProviderFixtures.text(ofToolResult: result).contains("201"), "\(result)")
        let request = try #require(try await receiver.waitForDeliveries(1).first).request
        Self.expectSignedReply(request, sourceID: source.sourceID, secret: "gh-reply-secret", payload: ["done": true])
    }

    // MARK: Callback URL policy at /pair

    @Test func pairRefusesCallbackURLsOutsideThePolicy() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let refused = [
            "http://169.254.169.254/", "http://10.0.0.1/", "ftp://x/", "http://user:pw@127.0.0.1/",
            "http://192.168.1.10/hook", "http://172.16.0.1/", "http://100.64.0.1/", "http://[fe80::1]/",
            "http://0.0.0.0/", "http://[::ffff:169.254.169.254]/", "http://[fd00:ec2::254]/", "http://[fc00::1]/",
            "http://metadata.google.internal/", "file:///etc/passwd", "not a url",
        ]

        for url in refused {
            let response = try await channel.http.postJSON("/pair", ["name": "x", "callback_url": .string(url)])
            expectJSONError(response, status: 400, error: "invalid_callback_url")
            if response.status != 400 { Issue.record("callback_url \(url) was not refused") }
        }
        let health = try await channel.http.get("/health").json()
        #expect(health["pending"] == 0, "a refused /pair left a pending code: \(health)")

        // Loopback is fine on another port (a receiver on this machine), never on the
        // server's own: a reply there would reach its own routes.
        let port = channel.server.port
        let other = port == 65535 ? port - 1 : port + 1
        for url in ["http://127.0.0.1:\(other)/", "http://localhost:\(other)/hook"] {
            let ticket = try await channel.http.requestPairing(name: "ok", callbackURL: url)
            #expect(ticket.code.wholeMatch(of: Formats.pairingCode) != nil, "\(url): \(ticket.response)")
        }
        for url in ["http://127.0.0.1:\(port)/pair/complete", "http://localhost:\(port)/webhook", "http://[::1]:\(port)/",
                    "http://sub.localhost:\(port)/"] {
            let response = try await channel.http.postJSON("/pair", ["name": "self", "callback_url": .string(url)])
            expectJSONError(response, status: 400, error: "invalid_callback_url")
        }
    }

    /// A source whose callback is the server's own address (written into sources.json by
    /// hand: `/pair` and `add` refuse it) gets no reply: otherwise one `webhook_reply` would
    /// complete an attacker's pending pairing from a loopback peer, or answer a permission
    /// prompt at `/webhook` with an approver's signature.
    @Test func aReplyToTheServersOwnPortIsRefusedAndCompletesNoPairing() async throws {
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let helper = try await channel.http.pairSource(name: "helper")
        let port = channel.server.port
        try await editSourcesFile(channel.stateDir) { sources in
            guard case .object(var source)? = sources[helper.sourceID] else { return }
            source["callback_url"] = .string("http://127.0.0.1:\(port)/pair/complete")
            sources[helper.sourceID] = .object(source)
        }
        let attacker = try await channel.http.requestPairing(name: "attacker")

        let result = try await Self.reply(channel, ["source_id": .string(helper.sourceID), "payload": ["code": .string(attacker.code)]])

        #expect(result["isError"] == true, "\(result)")
        #expect(ProviderFixtures.text(ofToolResult: result).contains("this server itself"), "\(result)")
        let health = try await channel.http.get("/health").json()
        #expect(health["pending"] == 1, "the attacker's code was completed: \(health)")
        #expect(health["sources"] == 1, "\(health)")
    }

    @Test func pairRefusesNumericAliasesOfForbiddenAddresses() async throws {
        // getaddrinfo/inet_aton read these as IPv4 addresses: 169.254.169.254 (decimal, hex,
        // octal) and 10.0.0.1 (short form). A registration check that only knows dotted quads
        // lets them through.
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }

        for url in ["http://2852039166/", "http://0xa9fea9fe/", "http://0251.0376.0251.0376/", "http://10.1/"] {
            let response = try await channel.http.postJSON("/pair", ["name": "x", "callback_url": .string(url)])
            #expect(response.status == 400, "callback_url \(url) was accepted at /pair: \(response)")
            #expect((try? response.json())?["error"] == "invalid_callback_url", "\(url): \(response)")
            let added = try await runCLI(["add", "alias", "--scheme", "github", "--callback", url],
                                         stateDir: channel.stateDir, stdin: Data("s".utf8))
            #expect(added.exitCode != 0, "add --callback \(url) was accepted: \(added)")
        }
    }

    @Test func aForbiddenCallbackWrittenIntoSourcesJSONIsRefusedAtSendTime() async throws {
        // The second check, after DNS, before every send: a callback URL that never went
        // through /pair (an edited sources.json) is still refused, at once and without retries.
        let channel = try await TestChannel.start(environment: Self.fastRetries)
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "edited")

        for url in ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://2852039166/", "http://10.1/"] {
            try ProviderFixtures.editSource(channel.stateDir, id: credentials.sourceID) { entry in
                entry["callback_url"] = .string(url)
            }
            let result = try await Self.reply(channel, ["source_id": .string(credentials.sourceID), "payload": ["x": 1]])
            // An error, not "retrying": refused by the policy before any connection (a
            // connection attempt that timed out would have been retried).
            #expect(result["isError"] == true, "\(url): \(result)")
            let text = ProviderFixtures.text(ofToolResult: result)
            #expect(text.contains("Not retried") && text.contains("the callback"), "\(url): \(text)")
        }
    }

    @Test func addRefusesAPrivateCallbackURL() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let run = try await runCLI(["add", "internal", "--scheme", "github", "--callback", "http://10.0.0.1/"],
                                   stateDir: channel.stateDir, stdin: Data("s".utf8))

        #expect(run.exitCode != 0, "\(run)")
        #expect(run.stdout.firstMatch(of: Formats.sourceIDInText) == nil, "\(run)")
        let file = try channel.stateDir.readSourcesFileIfPresent()
        #expect((file?["sources"]?.objectValue ?? [:]).isEmpty, "\(String(describing: file))")
    }
}

/// A TCP port on 127.0.0.1 that refuses connections for as long as this is open: bound, never
/// listening, so nothing else on the machine can listen on it meanwhile.
final class ClosedPort: @unchecked Sendable {
    let port: Int
    private let lock = NSLock()
    private var fd: Int32

    init() throws {
        (fd, port) = try bindOnLoopback(listening: nil)
    }

    deinit { close() }

    func close() {
        lock.withLock {
            if fd >= 0 { Foundation.close(fd) }
            fd = -1
        }
    }
}
