import Foundation
import Testing

/// Real senders (SPEC 6, README "Real senders"): sources added with `webhook-channel add NAME
/// --scheme S` receive on `POST /webhook/{source_id}`, signed the provider's way. Every
/// signature here is computed by `ProviderSigner`, written from the providers' docs.
@Suite struct ProviderSchemeTests {
    // MARK: The test signer against the published vectors

    @Test func githubVectorFromTheSpecMatchesTheTestSigner() {
        let signature = ProviderSigner.github(secret: "It's a Secret to Everybody", body: Data("Hello, World!".utf8))
        #expect(signature == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
    }

    @Test func standardWebhooksVectorFromTheSpecMatchesTheTestSigner() {
        let signature = ProviderSigner.standard(
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp: "1614265330", body: Data(#"{"test": 2432232314}"#.utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func handWrittenBase64RoundTrips() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let encoded = ProviderCrypto.base64(bytes)
            #expect(encoded == Data(bytes).base64EncodedString())
            #expect(ProviderCrypto.base64Decode(encoded) == bytes)
        }
    }

    // MARK: add

    @Test(arguments: ProviderScheme.allCases)
    func addWithAPipedSecretPrintsTheIDAndThePerSourceURLAndNoSecret(_ scheme: ProviderScheme) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let source = try await ProviderFixtures.add("my-\(scheme)", scheme: scheme, secret: scheme.sampleSecret,
                                                    stateDir: channel.stateDir)

        #expect(source.sourceID.wholeMatch(of: Formats.sourceID) != nil, "\(source.output)")
        #expect(source.url == "http://127.0.0.1:\(channel.server.port)/webhook/\(source.sourceID)", "\(source.output)")
        #expect(!source.output.stdout.contains(scheme.sampleSecret), "a piped secret is echoed: \(source.output)")
        #expect(!source.output.stdout.contains("Secret:"), "\(source.output)")
        let file = try ProviderFixtures.sourcesFile(channel.stateDir)
        let entry = try #require(file["sources"]?[source.sourceID], "\(file)")
        #expect(entry["name"] == .string("my-\(scheme)"))
        if scheme == .webhook {
            // The default scheme may be left out, so the seed's schema stays unchanged.
            #expect(entry["scheme"] == nil || entry["scheme"] == "webhook", "\(entry)")
        } else {
            #expect(entry["scheme"] == .string(scheme.rawValue), "\(entry)")
        }
        #expect(entry["hmac_secret"] == .string(scheme.sampleSecret))
    }

    /// A Standard Webhooks secret that is not base64 after `whsec_` is kept (the source is
    /// added, exit 0) with a warning: a sender's library would refuse it, so it was most
    /// likely pasted wrong. A well-formed one adds without a word on stderr.
    @Test func addingAStandardSourceWithASecretThatIsNotBase64Warns() async throws {
        let stateDir = try TempStateDir()
        defer { stateDir.remove() }
        let bad = try await runCLI(["add", "typed", "--scheme", "standard"], stateDir: stateDir,
                                   stdin: Data("whsec_not*base64!".utf8))
        #expect(bad.exitCode == 0, "\(bad)")
        #expect(bad.stdout.contains("Added \"typed\""), "\(bad)")
        #expect(bad.stderr.contains("warning: the secret is not base64"), "\(bad)")
        #expect(!bad.stderr.contains("not*base64"), "the secret itself is never echoed: \(bad)")
        let good = try await runCLI(["add", "pasted", "--scheme", "standard"], stateDir: stateDir,
                                    stdin: Data(ProviderScheme.standard.sampleSecret.utf8))
        #expect(good.exitCode == 0, "\(good)")
        #expect(!good.stderr.contains("warning"), "\(good)")
    }

    @Test func addWithNoServerOnAPortChosenAtStartShowsAPlaceholderNotPortZero() async throws {
        let stateDir = try TempStateDir()
        defer { stateDir.remove() }
        let run = try await runCLI(["add", "later", "--scheme", "github"], stateDir: stateDir, stdin: Data("s3cret".utf8),
                                   environment: ["WEBHOOK_PORT": "0"])
        #expect(run.exitCode == 0, "\(run)")
        #expect(run.stdout.contains("http://127.0.0.1:<port>/webhook/src_"), "\(run)")
        #expect(!run.stdout.contains(":0/webhook/"), "\(run)")
    }

