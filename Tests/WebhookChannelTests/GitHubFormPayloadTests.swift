import Foundation
import Testing
@testable import HTTP
@testable import MCP
@testable import Signing
@testable import WebhookChannel

/// SPEC 14: a GitHub hook set to `application/x-www-form-urlencoded` sends `payload=<JSON>`;
/// its digest reads that JSON. Anything else form-like is digested as it was.
struct GitHubFormPayloadTests {
    static let form = DigestFixtures.formContentType

    /// The digest's lines without its footer, which gives the body's own size.
    static func withoutFooter(_ digest: String) -> String {
        digest.split(separator: "\n", omittingEmptySubsequences: false).dropLast().joined(separator: "\n")
    }

    @Test(arguments: DigestFixtures.githubEvents)
    func aFormEncodedGitHubPayloadIsDigestedLikeTheJSONItCarries(_ event: String) throws {
        let json = try DigestFixtures.github(event)
        let body = DigestFixtures.githubForm(json)

        let fromForm = EventDigestTests.digest(.github, event, body, contentType: Self.form)
        let fromJSON = EventDigestTests.digest(.github, event, json)

        #expect(Self.withoutFooter(fromForm) == Self.withoutFooter(fromJSON))
        #expect(fromForm.hasSuffix("\n" + EventDigestTests.footer(body.count)), "the footer gives the body as sent: \(fromForm)")
    }

    @Test func theFormContentTypeIsMatchedWhateverItsCaseAndParameters() throws {
        let json = try DigestFixtures.github("issues")
        let body = DigestFixtures.githubForm(json)

        let digest = EventDigestTests.digest(.github, "issues", body, contentType: "Application/X-WWW-Form-URLEncoded; charset=utf-8")

        #expect(Self.withoutFooter(digest) == Self.withoutFooter(EventDigestTests.digest(.github, "issues", json)))
    }

    @Test func thePayloadFieldIsFoundAmongOthersAndPlusIsASpace() throws {
        let body = Array("other=1&payload=%7B%22action%22%3A%22opened+now%22%2C%22zen%22%3A%22caf%C3%A9%22%7D&x".utf8)

        let digest = EventDigestTests.digest(.github, "ping", body, contentType: Self.form)

        #expect(digest.hasPrefix("GitHub event: ping, action: opened now\n"), "\(digest)")
        let fields = try #require(FormURLEncoded.fields(in: body))
        #expect(FormURLEncoded.value(of: "payload", in: fields) == Array(#"{"action":"opened now","zen":"café"}"#.utf8))
        #expect(FormURLEncoded.value(of: "other", in: fields) == Array("1".utf8))
        #expect(FormURLEncoded.value(of: "x", in: fields) == [])
        #expect(FormURLEncoded.value(of: "missing", in: fields) == nil)
    }

    @Test func anInvalidEncodingOrAPayloadThatIsNotJSONIsDigestedAsTheTextSent() {
        for text in ["payload=%7B%22action%22%3A%ZZ%7D", "payload=%7B%2", "payload=not+json", "payload=", "zen=%7B%7D"] {
            let digest = EventDigestTests.digest(.github, "push", Array(text.utf8), contentType: Self.form)

            #expect(digest == "GitHub event: push\nBody: not JSON\nText: \(text)\n" + EventDigestTests.footer(text.utf8.count))
        }
    }

    @Test func aFormBodyIsReadAsJSONOnlyForGitHubSourcesAndTheFormContentType() throws {
        let body = DigestFixtures.githubForm(Array(#"{"action":"opened","type":"x"}"#.utf8))
        let text = String(decoding: body, as: UTF8.self)

        let stripe = EventDigestTests.digest(.stripe, "x", body, contentType: Self.form)
        let asJSON = EventDigestTests.digest(.github, "push", body, contentType: "application/json")

        #expect(stripe == "Stripe event: x\nBody: not JSON\nText: \(text)\n" + EventDigestTests.footer(body.count))
        #expect(asJSON == "GitHub event: push\nBody: not JSON\nText: \(text)\n" + EventDigestTests.footer(body.count))
    }

    @Test func aFormBodyInFullModeIsDeliveredAsSent() throws {
        let body = DigestFixtures.githubForm(try DigestFixtures.github("issues"))
        let record = EventRecord(
            id: "evt_0123456789abcdef0123456789abcdef", sourceID: "src_a", sourceName: "gh", deliveryID: "d-1",
            type: "issues", receivedAt: 1_800_000_000, contentType: Self.form, headers: [:], body: body, replayKeys: [])

        let full = EventNotification.channelEvent(for: record, replay: false, contentMode: .full, scheme: .github)
        let auto = EventNotification.channelEvent(for: record, replay: false, contentMode: .auto, scheme: .github)

        #expect(full.contentUTF8 == Array(body.prefix(ChannelEvent.maxContentBytes)))
        #expect(auto.content.hasPrefix("GitHub event: issues, action: opened\n"), "\(auto.content)")
        #expect(auto.meta.first { $0.key == "body_bytes" }?.value == String(body.count))
    }
}
