import Foundation
import Testing

/// Signed webhooks become exactly one `notifications/claude/channel` each (SPEC 3 and 4).
@Suite struct WebhookDeliveryTests {
    @Test func v1SignedWebhookBecomesExactlyOneChannelNotification() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        let body = #"{"event":"deploy","status":"success","note":"naïve ✓"}"#
        let sent = Date()

        let response = try await channel.http.postWebhook(body, as: credentials, scheme: .v1,
                                                          extraHeaders: [("X-Webhook-Id", "dlv-123")])

        #expect(response.status == 200, "\(response)")
        #expect(response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true)
        let answer = try response.json()
        #expect(answer["received"] == true, "\(answer)")
        #expect(answer["duplicate"] == nil || answer["duplicate"] == false, "\(answer)")
        let eventID = try #require(answer["event_id"]?.stringValue, "\(answer)")
        #expect(eventID.hasPrefix("evt_") && eventID.count > 4, "event_id: \(eventID)")

        let event = try await channel.mcp.channelEvent()
        #expect(event["content"] == .string(body))
        let meta = try #require(event["meta"]?.objectValue, "\(event)")
        expectWellFormedMeta(meta)
        #expect(meta["source_id"] == .string(credentials.sourceID))
        #expect(meta["source_name"] == "ci")
        #expect(meta["event_id"] == .string(eventID))
        #expect(meta["event_type"] == "deploy")
        #expect(meta["delivery_id"] == "dlv-123")
        #expect(meta["content_type"] == "application/json")
        #expect(meta["truncated"] == nil, "\(meta)")
        expectRecentUTCTimestamp(meta["received_at"], since: sent)