    /// `/webhook` is the seed's route and scheme: a provider's source answers only at its own
    /// URL, in its own scheme, even to a request signed with its secret the seed's way.
    @Test(arguments: ProviderScheme.allCases.filter { $0 != .webhook })
    func aProvidersSourceSignedTheSeedsWayOnTheSeedRouteIs401(_ scheme: ProviderScheme) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("p-\(scheme)", scheme: scheme, secret: nil, stateDir: channel.stateDir)
        let body = Data(#"{"type":"seed.way"}"#.utf8)
        let credentials = SourceCredentials(sourceID: source.sourceID, secret: source.secret)

        for seedScheme in [SigningScheme.v1, .seed] {
            let response = try await channel.http.postJSON("/webhook", body: body,
                                                           headers: RawHTTPClient.webhookHeaders(credentials, body: body, scheme: seedScheme))
            expectJSONError(response, status: 401)
        }
        let own = try await ProviderFixtures.post(source, on: channel.http)
        expectProviderAccepted(own.response)
        let delivered = try await channel.mcp.channelEventsUntilQuiet()
        #expect(delivered.count == 1, "\(delivered)")
    }

    @Test(arguments: ProviderScheme.allCases)
    func addWithoutStdinGeneratesASecretPrintsItOnceAndItVerifies(_ scheme: ProviderScheme) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let source = try await ProviderFixtures.add("gen-\(scheme)", scheme: scheme, secret: nil, stateDir: channel.stateDir)

