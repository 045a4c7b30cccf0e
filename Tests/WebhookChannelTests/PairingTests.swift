import Foundation
import Testing

/// Pairing over HTTP: `/pair`, `/pair/complete`, `/pair/status` (SPEC 4 and 5).
@Suite struct PairingTests {
    @Test func pairAnswersACodeAPollTokenAndTheTimings() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let response = try await channel.http.postJSON("/pair", ["name": "ci"])

        #expect(response.status == 200, "\(response)")
        #expect(response.header("Content-Type")?.lowercased().hasPrefix("application/json") == true)
        let answer = try response.json()
        let code = try #require(answer["pairing_code"]?.stringValue, "\(answer)")
        #expect(code.wholeMatch(of: Formats.pairingCode) != nil, "pairing_code \(code)")
        #expect(answer["poll_token"]?.stringValue?.isEmpty == false, "\(answer)")
        #expect(answer["expires_in"] == 300, "\(answer)")
        #expect(answer["interval"] == 2, "\(answer)")
    }

    @Test func pairingCodesAreDistinctAndUseTheUnambiguousAlphabet() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        var codes: Set<String> = []
        for index in 0..<12 {
            let ticket = try await channel.http.requestPairing(name: "many-\(index)")
            #expect(ticket.code.wholeMatch(of: Formats.pairingCode) != nil, "pairing_code \(ticket.code)")
            codes.insert(ticket.code)
        }
        #expect(codes.count == 12, "codes repeat: \(codes)")
    }

    @Test func pairCompleteReturnsCredentialsInTheSeedFormatAndTheCodeIsSingleUse() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let ticket = try await channel.http.requestPairing(name: "ci")

        let response = try await channel.http.postJSON("/pair/complete", ["code": .string(ticket.code)])

        #expect(response.status == 200, "\(response)")
        let answer = try response.json()
        let sourceID = try #require(answer["source_id"]?.stringValue, "\(answer)")
        let secret = try #require(answer["hmac_secret"]?.stringValue, "\(answer)")
        #expect(sourceID.wholeMatch(of: Formats.sourceID) != nil, "source_id \(sourceID)")
        #expect(secret.wholeMatch(of: Formats.secret) != nil, "hmac_secret \(secret)")

        let again = try await channel.http.postJSON("/pair/complete", ["code": .string(ticket.code)])
        #expect((400..<500).contains(again.status), "a used code completed again: \(again)")
        #expect(try again.json()["hmac_secret"] == nil)
        let health = try await channel.http.get("/health").json()
        #expect(health["sources"] == 1, "\(health)")
        #expect(health["pending"] == 0, "\(health)")
    }

    @Test func pairingCodeIsMatchedCaseInsensitively() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let ticket = try await channel.http.requestPairing(name: "ci")

        let credentials = try await channel.http.completePairing(code: ticket.code.lowercased())

        #expect(credentials.sourceID.wholeMatch(of: Formats.sourceID) != nil)
        let webhook = try await channel.http.postWebhook(#"{"event":"x"}"#, as: credentials)
        #expect(webhook.status == 200, "\(webhook)")
    }

    @Test func unknownCodeCannotBeCompleted() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        _ = try await channel.http.requestPairing(name: "ci")

        let response = try await channel.http.postJSON("/pair/complete", ["code": "ZZZZZZ"])

        #expect((400..<500).contains(response.status), "\(response)")
        expectJSONError(response, status: response.status)
        #expect(try await channel.http.get("/health").json()["sources"] == 0)
    }

    @Test func pairStatusFollowsTheCodeAndHandsTheSecretToTheTokenHolderOnce() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let ticket = try await channel.http.requestPairing(name: "device")
        let bearer = [("Authorization", "Bearer \(ticket.pollToken)")]

        let unknown = try await channel.http.get("/pair/status?code=ZZZZZZ").json()
        #expect(unknown["status"] == "unknown", "\(unknown)")
        let pending = try await channel.http.get("/pair/status?code=\(ticket.code)", headers: bearer)
        #expect(pending.status == 200, "\(pending)")
        #expect(try pending.json()["status"] == "pending", "\(pending)")
        #expect(try pending.json()["hmac_secret"] == nil)

        let credentials = try await channel.http.completePairing(code: ticket.code)

        let anonymous = try await channel.http.get("/pair/status?code=\(ticket.code)").json()
        #expect(anonymous["status"] == "paired", "\(anonymous)")
        #expect(anonymous["hmac_secret"] == nil, "a secret without the poll token: \(anonymous)")
        let wrongToken = try await channel.http.get("/pair/status?code=\(ticket.code)",
                                                    headers: [("Authorization", "Bearer not-the-token")]).json()
        #expect(wrongToken["hmac_secret"] == nil, "a secret for a wrong token: \(wrongToken)")

        let first = try await channel.http.get("/pair/status?code=\(ticket.code)", headers: bearer)
        #expect(first.status == 200, "\(first)")
        let handed = try first.json()
        #expect(handed["status"] == "paired", "\(handed)")
        #expect(handed["source_id"] == .string(credentials.sourceID), "\(handed)")
        #expect(handed["hmac_secret"] == .string(credentials.secret), "\(handed)")

        let second = try await channel.http.get("/pair/status?code=\(ticket.code)", headers: bearer).json()
        #expect(second["status"] == "paired", "\(second)")
        #expect(second["hmac_secret"] == nil, "the secret was handed out twice: \(second)")
    }

    @Test func seventeenthPendingPairingIs429() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        for index in 1...16 {
            let response = try await channel.http.postJSON("/pair", ["name": .string("pending-\(index)")])
            #expect(response.status == 200, "pairing \(index): \(response)")
        }
        let refused = try await channel.http.postJSON("/pair", ["name": "one-too-many"])

        expectJSONError(refused, status: 429)
        #expect(try await channel.http.get("/health").json()["pending"] == 16)
    }

    @Test(arguments: [("X-Forwarded-For", "203.0.113.9"), ("Forwarded", "for=203.0.113.9")])
    func pairCompleteThroughAProxyIsForbidden(header: String, value: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let ticket = try await channel.http.requestPairing(name: "tunnel")

        let response = try await channel.http.postJSON("/pair/complete", ["code": .string(ticket.code)],
                                                       headers: [(header, value)])

        expectJSONError(response, status: 403)
        #expect(try response.json()["hmac_secret"] == nil)
        let health = try await channel.http.get("/health").json()
        #expect(health["sources"] == 0, "\(health)")
        #expect(health["pending"] == 1, "the code must stay usable from the terminal: \(health)")
    }

    @Test(arguments: [
        "ftp://example.com/hook",
        "not a url",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://192.168.1.20:8080/hook",
    ])
    func pairWithARefusedCallbackURLIs400(callbackURL: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let response = try await channel.http.postJSON("/pair", ["name": "ci", "callback_url": .string(callbackURL)])

        expectJSONError(response, status: 400, error: "invalid_callback_url")
        #expect(try await channel.http.get("/health").json()["pending"] == 0)
    }

    @Test(arguments: [#"{}"#, #"{"name":42}"#, #"{"name":"#, #"[]"#])
    func pairWithoutAUsableNameIs400(body: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let response = try await channel.http.postJSON("/pair", body: Data(body.utf8))

        expectJSONError(response, status: 400)
        #expect(try await channel.http.get("/health").json()["pending"] == 0)
    }
}
