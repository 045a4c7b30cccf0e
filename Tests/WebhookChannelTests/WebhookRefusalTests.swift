import Foundation
import Testing

/// What `POST /webhook` refuses or acknowledges without a second delivery (SPEC 4 and 6).
@Suite struct WebhookRefusalTests {
    @Test func unauthenticatedWebhooksAre401WithByteIdenticalBodies() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        let body = #"{"event":"deploy"}"#
        let data = Data(body.utf8)
        // Each case's timestamp is taken when it is sent, and stale ones are a minute past the window: a loaded CI
        // can take seconds between two requests, and 301 s computed once drifted into the window there. The exact
        // 300 s edge is pinned on an injected clock in SignatureSchemeTests and WebhookIntakeTests.
        func signed(_ offset: Int) -> [(String, String)] {
            RawHTTPClient.webhookHeaders(credentials, body: data, scheme: .v1, timestamp: unixNow() + offset)
        }
        let wrongSecret = SourceCredentials(sourceID: credentials.sourceID, secret: "whsec_" + String(repeating: "0", count: 64))
        let unknownSource = SourceCredentials(sourceID: "src_" + String(repeating: "ab", count: 16), secret: credentials.secret)
        let cases: [(String, () -> [(String, String)])] = [
            ("wrong signature", { RawHTTPClient.webhookHeaders(wrongSecret, body: data) }),
            ("timestamp 360 s old", { signed(-360) }),
            ("timestamp 360 s ahead", { signed(360) }),
            ("seed signature with stale timestamp",
             { RawHTTPClient.webhookHeaders(credentials, body: data, scheme: .seed, timestamp: unixNow() - 360) }),
            ("unknown source", { RawHTTPClient.webhookHeaders(unknownSource, body: data) }),
            ("missing X-Signature", { signed(0).filter { $0.0 != "X-Signature" } }),
        ]

        var bodies: [String: Data] = [:]
        for (name, headers) in cases {
            let response = try await channel.http.postJSON("/webhook", body: data, headers: headers())
            #expect(response.status == 401, "\(name): \(response)")
            expectJSONError(response, status: 401)
            bodies[name] = response.body
        }

        let distinct = Set(bodies.values)
        #expect(distinct.count == 1, "401 bodies differ: \(bodies.mapValues { String(decoding: $0, as: UTF8.self) })")
        let delivered = try await channel.mcp.channelEventsUntilQuiet()
        #expect(delivered.isEmpty, "a refused webhook was delivered: \(delivered)")
    }

    @Test func timestampWindowIsThreeHundredSecondsEitherWay() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")

        // A minute either side of the edge, so a loaded machine's delay between signing and checking cannot move a
        // timestamp across it; the exact edge is pinned on an injected clock in SignatureSchemeTests.
        let past = try await channel.http.postWebhook(#"{"event":"a"}"#, as: credentials, timestamp: unixNow() - 240)
        let future = try await channel.http.postWebhook(#"{"event":"b"}"#, as: credentials, timestamp: unixNow() + 240)
        let stale = try await channel.http.postWebhook(#"{"event":"c"}"#, as: credentials, timestamp: unixNow() - 360)
        let ahead = try await channel.http.postWebhook(#"{"event":"d"}"#, as: credentials, timestamp: unixNow() + 360)

        #expect(past.status == 200, "240 s old: \(past)")
        #expect(future.status == 200, "240 s ahead: \(future)")
        #expect(stale.status == 401, "360 s old: \(stale)")
        #expect(ahead.status == 401, "360 s ahead: \(ahead)")
    }

    @Test func validSignatureOnNonJSONBodyIs400InvalidJSON() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")

        let response = try await channel.http.postWebhook("this is not json", as: credentials)

        expectJSONError(response, status: 400, error: "invalid_json")
        let delivered = try await channel.mcp.channelEventsUntilQuiet()
        #expect(delivered.isEmpty, "\(delivered)")
    }

    @Test func duplicateSeedSignatureIsAcknowledgedOnce() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        let body = #"{"event":"deploy","run":1}"#
        let timestamp = unixNow()

        let first = try await channel.http.postWebhook(body, as: credentials, scheme: .seed, timestamp: timestamp)
        let second = try await channel.http.postWebhook(body, as: credentials, scheme: .seed, timestamp: timestamp)

        #expect(first.status == 200, "\(first)")
        #expect(try first.json()["duplicate"] != true, "\(first)")
        #expect(second.status == 200, "\(second)")
        let answer = try second.json()
        #expect(answer["received"] == true, "\(answer)")
        #expect(answer["duplicate"] == true, "\(answer)")
        let delivered = try await channel.mcp.channelEventsUntilQuiet()
        #expect(delivered.count == 1, "expected one notification, got \(delivered.count): \(delivered)")
    }

    /// The seed's signature does not cover the timestamp, so a captured request replayed
    /// with a fresh `X-Timestamp` is still the same delivery.
    @Test func seedSignatureReplayedWithAFreshTimestampIsADuplicate() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        let body = #"{"event":"deploy","run":2}"#

        let first = try await channel.http.postWebhook(body, as: credentials, scheme: .seed, timestamp: unixNow() - 100)
        let replay = try await channel.http.postWebhook(body, as: credentials, scheme: .seed, timestamp: unixNow())

        #expect(first.status == 200, "\(first)")
        #expect(replay.status == 200, "\(replay)")
        #expect(try replay.json()["duplicate"] == true, "\(replay)")
        let delivered = try await channel.mcp.channelEventsUntilQuiet()
        #expect(delivered.count == 1, "\(delivered)")
    }

    @Test func duplicateWebhookIDIsAcknowledgedOnce() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        let delivery = [("X-Webhook-Id", "dlv-dup-1")]

        let first = try await channel.http.postWebhook(#"{"event":"a","try":1}"#, as: credentials,
                                                       timestamp: unixNow() - 5, extraHeaders: delivery)
        let second = try await channel.http.postWebhook(#"{"event":"a","try":2}"#, as: credentials, extraHeaders: delivery)

        #expect(first.status == 200, "\(first)")
        #expect(second.status == 200, "\(second)")
        let answer = try second.json()
        #expect(answer["received"] == true, "\(answer)")
        #expect(answer["duplicate"] == true, "\(answer)")
        let delivered = try await channel.mcp.channelEventsUntilQuiet()
        #expect(delivered.count == 1, "\(delivered)")
        #expect(delivered.first?["content"] == #"{"event":"a","try":1}"#)
    }

    @Test func sameWebhookIDFromAnotherSourceIsNotADuplicate() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let first = try await channel.http.pairSource(name: "one")
        let second = try await channel.http.pairSource(name: "two")
        let delivery = [("X-Webhook-Id", "dlv-shared")]

        let a = try await channel.http.postWebhook(#"{"event":"a"}"#, as: first, extraHeaders: delivery)
        let b = try await channel.http.postWebhook(#"{"event":"a"}"#, as: second, extraHeaders: delivery)

        let again = try await channel.http.postWebhook(#"{"event":"a"}"#, as: first, extraHeaders: delivery)

        #expect(try a.json()["duplicate"] != true, "\(a)")
        #expect(b.status == 200, "\(b)")
        #expect(try b.json()["duplicate"] != true, "another source's delivery id was taken as a repeat: \(b)")
        #expect(try again.json()["duplicate"] == true, "the first source's repeat: \(again)")
        let delivered = try await channel.mcp.channelEventsUntilQuiet()
        #expect(delivered.compactMap { $0["meta"]?["source_name"]?.stringValue } == ["one", "two"], "\(delivered)")
    }
}