        let secretLines = source.output.stdout.split(separator: "\n").filter { $0.contains(source.secret) }
        #expect(secretLines.count == 1, "the generated secret should be printed exactly once: \(source.output)")
        #expect(source.secret.hasPrefix("whsec_"), "\(source.output)")
        if scheme == .standard {
            // A Standard Webhooks secret is base64 after whsec_, or no Svix library can use it.
            let key = ProviderCrypto.base64Decode(String(source.secret.dropFirst(6)))
            #expect((key?.count ?? 0) >= 24, "not base64 key material: \(source.secret)")
            #expect(ProviderCrypto.base64(key ?? []) == String(source.secret.dropFirst(6)), "\(source.secret)")
        }
        let posted = try await ProviderFixtures.post(source, on: channel.http)
        expectProviderAccepted(posted.response)
        _ = try await channel.mcp.channelEvent()
        let listing = try await runCLI(["sources"], stateDir: channel.stateDir)
        #expect(listing.exitCode == 0, "\(listing)")
        #expect(!listing.stdout.contains(source.secret), "sources shows the secret again: \(listing)")
    }

    @Test func aPipedSecretLosesItsTrailingNewline() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let source = try await ProviderFixtures.add("gh", scheme: .github, secret: "It's a Secret to Everybody\n",
                                                    stateDir: channel.stateDir)

        #expect(source.secret == "It's a Secret to Everybody")
        let file = try ProviderFixtures.sourcesFile(channel.stateDir)
        #expect(file["sources"]?[source.sourceID]?["hmac_secret"] == "It's a Secret to Everybody", "\(file)")
        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http).response)
    }

    // MARK: Accepted

    @Test(arguments: ProviderScheme.allCases)
    func aCorrectlySignedDeliveryIsAcceptedAndDeliveredOnceWithTheProvidersMeta(_ scheme: ProviderScheme) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("real-\(scheme)", scheme: scheme, secret: scheme.sampleSecret,
                                                    stateDir: channel.stateDir)

        let posted = try await ProviderFixtures.post(source, on: channel.http)

        let eventID = expectProviderAccepted(posted.response)
        let event = try await channel.mcp.channelEvent()
        let meta = try #require(event["meta"]?.objectValue, "\(event)")
        #expect(event["content"] == .string(String(decoding: posted.body, as: UTF8.self)), "\(event)")
        #expect(meta["source_id"] == .string(source.sourceID), "\(meta)")
        #expect(meta["source_name"] == .string("real-\(scheme)"), "\(meta)")
        #expect(meta["event_id"] == eventID.map(JSON.string), "\(meta)")
        #expect(meta["event_type"] == .string(scheme.expectedEventType), "\(meta)")
        #expect(meta["delivery_id"] == scheme.expectedDeliveryID(posted.deliveryID).map(JSON.string), "\(meta)")
        #expect(meta["content_type"] == "application/json", "\(meta)")
        #expect(meta["truncated"] == nil, "\(meta)")
        #expect(meta["replay"] == nil, "\(meta)")
        for (key, value) in meta {
            #expect(key.wholeMatch(of: Formats.metaKey) != nil, "meta key \(key)")
            #expect(value.stringValue != nil, "meta[\(key)] is not a string: \(value)")
        }
        let extra = try await channel.mcp.channelEventsUntilQuiet()
        #expect(extra.isEmpty, "one delivery must give exactly one notification, got also: \(extra)")
    }

    // MARK: Refused

    @Test(arguments: ProviderScheme.allCases)
    func wrongSignatureStaleTimestampAndMissingHeadersAreAll401WithOneBodyAndNoNotification(_ scheme: ProviderScheme) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("refuse-\(scheme)", scheme: scheme, secret: scheme.sampleSecret,
                                                    stateDir: channel.stateDir)
        let deliveryID = scheme.makeDeliveryID()
        let body = scheme.sampleBody(deliveryID: deliveryID)

        var bodies: Set<String> = []
        for refusal in scheme.refusals(secret: source.secret, sourceID: source.sourceID, body: body, deliveryID: deliveryID) {
            let response = try await channel.http.request("POST", source.path, headers: refusal.headers, body: body)
            #expect(response.status == 401, "\(scheme) \(refusal.label): \(response)")
            expectJSONError(response, status: 401)
            bodies.insert(response.bodyText)
        }
        #expect(bodies.count == 1, "SPEC 4: one identical 401 body for every refusal, got \(bodies)")
        let events = try await channel.mcp.channelEventsUntilQuiet()
        #expect(events.isEmpty, "a refused delivery was delivered: \(events)")

        // The same delivery, correctly signed, is still accepted: the refusals left no trace
        // (in particular, no refused delivery id was remembered as seen).
        let good = scheme.headers(secret: source.secret, sourceID: source.sourceID, body: body, deliveryID: deliveryID)
        expectProviderAccepted(try await channel.http.request("POST", source.path, headers: good, body: body))
        _ = try await channel.mcp.channelEvent()
    }

    @Test func anUnknownSourceIDInThePathIs401() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("gh", scheme: .github, secret: "s3cret", stateDir: channel.stateDir)
        let body = ProviderScheme.github.sampleBody(deliveryID: "x")
        let headers = ProviderScheme.github.headers(secret: "s3cret", sourceID: source.sourceID, body: body, deliveryID: "d-1")

        let response = try await channel.http.request("POST", "/webhook/src_0123456789abcdef0123456789abcdef", headers: headers, body: body)

        expectJSONError(response, status: 401)
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty)
    }

    @Test func aSecretOfAnotherSourceIsRefused() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let first = try await ProviderFixtures.add("gh-a", scheme: .github, secret: "secret-a", stateDir: channel.stateDir)
        let second = try await ProviderFixtures.add("gh-b", scheme: .github, secret: "secret-b", stateDir: channel.stateDir)

        let crossed = try await ProviderFixtures.post(second, on: channel.http, secret: first.secret)

        expectJSONError(crossed.response, status: 401)
        expectProviderAccepted(try await ProviderFixtures.post(second, on: channel.http).response)
        let meta = try await channel.mcp.channelEvent()["meta"]
        #expect(meta?["source_id"] == .string(second.sourceID))
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty)
    }

    // MARK: Provider specifics

    @Test func githubPingIsAnswered200AndDeliveredWithEventTypePing() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("gh", scheme: .github, secret: ProviderScheme.github.sampleSecret,
                                                    stateDir: channel.stateDir)
        let body = Data(#"{"zen":"Keep it logically awesome.","hook_id":4242,"hook":{"type":"Repository","events":["push"]}}"#.utf8)

        let posted = try await ProviderFixtures.post(source, on: channel.http, body: body, githubEvent: "ping")

        expectProviderAccepted(posted.response)
        let event = try await channel.mcp.channelEvent()
        #expect(event["meta"]?["event_type"] == "ping", "\(event)")
        #expect(event["meta"]?["delivery_id"] == .string(posted.deliveryID), "\(event)")
        #expect(event["content"] == .string(String(decoding: body, as: UTF8.self)))
    }

    @Test func githubLegacySHA1HeaderAloneIsRefused() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("gh", scheme: .github, secret: "legacy", stateDir: channel.stateDir)
        let body = ProviderScheme.github.sampleBody(deliveryID: "x")
        var headers = ProviderScheme.github.headers(secret: "legacy", sourceID: source.sourceID, body: body, deliveryID: "d-sha1")
        headers.removeAll { $0.0 == "X-Hub-Signature-256" }
        // The right digest, but under the SHA-1 header name and prefix: not accepted as SHA-256.
        headers.append(("X-Hub-Signature", ProviderSigner.github(secret: "legacy", body: body).replacingOccurrences(of: "sha256=", with: "sha1=")))

        let response = try await channel.http.request("POST", source.path, headers: headers, body: body)

        expectJSONError(response, status: 401)
    }

    @Test func stripeWithSeveralV1SignaturesIsAcceptedWhenOneMatches() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("stripe", scheme: .stripe, secret: ProviderScheme.stripe.sampleSecret,
                                                    stateDir: channel.stateDir)
        let deliveryID = "evt_1NmultiSig000000000000"
        let body = ProviderScheme.stripe.sampleBody(deliveryID: deliveryID)
        let ts = unixNow()
        let wrong = ProviderSigner.stripeV1(secret: "whsec_old_rolled_secret", timestamp: String(ts), body: body)
        let right = ProviderSigner.stripeV1(secret: source.secret, timestamp: String(ts), body: body)
        // What Stripe sends while an endpoint secret is being rolled: v1 for each secret, plus
        // a v0 (test-mode) signature that must be ignored.
        let header = "t=\(ts),v1=\(wrong),v1=\(right),v0=\(String(repeating: "0", count: 64))"

        let response = try await channel.http.request("POST", source.path,
                                                      headers: [("Content-Type", "application/json"), ("Stripe-Signature", header)], body: body)

        expectProviderAccepted(response)
        let meta = try await channel.mcp.channelEvent()["meta"]
        #expect(meta?["delivery_id"] == .string(deliveryID))
        #expect(meta?["event_type"] == "payment_intent.succeeded")
    }

    @Test func stripeV0SignatureAloneIsRefused() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("stripe", scheme: .stripe, secret: ProviderScheme.stripe.sampleSecret,
                                                    stateDir: channel.stateDir)
        let body = ProviderScheme.stripe.sampleBody(deliveryID: "evt_v0only")
        let ts = unixNow()
        let digest = ProviderSigner.stripeV1(secret: source.secret, timestamp: String(ts), body: body)

        let response = try await channel.http.request("POST", source.path,
                                                      headers: [("Content-Type", "application/json"), ("Stripe-Signature", "t=\(ts),v0=\(digest)")], body: body)

        expectJSONError(response, status: 401)
    }

    @Test func standardWithASpaceSeparatedSignatureListIsAcceptedWhenOneMatches() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("svix", scheme: .standard, secret: ProviderScheme.standard.sampleSecret,
                                                    stateDir: channel.stateDir)
        let id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
        let ts = String(unixNow())
        let body = ProviderScheme.standard.sampleBody(deliveryID: id)
        let right = ProviderSigner.standard(secret: source.secret, id: id, timestamp: ts, body: body)
        let other = ProviderSigner.standard(secret: "whsec_" + ProviderCrypto.base64(Array("another key, rolled".utf8)), id: id, timestamp: ts, body: body)
        let headers = [("Content-Type", "application/json"), ("webhook-id", id), ("webhook-timestamp", ts),
                       ("webhook-signature", "\(other) v1a,AAAA \(right)")]

        let response = try await channel.http.request("POST", source.path, headers: headers, body: body)

        expectProviderAccepted(response)
        let meta = try await channel.mcp.channelEvent()["meta"]
        #expect(meta?["delivery_id"] == .string(id))
        #expect(meta?["event_type"] == "invoice.paid")
    }

    /// Clerk and Resend (Svix underneath) send `svix-id`, `svix-timestamp`, `svix-signature`:
    /// the event is delivered with `svix-id` as its delivery id, and a retry is a duplicate.
    @Test func standardSignedUnderSvixHeaderNamesIsDeliveredAndItsRetryIsADuplicate() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("clerk", scheme: .standard, secret: ProviderScheme.standard.sampleSecret,
                                                    stateDir: channel.stateDir)
        let id = "msg_svix_names", ts = String(unixNow())
        let body = ProviderScheme.standard.sampleBody(deliveryID: id)
        let signature = ProviderSigner.standard(secret: source.secret, id: id, timestamp: ts, body: body)
        let headers = [("Content-Type", "application/json"), ("svix-id", id), ("svix-timestamp", ts),
                       ("svix-signature", signature)]

        let response = try await channel.http.request("POST", source.path, headers: headers, body: body)

        expectProviderAccepted(response)
        let meta = try await channel.mcp.channelEvent()["meta"]
        #expect(meta?["delivery_id"] == .string(id))
        let retry = try await channel.http.request("POST", source.path, headers: headers, body: body)
        #expect(retry.status == 200, "\(retry)")
        #expect(retry.bodyText.contains(#""duplicate":true"#), "\(retry)")
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty, "a retry must not notify twice")
    }

    @Test func standardSignedWithTheSecretStringInsteadOfTheDecodedKeyIsRefused() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("svix", scheme: .standard, secret: ProviderScheme.standard.sampleSecret,
                                                    stateDir: channel.stateDir)
        let id = "msg_rawkey", ts = String(unixNow())
        let body = ProviderScheme.standard.sampleBody(deliveryID: id)
        // The wrong key: the secret's characters rather than the base64-decoded bytes.
        let mac = ProviderCrypto.hmacSHA256(key: Array(source.secret.utf8), message: Array("\(id).\(ts).".utf8) + Array(body))
        let headers = [("Content-Type", "application/json"), ("webhook-id", id), ("webhook-timestamp", ts),
                       ("webhook-signature", "v1," + ProviderCrypto.base64(mac))]

        let response = try await channel.http.request("POST", source.path, headers: headers, body: body)

        expectJSONError(response, status: 401)
    }

    @Test func slackURLVerificationIsAnsweredWithTheChallengeAndNotDelivered() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("slack", scheme: .slack, secret: ProviderScheme.slack.sampleSecret,
                                                    stateDir: channel.stateDir)
        let body = Data(#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"abc","type":"url_verification"}"#.utf8)

        let posted = try await ProviderFixtures.post(source, on: channel.http, body: body)

        #expect(posted.response.status == 200, "\(posted.response)")
        #expect(posted.response.bodyText.contains("abc"), "\(posted.response)")
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty, "a url_verification must not reach Claude")
    }

    @Test func slackURLVerificationWithAWrongSignatureIsRefused() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("slack", scheme: .slack, secret: ProviderScheme.slack.sampleSecret,
                                                    stateDir: channel.stateDir)
        let body = Data(#"{"token":"t","challenge":"zzz-challenge","type":"url_verification"}"#.utf8)

        let posted = try await ProviderFixtures.post(source, on: channel.http, body: body, secret: "not-the-signing-secret")

        expectJSONError(posted.response, status: 401)
        #expect(!posted.response.bodyText.contains("zzz-challenge"), "\(posted.response)")
    }

    @Test func slackFormBodyIsAcceptedOnThePerSourceURL() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("slack", scheme: .slack, secret: ProviderScheme.slack.sampleSecret,
                                                    stateDir: channel.stateDir)
        let form = "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&command=%2Fweather&text=94070&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678"
        let body = Data(form.utf8)

        let posted = try await ProviderFixtures.post(source, on: channel.http, body: body,
                                                     contentType: "application/x-www-form-urlencoded")

        expectProviderAccepted(posted.response)
        let event = try await channel.mcp.channelEvent()
        #expect(event["content"] == .string(form), "\(event)")
        #expect(event["meta"]?["content_type"] == "application/x-www-form-urlencoded", "\(event)")
        #expect(event["meta"]?["source_id"] == .string(source.sourceID))
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty)
    }

    @Test func slackFormBodyWithAWrongSignatureIsRefused() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("slack", scheme: .slack, secret: ProviderScheme.slack.sampleSecret,
                                                    stateDir: channel.stateDir)
        let body = Data("token=x&command=%2Fdeploy&text=prod".utf8)
        let ts = unixNow()
        // Signed over the decoded text instead of the raw bytes sent: must not verify.
        let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Slack-Request-Timestamp", String(ts)),
                       ("X-Slack-Signature", ProviderSigner.slack(secret: source.secret, timestamp: ts, body: Data("token=x&command=/deploy&text=prod".utf8)))]

        let response = try await channel.http.request("POST", source.path, headers: headers, body: body)

        expectJSONError(response, status: 401)
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty)
    }

    @Test func aProviderSourceDoesNotAcceptAnotherSchemesHeaders() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("stripe", scheme: .stripe, secret: ProviderScheme.stripe.sampleSecret,
                                                    stateDir: channel.stateDir)
        let body = ProviderScheme.stripe.sampleBody(deliveryID: "evt_crossscheme")
        // GitHub's header, correctly computed with this source's secret, on a Stripe source.
        let headers = ProviderScheme.github.headers(secret: source.secret, sourceID: source.sourceID, body: body, deliveryID: "g-1")

        let response = try await channel.http.request("POST", source.path, headers: headers, body: body)

        expectJSONError(response, status: 401)
    }
}
