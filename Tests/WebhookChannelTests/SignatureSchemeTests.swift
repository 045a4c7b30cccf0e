import Testing
@testable import Signing
@testable import WebhookChannel

/// Expected signatures below were computed outside this code base (Python's `hmac` module and
/// `openssl dgst -sha256 -hmac`), so a shared mistake in signer and verifier cannot hide.
struct SignatureSchemeTests {
    static let secret = "whsec_5f2b1c0e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
    static let previousSecret = "whsec_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    static let body = Array(#"{"event":"deploy","status":"success"}"#.utf8)
    static let timestamp: Int64 = 1_700_000_000

    // HMAC(secret, body)
    static let bodyMAC = "74fd98ffba095b6ec4e0d48c300319d4c28b95b94869cb785ca8b760036a0320"
    // HMAC(secret, "1700000000." + body)
    static let timestampedMAC = "604ba28de98b4e69a4d7c5d6a4a060c1657e61b7d7c866719e778f09d44899aa"
    // HMAC(previousSecret, body) and HMAC(previousSecret, "1700000000." + body)
    static let previousBodyMAC = "d0cce2c974314a5b905be36e826afd07728591e4ae78319a1341434b07db46d7"
    static let previousTimestampedMAC = "903c040b199faef063770ca22e609cc8760ae91e49b7346de39c3920ed1bd63b"
    // HMAC(secret, "v0:1700000000:" + body)
    static let slackMAC = "3031ca5866f3f911c99923eee146c8983b6694865fece7c826f3ef57a2e723e5"
    // base64 HMAC(base64decode(secret minus whsec_), "msg_1.1700000000." + body), same for previous
    static let standardMAC = "OfsUCrZavX8NJNMZ0E1L6Bj+pGigRKU0iPQ6TPELzg4="
    static let previousStandardMAC = "pc5unRlvapFqVToKP4ykXBlZNCbng3x9YbtFeq8Ri1A="
    static let wrongHex = String(repeating: "ab", count: 32)

    func input(_ headers: [String: String], body: [UInt8] = body, now: Int64 = timestamp + 10) -> SignatureInput {
        var lowercased: [String: String] = [:]
        for (name, value) in headers { lowercased[name.lowercased()] = value }
        return SignatureInput(headerLookup: { lowercased[$0.lowercased()] }, body: body, now: now)
    }

    func verify(_ scheme: SignatureScheme, _ headers: [String: String], secrets: [String] = [secret],
                body: [UInt8] = body, now: Int64 = timestamp + 10) -> SignatureVerdict {
        SignatureScheme.verify(scheme: scheme, secrets: secrets, input: input(headers, body: body, now: now))
    }

    func valid(previous: Bool = false, seed: String? = nil, timestamp: Int64? = timestamp) -> SignatureVerdict {
        .valid(SignatureDetails(usedPreviousSecret: previous, seedSignature: seed, timestamp: timestamp))
    }

    /// Correctly signed headers for each scheme, built from the independent vectors above.
    func correctHeaders(_ scheme: SignatureScheme, timestamp: Int64 = timestamp) -> [String: String] {
        switch scheme {
        case .webhook: return ["X-Timestamp": "\(timestamp)", "X-Signature": "v1=\(Self.timestampedMAC)"]
        case .github: return ["X-Hub-Signature-256": "sha256=\(Self.bodyMAC)"]
        case .stripe: return ["Stripe-Signature": "t=\(timestamp),v1=\(Self.timestampedMAC)"]
        case .standard:
            return ["webhook-id": "msg_1", "webhook-timestamp": "\(timestamp)", "webhook-signature": "v1,\(Self.standardMAC)"]
        case .slack: return ["X-Slack-Request-Timestamp": "\(timestamp)", "X-Slack-Signature": "v0=\(Self.slackMAC)"]
        }
    }

    // MARK: SPEC vectors

    @Test func githubSpecVectorVerifies() {
        let verdict = verify(
            .github,
            ["X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"],
            secrets: ["It's a Secret to Everybody"],
            body: Array("Hello, World!".utf8))
        #expect(verdict == valid(timestamp: nil))
    }

