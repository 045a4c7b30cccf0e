import Foundation
import Testing

/// `webhook_reply` to an https callback, end to end (README "Replying": "https uses the
/// system's libssl with the system trust store and host-name verification"). The real binary
/// replies to a `TLSFront` (libssl, certificates made by `openssl` at test time) that hands
/// the decrypted request to a plain `CallbackReceiver`, so an https reply is checked by the
/// same code as a plain one. The server trusts the test CA through `SSL_CERT_FILE`, which
/// libssl's default verify paths honour. Retries are fast (`WEBHOOK_RETRY_DELAYS=0.2,0.2,0.2`).
///
/// Nothing here blocks a cooperative thread: the front and the receiver run on their own
/// threads, `openssl` and the server are child processes, and every wait polls with
/// `Task.sleep` under a timeout.
@Suite struct ReplyTLSTests {
    /// Longer than the three 0.2 s retry delays together, so a retry that should not happen
    /// would have happened by then.
    static let quietPeriod: Duration = .seconds(1)

    /// One test's world: a temp dir with the certificates and the server's state, a plain
    /// receiver, a TLS front serving one certificate in front of it, and the real server
    /// trusting one CA.
    struct Setup {
        let dir: TempStateDir
        let certificates: TestCertificates
        let receiver: CallbackReceiver
        let front: TLSFront
        let channel: TestChannel

        static func start(
            serving leaf: KeyPath<TestCertificates, TestCertificates.Pair>,
            trusting anchor: KeyPath<TestCertificates, TestCertificates.Pair>,
            statuses: [Int] = [200]
        ) async throws -> Setup {
            let dir = try TempStateDir()
            do {
                let certificates = try await TestCertificates.make(in: dir.root.appendingPathComponent("tls"))
                let receiver = try CallbackReceiver(statuses: statuses)
                let served = certificates[keyPath: leaf]
                let front: TLSFront
                do {
                    front = try TLSFront(certificate: served.certificate, key: served.key, forwardingTo: receiver.port)
                } catch {
                    receiver.stop()
                    throw error
                }
                var environment = ReplyDeliveryTests.fastRetries
                environment["SSL_CERT_FILE"] = certificates[keyPath: anchor].certificate.path
                do {
                    let channel = try await TestChannel.start(stateDir: dir, environment: environment)
                    return Setup(dir: dir, certificates: certificates, receiver: receiver, front: front, channel: channel)
                } catch {
                    front.stop()
                    receiver.stop()
                    throw error
                }
            } catch {
                dir.remove()
                throw error
            }
        }

        func stop() {
            channel.stop()
            front.stop()
            receiver.stop()
            dir.remove()
        }
    }

    /// The `webhook_deliveries` record of one reply.
    static func delivery(where matches: (JSON) -> Bool, in channel: TestChannel) async throws -> JSON {
        let records = try await ReplyDeliveryTests.deliveries(channel)
        guard let record = records.first(where: matches) else {
            throw HarnessError("webhook_deliveries has no such record: \(records)")
        }
        return record
    }

    // MARK: Delivered

    @Test(arguments: ["127.0.0.1", "localhost"])
    func aReplyToAnHTTPSCallbackWithATrustedCertificateArrivesSignedLikeAPlainHTTPReply(host: String) async throws {
        let setup = try await Setup.start(serving: \.trusted, trusting: \.ca)
        defer { setup.stop() }
        let channel = setup.channel
        let overTLS = try await channel.http.pairSource(name: "tls", callbackURL: setup.front.url(host: host))
        let overPlain = try await channel.http.pairSource(name: "plain", callbackURL: setup.receiver.url())
        let payload: JSON = ["text": "deployed ✓", "n": 7, "nested": ["ok": true]]

        let result = try await ReplyDeliveryTests.reply(channel, ["source_id": .string(overTLS.sourceID), "payload": payload])

        #expect(result["isError"] != true, "\(result)")
        #expect(toolText(result).contains("HTTP 200"), "success names the status: \(result)")
        let tlsRequest = try #require(try await setup.receiver.waitForDeliveries(1).first).request
        ReplyDeliveryTests.expectSignedReply(tlsRequest, sourceID: overTLS.sourceID, secret: overTLS.secret, payload: payload)
        let handshakes = setup.front.handshakes
        #expect(handshakes.count == 1 && handshakes.allSatisfy(\.isCompleted), "\(handshakes)")
        if host == "localhost" {
            #expect(handshakes.first == .completed(serverName: "localhost"), "SNI carries the host name: \(handshakes)")
        }

        // The same payload over plain http: the same body bytes and the same header fields,
        // in the same order (values differ: other source, secret, id and time).
        let plainResult = try await ReplyDeliveryTests.reply(channel, ["source_id": .string(overPlain.sourceID), "payload": payload])
        #expect(plainResult["isError"] != true, "\(plainResult)")
        let plainRequest = try #require(try await setup.receiver.waitForDeliveries(2).last).request
        ReplyDeliveryTests.expectSignedReply(plainRequest, sourceID: overPlain.sourceID, secret: overPlain.secret, payload: payload)
        #expect(tlsRequest.body == plainRequest.body)
        #expect(tlsRequest.headers.map { $0.name.lowercased() } == plainRequest.headers.map { $0.name.lowercased() },
                "https \(tlsRequest.headers) vs http \(plainRequest.headers)")

