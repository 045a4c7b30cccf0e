import Foundation
import Testing

/// Duplicates (SPEC 4): the same source and delivery id within 24 h → `200
/// {"received":true,"duplicate":true}` and no second notification, also across a restart
/// (the memory is rebuilt from the event log).
@Suite struct IdempotencyTests {
    static let duplicateAnswer: JSON = ["received": true, "duplicate": true]

    @Test(arguments: [ProviderScheme.github, .stripe, .standard, .webhook])
    func theSameDeliveryIDTwiceIsADuplicateAndDeliveredOnce(_ scheme: ProviderScheme) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("dup-\(scheme)", scheme: scheme, secret: scheme.sampleSecret,
                                                    stateDir: channel.stateDir)
        let deliveryID = scheme.makeDeliveryID()

        let first = try await ProviderFixtures.post(source, on: channel.http, deliveryID: deliveryID)
        expectProviderAccepted(first.response)
        _ = try await channel.mcp.channelEvent()
        // A provider's retry: same delivery id and body, signed again with a later timestamp.
        let second = try await ProviderFixtures.post(source, on: channel.http, body: first.body, deliveryID: deliveryID,
                                                     timestamp: unixNow() + 2)

        #expect(second.response.status == 200, "\(second.response)")
        #expect(try second.response.json() == Self.duplicateAnswer, "\(second.response)")
        let extra = try await channel.mcp.channelEventsUntilQuiet()
        #expect(extra.isEmpty, "a duplicate was delivered again: \(extra)")
    }

    @Test func aDifferentDeliveryIDIsNotADuplicate() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("gh", scheme: .github, secret: "dupe-secret", stateDir: channel.stateDir)
        let body = ProviderScheme.github.sampleBody(deliveryID: "-")

        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http, body: body, deliveryID: "11111111-aaaa").response)
        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http, body: body, deliveryID: "22222222-bbbb").response)

        let first = try await channel.mcp.channelEvent()
        let second = try await channel.mcp.channelEvent()
        #expect(first["meta"]?["delivery_id"] == "11111111-aaaa")
        #expect(second["meta"]?["delivery_id"] == "22222222-bbbb")
    }

    /// A Stripe body whose `id` is empty carries no delivery id: two such events are two
    /// events, not a duplicate (and no empty `delivery_id` meta).
    @Test func stripeEventsWithAnEmptyIDAreNotDuplicatesOfEachOther() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("stripe-empty", scheme: .stripe, secret: ProviderScheme.stripe.sampleSecret,
                                                    stateDir: channel.stateDir)
        for n in 1...2 {
            let body = Data(#"{"id":"","object":"event","type":"charge.succeeded","n":\#(n)}"#.utf8)
            let posted = try await ProviderFixtures.post(source, on: channel.http, body: body, deliveryID: "")
            #expect(expectProviderAccepted(posted.response) != nil, "event \(n): \(posted.response)")
            let event = try await channel.mcp.channelEvent()
            #expect(event["meta"]?["delivery_id"] == nil, "\(event)")
        }
    }

    /// A request signed both ways (`v1=…,sha256=…`, as `sign`, `send` and replies do) is
    /// accepted by its `v1=` part, and its `sha256=` part is remembered: the same request cut
    /// down to that part, with a fresh timestamp and another delivery id, is a duplicate. A
    /// new request signed both ways is still taken (its `v1=` part proves it fresh).
    @Test func theSha256PartOfARequestAcceptedByItsV1PartCannotBeReplayedAlone() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "both")
        let body = Data(#"{"event":"signed-both-ways"}"#.utf8)
        func both(_ timestamp: Int) -> [(String, String)] {
            let ts = String(timestamp)
            let v1 = TestSigner.v1Signature(secret: credentials.secret, timestamp: ts, body: body)
            let seed = TestSigner.seedSignature(secret: credentials.secret, body: body)
            return [("X-Source-Id", credentials.sourceID), ("X-Timestamp", ts), ("X-Signature", "\(v1),\(seed)")]
        }

        let original = try await channel.http.postJSON("/webhook", body: body, headers: both(unixNow()))
        #expect(expectProviderAccepted(original) != nil)
        _ = try await channel.mcp.channelEvent()

        let stripped = try await channel.http.postJSON("/webhook", body: body, headers: [
            ("X-Source-Id", credentials.sourceID), ("X-Timestamp", String(unixNow() + 60)),
            ("X-Signature", TestSigner.seedSignature(secret: credentials.secret, body: body)), ("X-Webhook-Id", "other-id"),
        ])
        #expect(stripped.status == 200, "\(stripped)")
        #expect(try stripped.json() == Self.duplicateAnswer, "the sha256= part was accepted again: \(stripped)")

        let resent = try await channel.http.postJSON("/webhook", body: body, headers: both(unixNow() + 1))
        #expect(expectProviderAccepted(resent) != nil, "a new request signed both ways was refused: \(resent)")
        #expect(try await channel.mcp.channelEvent()["content"] == #"{"event":"signed-both-ways"}"#)
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty)
    }

    @Test func theSameDeliveryIDFromTwoSourcesIsNotADuplicate() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let one = try await ProviderFixtures.add("gh-one", scheme: .github, secret: "one", stateDir: channel.stateDir)
        let two = try await ProviderFixtures.add("gh-two", scheme: .github, secret: "two", stateDir: channel.stateDir)
        let shared = "c0ffee00-0000-4000-8000-000000000001"

        expectProviderAccepted(try await ProviderFixtures.post(one, on: channel.http, deliveryID: shared).response)
        expectProviderAccepted(try await ProviderFixtures.post(two, on: channel.http, deliveryID: shared).response)

        let sources = [try await channel.mcp.channelEvent(), try await channel.mcp.channelEvent()]
            .compactMap { $0["meta"]?["source_id"]?.stringValue }
        #expect(Set(sources) == [one.sourceID, two.sourceID])
    }

    @Test(arguments: [ProviderScheme.github, .stripe, .standard, .webhook])
    func aDuplicateIsStillRecognisedAfterARestartOnTheSameStateDir(_ scheme: ProviderScheme) async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let deliveryID = scheme.makeDeliveryID()
        let source: AddedSource
        let body: Data
        do {
            let channel = try await TestChannel.start(stateDir: dir)
            defer { channel.stop() }
            source = try await ProviderFixtures.add("restart-\(scheme)", scheme: scheme, secret: scheme.sampleSecret, stateDir: dir)
            let first = try await ProviderFixtures.post(source, on: channel.http, deliveryID: deliveryID)
            expectProviderAccepted(first.response)
            _ = try await channel.mcp.channelEvent()
            body = first.body
            // A clean stop, as Claude Code ends a session: stdin closes.
            channel.server.closeStdin()
            let ended = try await channel.server.child.waitForExit()
            #expect(ended == .exited(0), "\(ended)")
        }

        let restarted = try await TestChannel.start(stateDir: dir)
        defer { restarted.stop() }
        let again = try await ProviderFixtures.post(source, on: restarted.http, body: body, deliveryID: deliveryID,
                                                    timestamp: unixNow() + 1)

        #expect(again.response.status == 200, "\(again.response)")
        #expect(try again.response.json() == Self.duplicateAnswer, "after a restart: \(again.response)")
        #expect(try await restarted.mcp.channelEventsUntilQuiet().isEmpty, "delivered again after a restart")
        // The restarted server is otherwise serving this source normally.
        expectProviderAccepted(try await ProviderFixtures.post(source, on: restarted.http).response)
        _ = try await restarted.mcp.channelEvent()
    }

    @Test func aSeedSHA256SignatureSeenTwiceIsADuplicateAlsoAfterARestart() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let body = Data(#"{"event":"seed-style","n":1}"#.utf8)
        let credentials: SourceCredentials
        // The same `sha256=` signature each time (it covers the body, not the timestamp); the
        // `X-Timestamp` is taken when each request is sent. Taken once, before the server
        // (and the restart, which waits for a server slot again) started, it could leave the
        // 300 s window on a loaded CI machine and turn the duplicate answers into 401s.
        func headers(_ credentials: SourceCredentials) -> [(String, String)] {
            [("Content-Type", "application/json"), ("X-Source-Id", credentials.sourceID), ("X-Timestamp", String(unixNow())),
             ("X-Signature", ProviderSigner.webhookSeed(secret: credentials.secret, body: body))]
        }
        do {
            let channel = try await TestChannel.start(stateDir: dir)
            defer { channel.stop() }
            credentials = try await channel.http.pairSource(name: "seed")
            expectProviderAccepted(try await channel.http.request("POST", "/webhook", headers: headers(credentials), body: body))
            _ = try await channel.mcp.channelEvent()
            let repeated = try await channel.http.request("POST", "/webhook", headers: headers(credentials), body: body)
            #expect(try repeated.json() == Self.duplicateAnswer, "\(repeated)")
            channel.server.closeStdin()
            _ = try await channel.server.child.waitForExit()
        }

        let restarted = try await TestChannel.start(stateDir: dir)
        defer { restarted.stop() }
        let afterRestart = try await restarted.http.request("POST", "/webhook", headers: headers(credentials), body: body)

        #expect(afterRestart.status == 200, "\(afterRestart)")
        #expect(try afterRestart.json() == Self.duplicateAnswer, "\(afterRestart)")
        #expect(try await restarted.mcp.channelEventsUntilQuiet().isEmpty)
    }

    @Test func aRefusedRetryIsNotTurnedIntoADuplicateAnswer() async throws {
        // A duplicate answer must never be given to a request whose signature is wrong: that
        // would tell a prober which delivery ids exist.
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("gh", scheme: .github, secret: "real", stateDir: channel.stateDir)
        let first = try await ProviderFixtures.post(source, on: channel.http)
        expectProviderAccepted(first.response)
        _ = try await channel.mcp.channelEvent()

        let forged = try await ProviderFixtures.post(source, on: channel.http, body: first.body, deliveryID: first.deliveryID,
                                                     secret: "forged")

        expectJSONError(forged.response, status: 401)
    }
}
