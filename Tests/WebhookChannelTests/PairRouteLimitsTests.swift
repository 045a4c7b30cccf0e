import Foundation
import Testing

/// The unauthenticated JSON routes (SPEC 9 and 5): at most 64 KiB (`413`), bodies of many keys
/// answered, nesting past 256 refused; `/pair/complete` failures limited per peer address;
/// names with control or bidi-override characters refused by `/pair` and `add`.
@Suite struct PairRouteLimitsTests {
    /// `{"k0000000":0,"k0000001":0,…}` with `keys` members, plus `extra` members first.
    static func manyKeys(_ keys: Int, extra: String = "") -> Data {
        var text = "{" + extra
        text.reserveCapacity(keys * 14 + 16)
        for index in 0..<keys {
            if index > 0 || !extra.isEmpty { text += "," }
            text += "\"k" + String(index) + "\":0"
        }
        return Data((text + "}").utf8)
    }

    // MARK: Body size and shape

    @Test func aMegabyteOfKeysToPairIs413AndTheServerStillAnswers() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let body = Self.manyKeys(90_000, extra: #""name":"bulk""#)
        #expect(body.count > 950_000 && body.count < 1 << 20, "\(body.count)")

        for route in ["/pair", "/pair/complete"] {
            let answer = try await channel.http.postJSON(route, body: body)
            expectJSONError(answer, status: 413, error: "payload_too_large")
        }
        #expect(try await channel.http.get("/health").status == 200)
    }