        let webhookID = try #require(tlsRequest.header("X-Webhook-Id"))
        let record = try await Self.delivery(where: { $0["delivery_id"] == .string(webhookID) }, in: channel)
        #expect(record["state"] == "delivered", "\(record)")
        #expect(record["source_id"] == .string(overTLS.sourceID), "\(record)")
        let attempts = record["attempts"]?.arrayValue ?? []
        #expect(attempts.count == 1 && attempts.first?.stringValue?.contains("200") == true, "\(record)")
    }

    @Test func aServerErrorOverHTTPSIsRetriedOnAFreshTLSConnectionWithTheSameWebhookID() async throws {
        let setup = try await Setup.start(serving: \.trusted, trusting: \.ca, statuses: [503, 200])
        defer { setup.stop() }
        let credentials = try await setup.channel.http.pairSource(name: "tls-busy", callbackURL: setup.front.url())

        let result = try await ReplyDeliveryTests.reply(setup.channel, ["source_id": .string(credentials.sourceID), "payload": ["x": 1]])

        #expect(result["isError"] != true, "a 503 is retried, so the first answer is 'retrying': \(result)")
        let attempts = try await setup.receiver.waitForDeliveries(2)
        #expect(attempts[0].request.header("X-Webhook-Id") == attempts[1].request.header("X-Webhook-Id"))
        for attempt in attempts {
            ReplyDeliveryTests.expectSignedReply(attempt.request, sourceID: credentials.sourceID, secret: credentials.secret,
                                                 payload: ["x": 1])
        }
        let handshakes = setup.front.handshakes
        #expect(handshakes.count == 2 && handshakes.allSatisfy(\.isCompleted), "one handshake per attempt: \(handshakes)")
        let delivered = try await ReplyDeliveryTests.waitForDeliveryState("delivered", in: setup.channel)
        #expect(delivered["attempts"]?.arrayValue?.count == 2, "\(delivered)")
    }

    // MARK: Refused

    /// A reply to the front is refused on its first attempt, during the handshake (no request
    /// reaches the receiver), with a reason naming the certificate, and is never tried again.
    static func expectRefusedOnce(
        _ setup: Setup, host: String = "127.0.0.1", reasonMentions words: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let credentials = try await setup.channel.http.pairSource(name: "tls-refused", callbackURL: setup.front.url(host: host))

        let result = try await ReplyDeliveryTests.reply(setup.channel, ["source_id": .string(credentials.sourceID), "payload": ["x": 1]])

        let text = toolText(result)
        #expect(result["isError"] == true, "a refused certificate is a final failure: \(result)", sourceLocation: sourceLocation)
        #expect(text.contains("certificate"), "the reason names the certificate: \(text)", sourceLocation: sourceLocation)
        for word in words {
            #expect(text.contains(word), "the reason says \(word): \(text)", sourceLocation: sourceLocation)
        }
        let first = try await setup.front.waitForHandshakes(1)
        #expect(!first[0].isCompleted, "the server completed a handshake it should have refused: \(first)",
                sourceLocation: sourceLocation)

        try await Task.sleep(for: quietPeriod)
        #expect(setup.front.handshakes.count == 1, "retried: \(setup.front.handshakes)", sourceLocation: sourceLocation)
        #expect(setup.receiver.deliveries.isEmpty, "a request got through: \(setup.receiver.deliveries.map(\.request.headers))",
                sourceLocation: sourceLocation)
        let record = try await delivery(where: { $0["source_id"] == .string(credentials.sourceID) }, in: setup.channel)
        #expect(record["state"] == "failed", "\(record)", sourceLocation: sourceLocation)
        let attempts = (record["attempts"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(attempts.count == 1, "\(record)", sourceLocation: sourceLocation)
        #expect(attempts.first?.contains("certificate") == true, "\(record)", sourceLocation: sourceLocation)
        #expect(attempts.first?.contains("not retried") == true, "\(record)", sourceLocation: sourceLocation)
    }

    @Test func aSelfSignedCallbackCertificateIsRefusedAndNotRetried() async throws {
        let setup = try await Setup.start(serving: \.selfSigned, trusting: \.ca)
        defer { setup.stop() }
        try await Self.expectRefusedOnce(setup)
    }

    @Test func aCallbackCertificateFromACATheServerDoesNotTrustIsRefusedAndNotRetried() async throws {
        // The same certificate the delivered case uses; only the server's trust anchor differs.
        let setup = try await Setup.start(serving: \.trusted, trusting: \.unrelatedCA)
        defer { setup.stop() }
        try await Self.expectRefusedOnce(setup)
    }

    @Test(arguments: ["127.0.0.1", "localhost"])
    func aCallbackCertificateForAnotherHostNameIsRefusedAndNotRetried(host: String) async throws {
        // Signed by the trusted CA, valid only for callback.example: only the name check refuses it.
        let setup = try await Setup.start(serving: \.otherHost, trusting: \.ca)
        defer { setup.stop() }
        try await Self.expectRefusedOnce(setup, host: host, reasonMentions: ["mismatch"])
    }
}