        let extra = try await channel.mcp.channelEventsUntilQuiet()
        #expect(extra.isEmpty, "a second notification for one webhook: \(extra)")
    }

    @Test func seedSha256SignedWebhookIsDeliveredWithoutDeliveryID() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        let body = #"{"type":"push","ref":"refs/heads/main"}"#

        let response = try await channel.http.postWebhook(body, as: credentials, scheme: .seed)

        #expect(response.status == 200, "\(response)")
        let answer = try response.json()
        #expect(answer["received"] == true, "\(answer)")
        let eventID = try #require(answer["event_id"]?.stringValue, "\(answer)")
        let event = try await channel.mcp.channelEvent()
        #expect(event["content"] == .string(body))
        let meta = try #require(event["meta"]?.objectValue, "\(event)")
        expectWellFormedMeta(meta)
        #expect(meta["event_id"] == .string(eventID))
        #expect(meta["source_id"] == .string(credentials.sourceID))
        #expect(meta["source_name"] == "ci")
        #expect(meta["event_type"] == "push")
        #expect(meta["delivery_id"] == nil, "no delivery id was sent: \(meta)")
        let extra = try await channel.mcp.channelEventsUntilQuiet()
        #expect(extra.isEmpty, "\(extra)")
    }

    @Test func eventTypeComesFromTheHeaderWhenTheBodyHasNone() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "builder")

        let response = try await channel.http.postWebhook(#"{"build":42,"ok":true}"#, as: credentials,
                                                          extraHeaders: [("X-Event-Type", "build.finished")])

        #expect(response.status == 200, "\(response)")
        let meta = try #require(try await channel.mcp.channelEvent()["meta"]?.objectValue)
        expectWellFormedMeta(meta)
        #expect(meta["event_type"] == "build.finished")
        #expect(meta["source_name"] == "builder")
    }

    @Test func eventTypeMetaIsPresentOnlyWhenTheEventTypeIsKnown() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")

        #expect(try await channel.http.postWebhook(#"{"build":42}"#, as: credentials).status == 200)
        #expect(try await channel.http.postWebhook(#"{"event":"release","build":43}"#, as: credentials).status == 200)

        let unknown = try #require(try await channel.mcp.channelEvent()["meta"]?.objectValue)
        let known = try #require(try await channel.mcp.channelEvent()["meta"]?.objectValue)
        expectWellFormedMeta(unknown)
        #expect(unknown["event_type"] == nil, "\(unknown)")
        #expect(known["event_type"] == "release", "\(known)")
    }

    /// A multibyte character straddles byte 16384; the content must stop before it.
    @Test(arguments: ["é", "€", "😀"])
    func bodyOver16KiBIsCutAtAUTF8BoundaryAndMarkedTruncated(straddling character: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "big")
        let limit = 16_384
        let width = character.utf8.count
        let opening = #"{"event":"big","pad":""#
        // The character's first byte sits at offset limit + 1 - width, its last at `limit`.
        let start = limit + 1 - width
        var body = opening + String(repeating: "a", count: start - opening.utf8.count)
        while body.utf8.count < 20_000 { body += character }
        body += #""}"#
        let expected = String(decoding: Array(body.utf8)[0..<start], as: UTF8.self)
        #expect(expected.utf8.count == start)

        let response = try await channel.http.postWebhook(body, as: credentials)

        #expect(response.status == 200, "\(response)")
        let event = try await channel.mcp.channelEvent()
        let content = try #require(event["content"]?.stringValue)
        #expect(content.utf8.count <= limit)
        #expect(content.utf8.count == start, "longest UTF-8-valid prefix is \(start) bytes, got \(content.utf8.count)")
        #expect(content == expected, "content must be the body's prefix with nothing appended")
        let meta = try #require(event["meta"]?.objectValue)
        expectWellFormedMeta(meta)
        #expect(meta["truncated"] == "true", "\(meta)")
    }

    @Test func truncationStartsAfterExactly16KiB() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "edge")
        func body(bytes: Int) -> String {
            let opening = #"{"event":"edge","pad":""#
            let closing = #""}"#
            return opening + String(repeating: "z", count: bytes - opening.utf8.count - closing.utf8.count) + closing
        }
        let whole = body(bytes: 16_384)
        let over = body(bytes: 16_385)

        #expect(try await channel.http.postWebhook(whole, as: credentials).status == 200)
        #expect(try await channel.http.postWebhook(over, as: credentials).status == 200)

        let first = try await channel.mcp.channelEvent()
        #expect(first["content"] == .string(whole), "a 16384-byte body must arrive whole")
        #expect(first["meta"]?["truncated"] == nil, "\(first["meta"] ?? .null)")
        let second = try await channel.mcp.channelEvent()
        #expect(second["content"] == .string(String(over.dropLast())), "a 16385-byte body loses its last byte")
        #expect(second["meta"]?["truncated"] == "true", "\(second["meta"] ?? .null)")
    }

    @Test func eventsBeforeInitializedAreQueuedAndDeliveredInOrderAfterIt() async throws {
        let channel = try await TestChannel.start(handshake: false)
        defer { channel.stop() }
        let initialize = try await channel.mcp.initialize()
        #expect(initialize["result"] != nil, "\(initialize)")
        let credentials = try await channel.http.pairSource(name: "early")

        var eventIDs: [String] = []
        var bodies: [String] = []
        for sequence in 1...3 {
            let body = #"{"event":"queued","seq":\#(sequence)}"#
            let response = try await channel.http.postWebhook(body, as: credentials)
            #expect(response.status == 200, "\(response)")
            eventIDs.append(try #require(try response.json()["event_id"]?.stringValue))
            bodies.append(body)
        }
        let early = try await channel.mcp.channelEventsUntilQuiet()
        #expect(early.isEmpty, "notifications sent before notifications/initialized: \(early)")
        let waiting = try await channel.http.get("/health").json()
        #expect(waiting["mcp"] == "waiting", "\(waiting)")

        channel.mcp.notify("notifications/initialized")

        for index in 0..<3 {
            let event = try await channel.mcp.channelEvent()
            #expect(event["content"] == .string(bodies[index]), "event \(index + 1) out of order: \(event)")
            #expect(event["meta"]?["event_id"] == .string(eventIDs[index]))
        }
        let extra = try await channel.mcp.channelEventsUntilQuiet()
        #expect(extra.isEmpty, "\(extra)")
        let connected = try await channel.http.get("/health").json()
        #expect(connected["mcp"] == "connected", "\(connected)")
    }

    @Test func stderrNeverContainsASecretSignatureOrBody() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let receiver = try CallbackReceiver(statuses: [200])
        defer { receiver.stop() }
        let credentials = try await channel.http.pairSource(name: "quiet", callbackURL: receiver.url())
        let body = #"{"event":"secretive","marker":"body-marker-5e1f0c"}"#
        let timestamp = unixNow()
        let v1 = TestSigner.v1Signature(secret: credentials.secret, timestamp: String(timestamp), body: Data(body.utf8))
        let seed = TestSigner.seedSignature(secret: credentials.secret, body: Data(body.utf8))

        #expect(try await channel.http.postWebhook(body, as: credentials, scheme: .v1, timestamp: timestamp).status == 200)
        #expect(try await channel.http.postWebhook(body, as: credentials, scheme: .seed, timestamp: timestamp).status == 200)
        let forged = SourceCredentials(sourceID: credentials.sourceID, secret: credentials.secret + "x")
        #expect(try await channel.http.postWebhook(body, as: forged).status == 401)
        _ = try await channel.mcp.callTool("webhook_reply", arguments: [
            "source_id": .string(credentials.sourceID), "payload": ["reply": "reply-marker-9d2b"],
        ])
        _ = try await receiver.waitForDeliveries(1)
        channel.server.closeStdin()
        _ = try await channel.server.child.waitForExit()
        _ = try await poll("stderr to close") { channel.server.stderr.isFinished ? true : nil }

        let log = channel.server.stderr.text
        let secretHex = String(credentials.secret.dropFirst("whsec_".count))
        for (name, needle) in [("secret", secretHex), ("v1 signature", String(v1.dropFirst(3))),
                               ("sha256 signature", String(seed.dropFirst(7))),
                               ("body", "body-marker-5e1f0c"), ("reply payload", "reply-marker-9d2b")] {
            #expect(!log.contains(needle), "stderr contains the \(name)")
        }
        #expect(!log.isEmpty, "expected at least the listening line on stderr")
    }
}

