import Foundation
import Testing
@testable import HTTP
@testable import Signing
@testable import WebhookChannel

/// The intake rules as a pure step: a request value and a source in, a judgement out — no
/// server, no sockets, no state.
struct WebhookIntakeTests {
    static let now: Double = 1_700_000_000
    static let secret = "whsec_5f2b1c0e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"
    static let seedSource = SourceRecord(id: "src_seed", name: "ci", hmacSecret: secret, callbackURL: "http://127.0.0.1:9/hook",
                                         pairedAt: "2026-11-30T00:00:00.000Z")
    static let slackSource = SourceRecord(id: "src_slack", name: "slack", hmacSecret: secret, callbackURL: nil,
                                          pairedAt: "2026-11-30T00:00:00.000Z", scheme: .slack)

    static func signed(_ body: String, source: SourceRecord = seedSource, scheme: SignatureScheme = .webhook,
                       extra: [(String, String)] = [], seedOnly: Bool = false, path: Bool = false) -> WebhookIntake.Request
    {
        var headers = SignatureScheme.signingHeaders(scheme: scheme, secret: source.hmacSecret, body: Array(body.utf8),
                                                     timestamp: Int64(now), deliveryID: "d-1")
        if seedOnly {
            headers = headers.map { name, value in
                name == "X-Signature" ? (name, String(value[value.range(of: "sha256=")!.lowerBound...])) : (name, value)
            }
        }
        headers += [("X-Source-Id", source.id), ("Content-Type", "application/json")] + extra
        return WebhookIntake.Request(pathSourceID: path ? source.id : nil, headers: HTTPHeaders(headers), body: Array(body.utf8))
    }

    static func judge(_ request: WebhookIntake.Request, sources: [SourceRecord] = [seedSource]) -> WebhookIntake.Judgement {
        WebhookIntake.judge(request, now: now) { id in sources.first { $0.id == id }.map { PairedSource($0) } }
    }

    @Test func aSignedJSONEventBecomesACandidateWithItsDeliveryIDTypeAndReplayKey() throws {
        guard case .candidate(let candidate) = Self.judge(Self.signed(#"{"type":"deploy"}"#)) else {
            Issue.record("not a candidate")
            return
        }
        #expect(candidate.source.record.id == "src_seed")
        #expect(candidate.deliveryID == "d-1")
        #expect(candidate.type == "deploy")
        #expect(candidate.replayKeys.contains("d:src_seed:d-1"))
        #expect(candidate.verdict == nil)
    }

    @Test func anUnknownSourceAWrongSecretAndAStaleTimestampAreAllUnauthorized() {
        let unknown = Self.judge(Self.signed(#"{}"#), sources: [])
        var wrongKey = Self.seedSource
        wrongKey.hmacSecret = "whsec_other"
        let wrong = Self.judge(Self.signed(#"{}"#, source: wrongKey))
        let stale = WebhookIntake.judge(Self.signed(#"{}"#), now: Self.now + 301) { _ in PairedSource(Self.seedSource) }
        for judgement in [unknown, wrong, stale] {
            guard case .unauthorized = judgement else {
                Issue.record("expected unauthorized, got \(judgement)")
                continue
            }
        }
    }

    @Test func aSignedBodyThatIsNotJSONOnTheSeedRouteIsInvalidJSON() {
        guard case .invalidJSON = Self.judge(Self.signed("not json")) else {
            Issue.record("expected invalidJSON")
            return
        }
    }

    @Test func slackUrlVerificationIsAChallengeNotAnEvent() {
        let request = Self.signed(#"{"type":"url_verification","challenge":"abc123"}"#, source: Self.slackSource,
                                  scheme: .slack, path: true)
        guard case .challenge(let challenge) = Self.judge(request, sources: [Self.slackSource]) else {
            Issue.record("expected a challenge")
            return
        }
        #expect(challenge == "abc123")
    }

    @Test func aV1SignedVerdictFromAnApproverIsAVerdictAndTheSameFromAnyoneElseIsAnEvent() {
        let body = #"{"type":"permission_verdict","request_id":"abcde","behavior":"allow"}"#
        var approver = Self.seedSource
        approver.approver = true
        guard case .candidate(let fromApprover) = Self.judge(Self.signed(body, source: approver), sources: [approver]) else {
            Issue.record("not a candidate")
            return
        }
        #expect(fromApprover.verdict?.requestID == "abcde" && fromApprover.verdict?.behavior == "allow")
        guard case .candidate(let fromOther) = Self.judge(Self.signed(body)) else {
            Issue.record("not a candidate")
            return
        }
        #expect(fromOther.verdict == nil)
    }

    @Test func aVerdictSignedWithSha256AloneIsUnauthorized() {
        var approver = Self.seedSource
        approver.approver = true
        let body = #"{"type":"permission_verdict","request_id":"abcde","behavior":"allow"}"#
        guard case .unauthorized = Self.judge(Self.signed(body, source: approver, seedOnly: true), sources: [approver]) else {
            Issue.record("a sha256=-only verdict was not refused")
            return
        }
    }

    @Test func aSha256SignatureIsRememberedAsADigestNeverAsItself() throws {
        guard case .candidate(let candidate) = Self.judge(Self.signed(#"{}"#, seedOnly: true)) else {
            Issue.record("not a candidate")
            return
        }
        let signatureKey = try #require(candidate.replayKeys.first { $0.hasPrefix("s:") })
        let signature = TestSigner.seedSignature(secret: Self.secret, body: Data("{}".utf8))
        #expect(!signatureKey.contains(String(signature.dropFirst("sha256=".count))))
        #expect(signatureKey.hasPrefix("s:src_seed:") && signatureKey.count == "s:src_seed:".count + 64)
    }
}