    @Test func standardWebhooksSpecVectorVerifies() {
        let verdict = verify(
            .standard,
            [
                "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "webhook-timestamp": "1614265330",
                "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ],
            secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            body: Array(#"{"test": 2432232314}"#.utf8),
            now: 1_614_265_330)
        #expect(verdict == valid(timestamp: 1_614_265_330))
    }

    /// Svix-branded senders (Svix, Clerk, Resend) name the three headers `svix-*`.
    @Test func standardWebhooksSpecVectorVerifiesUnderSvixHeaderNames() {
        let headers: [String: String] = [
            "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "svix-timestamp": "1614265330",
            "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ]
        let verdict = verify(.standard, headers, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                             body: Array(#"{"test": 2432232314}"#.utf8), now: 1_614_265_330)
        #expect(verdict == valid(timestamp: 1_614_265_330))
    }

    /// With both sets present the standard names are the ones checked: a `svix-*` set cannot
    /// stand in for a `webhook-*` set that fails.
    @Test func standardWebhooksHeaderNamesWinOverSvixOnes() {
        let verdict = verify(
            .standard,
            [
                "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "webhook-timestamp": "1614265330",
                "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "svix-timestamp": "1614265330",
                "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ],
            secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            body: Array(#"{"test": 2432232314}"#.utf8),
            now: 1_614_265_330)
        #expect(verdict == .invalid(.mismatch))
    }

    @Test func slackDocumentationVectorVerifies() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
        let verdict = verify(
            .slack,
            [
                "X-Slack-Request-Timestamp": "1531420618",
                "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ],
            secrets: ["8f742231b10e8888abcd99yyyzzz85a5"],
            body: Array(body.utf8),
            now: 1_531_420_618)
        #expect(verdict == valid(timestamp: 1_531_420_618))
    }

    @Test func signerReproducesSpecVectors() {
        let github = SignatureScheme.signingHeaders(
            scheme: .github, secret: "It's a Secret to Everybody", body: Array("Hello, World!".utf8),
            timestamp: 0, deliveryID: "d-1")
        #expect(github.map { "\($0.0): \($0.1)" } == [
            "X-GitHub-Delivery: d-1",
            "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ])
        let standard = SignatureScheme.signingHeaders(
            scheme: .standard, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", body: Array(#"{"test": 2432232314}"#.utf8),
            timestamp: 1_614_265_330, deliveryID: "msg_p5jXN8AQM9LWM0D4loKWxJek")
        #expect(standard.map { "\($0.0): \($0.1)" } == [
            "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp: 1614265330",
            "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ])
    }

    // MARK: Every scheme

    @Test(arguments: SignatureScheme.allCases)
    func correctSignatureIsAccepted(scheme: SignatureScheme) {
        let expected = scheme == .github ? valid(timestamp: nil) : valid()
        #expect(verify(scheme, correctHeaders(scheme)) == expected)
    }

    @Test(arguments: SignatureScheme.allCases)
    func signatureMadeWithAnotherSecretIsRejected(scheme: SignatureScheme) {
        #expect(verify(scheme, correctHeaders(scheme), secrets: [Self.previousSecret]) == .invalid(.mismatch))
    }

    @Test(arguments: SignatureScheme.allCases)
    func changedBodyIsRejected(scheme: SignatureScheme) {
        var tampered = Self.body
        tampered[tampered.count - 2] ^= 0x01
        #expect(verify(scheme, correctHeaders(scheme), body: tampered) == .invalid(.mismatch))
    }

    @Test(arguments: SignatureScheme.allCases)
    func previousSecretIsAcceptedAndReported(scheme: SignatureScheme) {
        let expected = scheme == .github ? valid(previous: true, timestamp: nil) : valid(previous: true)
        #expect(verify(scheme, correctHeaders(scheme), secrets: [Self.previousSecret, Self.secret]) == expected)
    }

    @Test(arguments: SignatureScheme.allCases)
    func noSecretsMeansMismatch(scheme: SignatureScheme) {
        #expect(verify(scheme, correctHeaders(scheme), secrets: []) == .invalid(.mismatch))
    }

    @Test(arguments: [SignatureScheme.webhook, .stripe, .standard, .slack])
    func timestampMoreThanFiveMinutesOffIsStale(scheme: SignatureScheme) {
        let headers = correctHeaders(scheme)
        #expect(verify(scheme, headers, now: Self.timestamp + 301) == .invalid(.staleTimestamp))
        #expect(verify(scheme, headers, now: Self.timestamp - 301) == .invalid(.staleTimestamp))
        #expect(verify(scheme, headers, now: Self.timestamp + 300) == valid())
        #expect(verify(scheme, headers, now: Self.timestamp - 300) == valid())
    }

    @Test(arguments: [
        (SignatureScheme.webhook, "X-Timestamp"), (.webhook, "X-Signature"),
        (.github, "X-Hub-Signature-256"),
        (.stripe, "Stripe-Signature"),
        (.standard, "webhook-id"), (.standard, "webhook-timestamp"), (.standard, "webhook-signature"),
        (.slack, "X-Slack-Request-Timestamp"), (.slack, "X-Slack-Signature"),
    ])
    func missingHeaderIsReported(scheme: SignatureScheme, header: String) {
        var headers = correctHeaders(scheme)
        headers[header] = nil
        #expect(verify(scheme, headers) == .invalid(.missingHeader(header)))
    }

    @Test func headerLookupIsLeftToTheCallerSoAnyCaseWorks() {
        let headers = ["x-timestamp": "\(Self.timestamp)", "X-SIGNATURE": "v1=\(Self.timestampedMAC)"]
        #expect(verify(.webhook, headers) == valid())
    }

    // MARK: webhook (seed)

    @Test func seedSha256FormIsAcceptedAndReportsTheSignatureForDuplicateDetection() {
        let verdict = verify(.webhook, ["X-Timestamp": "\(Self.timestamp)", "X-Signature": "sha256=\(Self.bodyMAC)"])
        #expect(verdict == valid(seed: Self.bodyMAC))
    }

    @Test func seedSignatureIsReportedInLowercase() {
        let verdict = verify(.webhook, ["X-Timestamp": "\(Self.timestamp)", "X-Signature": "sha256=\(Self.bodyMAC.uppercased())"])
        #expect(verdict == valid(seed: Self.bodyMAC))
    }

    /// `v1=` decides (it binds the timestamp); the `sha256=` part that came with it is
    /// reported to be remembered, so it cannot be replayed alone.
    @Test func seedPrefersV1WhenBothFormsVerifyAndReportsTheSha256PartToRemember() {
        let verdict = verify(.webhook, [
            "X-Timestamp": "\(Self.timestamp)",
            "X-Signature": "sha256=\(Self.bodyMAC), v1=\(Self.timestampedMAC)",
        ])
        var expected = SignatureDetails(usedPreviousSecret: false, timestamp: Int64(Self.timestamp))
        expected.accompanyingSeedSignature = Self.bodyMAC
        #expect(verdict == .valid(expected))
    }

    @Test func seedAcceptsAnyVerifyingItem() {
        let verdict = verify(.webhook, [
            "X-Timestamp": "\(Self.timestamp)",
            "X-Signature": "v1=\(Self.wrongHex),sha256=\(Self.bodyMAC)",
        ])
        #expect(verdict == valid(seed: Self.bodyMAC))
    }

    @Test func seedV1CoversTheTimestamp() {
        let verdict = verify(.webhook, ["X-Timestamp": "\(Self.timestamp + 1)", "X-Signature": "v1=\(Self.timestampedMAC)"])
        #expect(verdict == .invalid(.mismatch))
    }

    @Test func seedWithPreviousSecretReportsIt() {
        let sha = verify(.webhook, ["X-Timestamp": "\(Self.timestamp)", "X-Signature": "sha256=\(Self.previousBodyMAC)"],
                         secrets: [Self.secret, Self.previousSecret])
        #expect(sha == valid(previous: true, seed: Self.previousBodyMAC))
        let v1 = verify(.webhook, ["X-Timestamp": "\(Self.timestamp)", "X-Signature": "v1=\(Self.previousTimestampedMAC)"],
                        secrets: [Self.secret, Self.previousSecret])
        #expect(v1 == valid(previous: true))
    }

    @Test func seedBadHexIsAMismatch() {
        let verdict = verify(.webhook, ["X-Timestamp": "\(Self.timestamp)", "X-Signature": "sha256=zz\(Self.bodyMAC.dropFirst(2))"])
        #expect(verdict == .invalid(.mismatch))
        let short = verify(.webhook, ["X-Timestamp": "\(Self.timestamp)", "X-Signature": "sha256=\(Self.bodyMAC.dropLast(2))"])
        #expect(short == .invalid(.mismatch))
    }

    @Test(arguments: ["17e8", "-1700000000", "+1700000000", "1700000000.5", "0x65", "1234567890123456789"])
    func seedNonDigitTimestampIsMalformed(text: String) {
        let verdict = verify(.webhook, ["X-Timestamp": text, "X-Signature": "v1=\(Self.timestampedMAC)"])
        #expect(verdict == .invalid(.malformedHeader("X-Timestamp")))
    }

    @Test func seedSignatureWithoutKnownFormIsMalformed() {
        let verdict = verify(.webhook, ["X-Timestamp": "\(Self.timestamp)", "X-Signature": Self.bodyMAC])
        #expect(verdict == .invalid(.malformedHeader("X-Signature")))
    }

    // MARK: github, stripe, standard, slack

    @Test func githubSignatureWithoutPrefixIsMalformed() {
        #expect(verify(.github, ["X-Hub-Signature-256": Self.bodyMAC]) == .invalid(.malformedHeader("X-Hub-Signature-256")))
        #expect(verify(.github, ["X-Hub-Signature-256": "sha1=\(Self.bodyMAC)"]) == .invalid(.malformedHeader("X-Hub-Signature-256")))
    }

    @Test func stripeAcceptsAnyOfSeveralV1Signatures() {
        let header = "t=\(Self.timestamp),v1=\(Self.wrongHex),v1=\(Self.timestampedMAC),v0=\(Self.wrongHex)"
        #expect(verify(.stripe, ["Stripe-Signature": header]) == valid())
    }

    @Test func stripeNeverAcceptsV0Alone() {
        let header = "t=\(Self.timestamp),v0=\(Self.timestampedMAC)"
        #expect(verify(.stripe, ["Stripe-Signature": header]) == .invalid(.malformedHeader("Stripe-Signature")))
    }

    @Test func stripeWithoutTimestampIsMalformed() {
        #expect(verify(.stripe, ["Stripe-Signature": "v1=\(Self.timestampedMAC)"]) == .invalid(.malformedHeader("Stripe-Signature")))
    }

    @Test func standardAcceptsOneMatchAmongSeveralAndIgnoresOtherVersions() {
        let signatures = "v1a,\(Self.standardMAC) v1,\(Base64.encode(Array(repeating: 7, count: 32))) v1,\(Self.standardMAC)"
        let verdict = verify(.standard, ["webhook-id": "msg_1", "webhook-timestamp": "\(Self.timestamp)", "webhook-signature": signatures])
        #expect(verdict == valid())
    }

    @Test func standardWithOnlyOtherVersionsIsMalformed() {
        let verdict = verify(.standard, ["webhook-id": "msg_1", "webhook-timestamp": "\(Self.timestamp)", "webhook-signature": "v2,\(Self.standardMAC)"])
        #expect(verdict == .invalid(.malformedHeader("webhook-signature")))
    }

    @Test func standardSignatureCoversTheMessageID() {
        let verdict = verify(.standard, ["webhook-id": "msg_2", "webhook-timestamp": "\(Self.timestamp)", "webhook-signature": "v1,\(Self.standardMAC)"])
        #expect(verdict == .invalid(.mismatch))
    }

    @Test func standardPreviousSecretIsAccepted() {
        let verdict = verify(.standard, ["webhook-id": "msg_1", "webhook-timestamp": "\(Self.timestamp)", "webhook-signature": "v1,\(Self.previousStandardMAC)"],
                             secrets: [Self.secret, Self.previousSecret])
        #expect(verdict == valid(previous: true))
    }

    @Test func standardKeyFallsBackToRawBytesWhenSecretIsNotBase64() {
        #expect(SignatureScheme.standardKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").count == 24)
        #expect(SignatureScheme.standardKey("not base64!") == Array("not base64!".utf8))
        #expect(SignatureScheme.standardKey("whsec_") == Array("whsec_".utf8))
    }

    @Test func slackSignatureWithWrongVersionIsMalformed() {
        let verdict = verify(.slack, ["X-Slack-Request-Timestamp": "\(Self.timestamp)", "X-Slack-Signature": "v1=\(Self.slackMAC)"])
        #expect(verdict == .invalid(.malformedHeader("X-Slack-Signature")))
    }

    // MARK: Signer

    @Test func webhookSignerSendsBothFormsAndTheDeliveryID() {
        let headers = SignatureScheme.signingHeaders(scheme: .webhook, secret: Self.secret, body: Self.body,
                                                     timestamp: Self.timestamp, deliveryID: "evt_1")
        #expect(headers.map { "\($0.0): \($0.1)" } == [
            "X-Webhook-Id: evt_1",
            "X-Timestamp: 1700000000",
            "X-Signature: v1=\(Self.timestampedMAC),sha256=\(Self.bodyMAC)",
        ])
    }

    @Test func stripeAndSlackSignersMatchIndependentVectors() {
        let stripe = SignatureScheme.signingHeaders(scheme: .stripe, secret: Self.secret, body: Self.body,
                                                    timestamp: Self.timestamp, deliveryID: "evt_1")
        #expect(stripe.map { "\($0.0): \($0.1)" } == [
            "X-Webhook-Id: evt_1",
            "Stripe-Signature: t=1700000000,v1=\(Self.timestampedMAC)",
        ])
        let slack = SignatureScheme.signingHeaders(scheme: .slack, secret: Self.secret, body: Self.body,
                                                   timestamp: Self.timestamp, deliveryID: "evt_1")
        #expect(slack.map { "\($0.0): \($0.1)" } == [
            "X-Webhook-Id: evt_1",
            "X-Slack-Request-Timestamp: 1700000000",
            "X-Slack-Signature: v0=\(Self.slackMAC)",
        ])
    }

    @Test(arguments: SignatureScheme.allCases)
    func signedHeadersVerify(scheme: SignatureScheme) {
        let secret = CredentialGenerator.hmacSecret()
        let body = SecureRandom.bytes(300)
        let headers = SignatureScheme.signingHeaders(scheme: scheme, secret: secret, body: body,
                                                     timestamp: Self.timestamp, deliveryID: "evt_2")
        let verdict = verify(scheme, Dictionary(uniqueKeysWithValues: headers), secrets: [secret], body: body)
        switch verdict {
        case .valid(let details): #expect(!details.usedPreviousSecret && details.seedSignature == nil)
        case .invalid(let failure): Issue.record("signed \(scheme) headers were refused: \(failure)")
        }
    }

    // MARK: Primitives

    @Test func hmacMatchesRFC4231TestCase2() {
        let mac = HMACSHA256.mac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Hex.encode(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func hmacOfPartsEqualsHmacOfTheJoinedMessage() {
        let joined = HMACSHA256.mac(key: Array(Self.secret.utf8), message: Array("1700000000.".utf8) + Self.body)
        let parts = HMACSHA256.mac(key: Array(Self.secret.utf8), message: Array("1700000000".utf8), Array(".".utf8), [], Self.body)
        #expect(Hex.encode(parts) == Self.timestampedMAC)
        #expect(parts == joined)
        let context = HMACSHA256.Context(key: Array(Self.secret.utf8))
        context.update(Array("1700000000.".utf8))
        context.update(Self.body)
        #expect(Hex.encode(context.finalize()) == Self.timestampedMAC)
    }

    @Test func hmacAcceptsAnEmptyKeyAndLargeMessage() {
        #expect(Hex.encode(HMACSHA256.mac(key: [], message: Array("abc".utf8)))
                == "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351")
        #expect(Hex.encode(HMACSHA256.mac(key: Array("k".utf8), message: [UInt8](repeating: UInt8(ascii: "a"), count: 100_000)))
                == "a939caafcf2930f83b16fc3e9598b13ddd1f65b2f61f4b818cfa505ee54f6d2f")
    }

    @Test func constantTimeEqualsComparesLengthAndEveryByte() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([9, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        #expect(!ConstantTime.equals([], [0]))
        #expect(ConstantTime.equals([], []))
    }

    @Test func hexEncodesLowercaseAndDecodesStrictly() {
        #expect(Hex.encode([0x00, 0x9f, 0xAB, 0xff]) == "009fabff")
        #expect(Hex.decode("009fABff") == [0x00, 0x9f, 0xab, 0xff])
        #expect(Hex.decode("") == [])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("0x12") == nil)
        #expect(Hex.decode("12 4") == nil)
        #expect(Hex.decode("g0") == nil)
    }

    @Test func base64RoundTripsAndRefusesNonBase64() {
        #expect(Base64.encode(Array("hello".utf8)) == "aGVsbG8=")
        #expect(Base64.encode([]) == "")
        #expect(Base64.decode("aGVsbG8=") == Array("hello".utf8))
        #expect(Base64.decode("aGVsbG8") == Array("hello".utf8))
        #expect(Base64.decode("aGVsbA==") == Array("hell".utf8))
        #expect(Base64.decode("aGVsbA") == Array("hell".utf8))
        #expect(Base64.decode("") == [])
        #expect(Base64.decode("aGVsbG8==") == nil)
        #expect(Base64.decode("aGV sbG8=") == nil)
        #expect(Base64.decode("aGVsb-8=") == nil)
        #expect(Base64.decode("a") == nil)
        #expect(Base64.encodeURLSafe([0xfb, 0xff, 0xfe]) == "-__-")
    }

    // MARK: Credentials

    @Test func generatedCredentialsHaveTheDocumentedShape() {
        let hexDigits = Set("0123456789abcdef")
        let source = CredentialGenerator.sourceID()
        #expect(source.hasPrefix("src_") && source.count == 36 && source.dropFirst(4).allSatisfy(hexDigits.contains))
        let secret = CredentialGenerator.hmacSecret()
        #expect(secret.hasPrefix("whsec_") && secret.count == 70 && secret.dropFirst(6).allSatisfy(hexDigits.contains))
        let event = CredentialGenerator.eventID()
        #expect(event.hasPrefix("evt_") && event.count == 28 && event.dropFirst(4).allSatisfy(hexDigits.contains))
        let token = CredentialGenerator.pollToken()
        let urlSafe = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        #expect(token.count == 43 && token.allSatisfy(urlSafe.contains))
        #expect(CredentialGenerator.sourceID() != source)
        #expect(SecureRandom.bytes(0) == [])
        #expect(SecureRandom.hex(5).count == 10)
    }

    @Test func pairingCodesUseSixLettersCoveringTheWholeAlphabet() {
        var seen = Set<Character>()
        for _ in 0..<1000 {
            let code = CredentialGenerator.pairingCode()
            #expect(code.count == 6)
            #expect(code.allSatisfy(CredentialGenerator.pairingAlphabet.contains))
            seen.formUnion(code)
        }
        // 6000 uniform draws over 32 letters: each one is missed with probability ~1e-82.
        #expect(seen == Set(CredentialGenerator.pairingAlphabet))
        #expect(!CredentialGenerator.pairingAlphabet.contains { "01IO".contains($0) })
    }

    @Test func aTypedPairingCodeMatchesWhateverItsCaseAndSurroundingSpace() {
        #expect(PairingBook.canonicalCode(" a3kx9z\n") == "A3KX9Z")
        #expect(PairingBook.canonicalCode("A3KX9Z") == "A3KX9Z")
        #expect(PairingBook.canonicalCode("a3K x9z") == "A3K X9Z")
    }
}