/// SPEC 3: every meta value is a string, keys match `[A-Za-z0-9_]+`, never the key `source`.
func expectWellFormedMeta(_ meta: [String: JSON], sourceLocation: SourceLocation = #_sourceLocation) {
    for (key, value) in meta {
        #expect(key.wholeMatch(of: Formats.metaKey) != nil, "meta key \(key)", sourceLocation: sourceLocation)
        #expect(value.stringValue != nil, "meta[\(key)] is not a string: \(value)", sourceLocation: sourceLocation)
    }
    #expect(meta["source"] == nil, "meta must never use the key `source`", sourceLocation: sourceLocation)
}

/// An ISO 8601 UTC time taken between `since` (read just before the request that records
/// it) and now, give or take a second for rounding. Bracketing the request, rather than
/// allowing a margin around the moment of the check, holds however slow the machine is.
func expectRecentUTCTimestamp(_ value: JSON?, since: Date, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let text = value?.stringValue else {
        Issue.record("expected an ISO 8601 string, got \(String(describing: value))", sourceLocation: sourceLocation)
        return
    }
    #expect(text.hasSuffix("Z") || text.hasSuffix("+00:00"), "not UTC: \(text)", sourceLocation: sourceLocation)
    guard let date = parseISO8601(text) else {
        Issue.record("not ISO 8601: \(text)", sourceLocation: sourceLocation)
        return
    }
    let until = Date()
    #expect(date >= since.addingTimeInterval(-1) && date <= until.addingTimeInterval(1),
            "\(text) is not between \(since) and \(until), when it was recorded", sourceLocation: sourceLocation)
}

func parseISO8601(_ text: String) -> Date? {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: text) { return date }
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: text)
}