    /// Refused from `Content-Length` before the body is read (SPEC 5): a head announcing more
    /// than 64 KiB is answered `413` at once, the body never sent, and `Expect: 100-continue`
    /// gets the `413`, not an invitation to upload.
    @Test(arguments: [false, true])
    func aLengthOver64KiBIsRefusedFromTheHeadAlone(expectContinue: Bool) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let port = channel.server.port
        // The absolute form (`POST http://host/pair`) is routed the same, so screened the same.
        for route in ["/pair", "/pair/complete", "http://127.0.0.1:\(port)/pair"] {
            let head = "POST \(route) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(64 * 1024 + 1)\r\n" + (expectContinue ? "Expect: 100-continue\r\n" : "") + "\r\n"
            let connection = try await HTTPConnection.open(port: port, sending: Data(head.utf8))
            defer { connection.close() }
            let answer = try await connection.readResponse()
            expectJSONError(answer, status: 413, error: "payload_too_large")
        }
        // Addressed elsewhere: the host is refused first, as it would be with a body.
        let misdirected = try await HTTPConnection.open(port: port, sending: Data(
            ("POST /pair HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(64 * 1024 + 1)\r\n\r\n").utf8))
        defer { misdirected.close() }
        expectJSONError(try await misdirected.readResponse(), status: 421, error: "misdirected_request")
        #expect(try await channel.http.get("/health").status == 200)
    }

    /// Nesting past 256 levels is refused on a provider's route too, when the body says it is
    /// JSON (a body that is not JSON is the provider's business and kept as sent).
    @Test func jsonNestedPast256LevelsIs400OnAProvidersRouteToo() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("gh-deep", scheme: .github, secret: "deep-secret", stateDir: channel.stateDir)
        let deep = Data((String(repeating: "[", count: 300) + String(repeating: "]", count: 300)).utf8)

        let refused = try await ProviderFixtures.post(source, on: channel.http, body: deep)
        expectJSONError(refused.response, status: 400, error: "invalid_json")
        let asText = try await ProviderFixtures.post(source, on: channel.http, body: deep, contentType: "text/plain")
        #expect(expectProviderAccepted(asText.response) != nil, "\(asText.response)")
        let shallow = Data((String(repeating: "[", count: 256) + String(repeating: "]", count: 256)).utf8)
        #expect(expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http, body: shallow).response) != nil)
    }

    @Test func sixtyKilobytesOfKeysToPairIsAnsweredAndHealthStillAnswers() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let withName = Self.manyKeys(6_200, extra: #""name":"many-keys""#)
        let withoutName = Self.manyKeys(6_200)
        #expect(withName.count > 60_000 && withName.count <= 64 * 1024, "\(withName.count)")

        let paired = try await channel.http.postJSON("/pair", body: withName)
        #expect(paired.status == 200, "\(paired)")
        #expect(try paired.json()["pairing_code"]?.stringValue?.wholeMatch(of: Formats.pairingCode) != nil, "\(paired)")
        expectJSONError(try await channel.http.postJSON("/pair", body: withoutName), status: 400, error: "invalid_name")
        let guessed = try await channel.http.postJSON("/pair/complete", body: Self.manyKeys(6_200, extra: #""code":"AAAAAA""#))
        expectJSONError(guessed, status: 404, error: "unknown_code")
        let health = try await channel.http.get("/health")
        #expect(health.status == 200, "\(health)")
        #expect(try health.json()["pending"] == 1, "\(health)")
    }

    @Test func nestingDeeperThan256IsRefusedWith400() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let deepArray = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        let deepObject = String(repeating: #"{"a":"#, count: 300) + "1" + String(repeating: "}", count: 300)

        for body in [#"{"name":"deep","x":\#(deepArray)}"#, #"{"name":"deep","x":\#(deepObject)}"#, deepArray] {
            let answer = try await channel.http.postJSON("/pair", body: Data(body.utf8))
            #expect(answer.status == 400, "\(answer)")
            #expect(try answer.json()["error"] != nil, "\(answer)")
        }
        // 200 levels are within the limit.
        let shallow = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(try await channel.http.postJSON("/pair", body: Data(#"{"name":"ok","x":\#(shallow)}"#.utf8)).status == 200)
        #expect(try await channel.http.get("/health").status == 200)
    }

    // MARK: Lockout per peer

    static func complete(code: String, from address: String, port: Int) async throws -> RawHTTPResponse {
        let body = JSON.object(["code": .string(code)]).encoded
        let connection = try await HTTPConnection.open(from: address, toPort: port, sending: RawHTTPClient(port: port).requestBytes(
            "POST", "/pair/complete", headers: [("Content-Type", "application/json")], body: body))
        defer { connection.close() }
        return try await connection.readResponse()
    }

    @Test func tenBadGuessesFromOneLoopbackAddressDoNotLockOutAnother() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let ticket = try await channel.http.requestPairing(name: "locked-out")
        let wrong = ticket.code == "AAAAAA" ? "BBBBBB" : "AAAAAA"

        for guess in 1...10 {
            let answer = try await Self.complete(code: wrong, from: "127.0.0.1", port: channel.server.port)
            expectJSONError(answer, status: 404, error: "unknown_code")
            #expect(answer.status == 404, "guess \(guess)")
        }
        let right = try await Self.complete(code: ticket.code, from: "127.0.0.2", port: channel.server.port)
        #expect(right.status == 200, "\(right)")
        #expect(try right.json()["source_id"]?.stringValue?.wholeMatch(of: Formats.sourceID) != nil, "\(right)")
        #expect(try right.json()["hmac_secret"]?.stringValue?.wholeMatch(of: Formats.secret) != nil, "\(right)")

        let eleventh = try await Self.complete(code: wrong, from: "127.0.0.1", port: channel.server.port)
        expectJSONError(eleventh, status: 429, error: "too_many_attempts")
        // The locked-out peer is refused even with a right code; the other peer is not.
        let another = try await channel.http.requestPairing(name: "second")
        expectJSONError(try await Self.complete(code: another.code, from: "127.0.0.1", port: channel.server.port),
                        status: 429, error: "too_many_attempts")
        #expect(try await Self.complete(code: another.code, from: "127.0.0.3", port: channel.server.port).status == 200)
    }

    @Test func aHundredBadGuessesFromManyLoopbackAddressesLockOutEveryPeerForTheMinute() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let ticket = try await channel.http.requestPairing(name: "global")
        let wrong = ticket.code == "AAAAAA" ? "BBBBBB" : "AAAAAA"
        let port = channel.server.port

        // Ten peers, ten bad guesses each: every one is under its own limit. The peers guess
        // side by side (each its ten in turn), so that all hundred land well inside the
        // one-minute window even where a request takes a second: on a loaded machine a
        // hundred sent one after another could spread past it and the first would no longer
        // count. (Side by side no guess can be refused: the hundredth failure is only
        // recorded after the last guess was let in.) The window's edges are PairingDeskTests'.
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for peer in 2...11 {
                group.addTask {
                    for _ in 1...10 {
                        let answer = try await Self.complete(code: wrong, from: "127.0.0.\(peer)", port: port)
                        #expect(answer.status == 404, "127.0.0.\(peer): \(answer)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let guessing = started.duration(to: .now)
        // The 101st failure in the window, from a peer that never guessed: refused, even the right code.
        let refused = try await Self.complete(code: ticket.code, from: "127.0.0.12", port: port)
        expectJSONError(refused, status: 429, error: "too_many_attempts")
        #expect(refused.status == 429, "the hundred failures took \(guessing) (the window is 60 s)")
        #expect(try await channel.http.get("/health").json()["pending"] == 1)
    }

    // MARK: Names

    @Test(arguments: ["evil\u{202E}name", "evil\nname", "two\u{2066}isolates\u{2069}", "bell\u{07}", "c1\u{0085}inside"])
    func pairRefusesANameWithAControlOrBidiCharacter(_ name: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let answer = try await channel.http.postJSON("/pair", ["name": .string(name)])

        expectJSONError(answer, status: 400, error: "invalid_name")
        #expect(try await channel.http.get("/health").json()["pending"] == 0)
    }

    @Test(arguments: ["evil\u{202E}name", "evil\nname"])
    func addRefusesANameWithAControlOrBidiCharacterWithExitCode2(_ name: String) async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }

        let run = try await runCLI(["add", name, "--scheme", "github"], stateDir: dir, stdin: Data("secret".utf8))

        #expect(run.exitCode == 2, "\(run)")
        #expect(run.stdout.firstMatch(of: Formats.sourceIDInText) == nil, "\(run)")
        let sources = try? ProviderFixtures.sourcesFile(dir)
        #expect((sources?["sources"]?.objectValue ?? [:]).isEmpty, "\(String(describing: sources))")
    }
}
