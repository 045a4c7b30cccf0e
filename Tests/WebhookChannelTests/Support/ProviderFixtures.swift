import Foundation
import Testing

/// The per-source schemes of `POST /webhook/{source_id}` (SPEC 6), with what a real sender of
/// each puts on the wire.
enum ProviderScheme: String, CaseIterable, Sendable, CustomStringConvertible {
    case github, stripe, standard, slack, webhook

    var description: String { rawValue }

    /// A secret in the provider's own format, piped into `add`.
    var sampleSecret: String {
        switch self {
        case .github: return "It's a Secret to Everybody"
        case .stripe: return "whsec_5WbX5kEWLlfzsGNjH64I8lOOqUB6e9FH"
        case .standard: return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        case .slack: return "8f742231b10e8888abcd99yyyzzz85a5"
        case .webhook: return "whsec_" + String(repeating: "0123456789abcdef", count: 4)
        }
    }

    /// Whether the scheme signs a timestamp (and so refuses a stale one).
    var hasTimestamp: Bool { self != .github }

    /// A realistic body. Stripe carries its delivery (event) id in the body.
    func sampleBody(deliveryID: String, marker: String = "m") -> Data {
        let text: String
        switch self {
        case .github:
            text = #"{"ref":"refs/heads/main","after":"\#(marker)","repository":{"full_name":"octo/hello"}}"#
        case .stripe:
            text = #"{"id":"\#(deliveryID)","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_\#(marker)","amount":2000}}}"#
        case .standard:
            text = #"{"type":"invoice.paid","timestamp":"2026-01-01T00:00:00Z","data":{"invoice":"\#(marker)"}}"#
        case .slack:
            text = #"{"token":"x","type":"event_callback","event_id":"Ev\#(marker)","event":{"type":"app_mention","text":"hello"}}"#
        case .webhook:
            text = #"{"event":"deploy","status":"success","marker":"\#(marker)"}"#
        }
        return Data(text.utf8)
    }

    /// The `event_type` meta the sample body and headers must produce.
    var expectedEventType: String {
        switch self {
        case .github: return "push"
        case .stripe: return "payment_intent.succeeded"
        case .standard: return "invoice.paid"
        case .slack: return "event_callback"
        case .webhook: return "deploy"
        }
    }

    /// The `delivery_id` meta expected for `deliveryID` (Slack sends none).
    func expectedDeliveryID(_ deliveryID: String) -> String? {
        self == .slack ? nil : deliveryID
    }

    /// A fresh delivery id in the provider's style.
    func makeDeliveryID() -> String {
        switch self {
        case .github: return UUID().uuidString.lowercased()
        case .stripe: return "evt_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(24)
        case .standard: return "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(24)
        case .slack: return "unused"
        case .webhook: return "deploy-" + UUID().uuidString.prefix(8)
        }
    }

    /// The headers a real sender attaches (signature, timestamp, ids, content type).
    func headers(
        secret: String, sourceID: String, body: Data, deliveryID: String,
        timestamp: Int = unixNow(), contentType: String = "application/json",
        githubEvent: String = "push"
    ) -> [(String, String)] {
        let ts = String(timestamp)
        switch self {
        case .github:
            return [("Content-Type", contentType), ("User-Agent", "GitHub-Hookshot/abc123"),
                    ("X-GitHub-Event", githubEvent), ("X-GitHub-Delivery", deliveryID),
                    ("X-GitHub-Hook-ID", "4242"),
                    ("X-Hub-Signature-256", ProviderSigner.github(secret: secret, body: body))]
        case .stripe:
            return [("Content-Type", contentType), ("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)"),
                    ("Stripe-Signature", ProviderSigner.stripe(secret: secret, timestamp: timestamp, body: body))]
        case .standard:
            return [("Content-Type", contentType), ("webhook-id", deliveryID), ("webhook-timestamp", ts),
                    ("webhook-signature", ProviderSigner.standard(secret: secret, id: deliveryID, timestamp: ts, body: body))]
        case .slack:
            return [("Content-Type", contentType), ("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)"),
                    ("X-Slack-Request-Timestamp", ts),
                    ("X-Slack-Signature", ProviderSigner.slack(secret: secret, timestamp: timestamp, body: body))]
        case .webhook:
            return [("Content-Type", contentType), ("X-Source-Id", sourceID), ("X-Timestamp", ts),
                    ("X-Webhook-Id", deliveryID),
                    ("X-Signature", ProviderSigner.webhookV1(secret: secret, timestamp: ts, body: body))]
        }
    }

    /// Requests that must all be refused with 401: a wrong signature, a stale timestamp
    /// (where the scheme signs one) and each missing header.
    func refusals(secret: String, sourceID: String, body: Data, deliveryID: String) -> [(label: String, headers: [(String, String)])] {
        let good = headers(secret: secret, sourceID: sourceID, body: body, deliveryID: deliveryID)
        let wrongSecret = self == .standard
            ? "whsec_" + ProviderCrypto.base64(Array("not the endpoint's key material".utf8))
            : secret + "-not-it"
        var cases: [(String, [(String, String)])] = [
            ("wrong secret", headers(secret: wrongSecret, sourceID: sourceID, body: body, deliveryID: deliveryID)),
            ("signature over another body", headers(secret: secret, sourceID: sourceID, body: body + Data(" ".utf8), deliveryID: deliveryID)),
        ]
        if hasTimestamp {
            cases.append(("timestamp 10 minutes old, correctly signed",
                          headers(secret: secret, sourceID: sourceID, body: body, deliveryID: deliveryID, timestamp: unixNow() - 600)))
            cases.append(("timestamp 10 minutes ahead, correctly signed",
                          headers(secret: secret, sourceID: sourceID, body: body, deliveryID: deliveryID, timestamp: unixNow() + 600)))
        }
        let required: [String] = switch self {
        case .github: ["X-Hub-Signature-256"]
        case .stripe: ["Stripe-Signature"]
        case .standard: ["webhook-id", "webhook-timestamp", "webhook-signature"]
        case .slack: ["X-Slack-Request-Timestamp", "X-Slack-Signature"]
        case .webhook: ["X-Timestamp", "X-Signature"]
        }
        for name in required {
            cases.append(("missing \(name)", good.filter { $0.0.caseInsensitiveCompare(name) != .orderedSame }))
        }
        return cases
    }
}

/// A source as `webhook-channel add` reported it.
struct AddedSource: Sendable {
    let name: String
    let scheme: ProviderScheme
    let sourceID: String
    let url: String
    let secret: String
    let output: CLIResult

    var path: String { "/webhook/\(sourceID)" }
}

enum ProviderFixtures {
    /// `webhook-channel add NAME --scheme S`, with `secret` piped on stdin (or nothing piped,
    /// so the CLI generates one and prints it). Fails unless it prints the id and the URL.
    static func add(
        _ name: String, scheme: ProviderScheme, secret: String?, stateDir: TempStateDir,
        extraArguments: [String] = []
    ) async throws -> AddedSource {
        let run = try await runCLI(["add", name, "--scheme", scheme.rawValue] + extraArguments,
                                   stateDir: stateDir, stdin: Data((secret ?? "").utf8))
        guard run.exitCode == 0 else { throw HarnessError("add \(name) --scheme \(scheme) failed: \(run)") }
        guard let idMatch = run.stdout.firstMatch(of: #/Source ID: (src_[0-9a-f]{32})/#) else {
            throw HarnessError("add printed no `Source ID: src_…`: \(run)")
        }
        guard let urlMatch = run.stdout.firstMatch(of: #/Webhook URL: (\S+)/#) else {
            throw HarnessError("add printed no `Webhook URL: …`: \(run)")
        }
        let printedSecret = run.stdout.firstMatch(of: #/Secret: (\S+)/#).map { String($0.output.1) }
        let effective: String
        if let secret {
            // As bytes: "\r\n" is one Character, which hasSuffix("\n") does not match.
            var trimmed = Array(secret.utf8)
            while let last = trimmed.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { trimmed.removeLast() }
            effective = String(decoding: trimmed, as: UTF8.self)
        } else {
            guard let printedSecret else { throw HarnessError("add without stdin printed no `Secret: …`: \(run)") }
            effective = printedSecret
        }
        return AddedSource(name: name, scheme: scheme, sourceID: String(idMatch.output.1), url: String(urlMatch.output.1),
                           secret: effective, output: run)
    }

    /// POSTs a correctly signed sample event of `source`'s scheme to its per-source URL.
    static func post(
        _ source: AddedSource, on http: RawHTTPClient, body: Data? = nil, deliveryID: String? = nil,
        secret: String? = nil, timestamp: Int = unixNow(), githubEvent: String = "push",
        contentType: String = "application/json"
    ) async throws -> (response: RawHTTPResponse, deliveryID: String, body: Data) {
        let id = deliveryID ?? source.scheme.makeDeliveryID()
        let data = body ?? source.scheme.sampleBody(deliveryID: id)
        let headers = source.scheme.headers(secret: secret ?? source.secret, sourceID: source.sourceID, body: data,
                                            deliveryID: id, timestamp: timestamp, contentType: contentType,
                                            githubEvent: githubEvent)
        let response = try await http.request("POST", source.path, headers: headers, body: data)
        return (response, id, data)
    }

    /// The whole `sources.json`.
    static func sourcesFile(_ dir: TempStateDir) throws -> JSON {
        try JSON.parse(dir.readSourcesFile())
    }

    /// Changes one source's entry in `sources.json` the way another process would: read,
    /// change, write a temp file, rename over it.
    static func editSource(_ dir: TempStateDir, id: String, _ change: (inout [String: JSON]) -> Void) throws {
        guard case .object(var file) = try sourcesFile(dir), case .object(var sources)? = file["sources"],
              case .object(var source)? = sources[id]
        else { throw HarnessError("sources.json has no source \(id): \(try dir.readSourcesFile())") }
        change(&source)
        sources[id] = .object(source)
        file["sources"] = .object(sources)
        try dir.writeSourcesFile(JSON.object(file).prettyPrinted() + "\n")
    }

    /// `2026-01-02T03:04:05.678Z`
    static func isoString(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func parseISO(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    /// The text of a tool result's `content` items.
    static func text(ofToolResult result: JSON) -> String {
        (result["content"]?.arrayValue ?? [])
            .filter { $0["type"] == "text" }
            .compactMap { $0["text"]?.stringValue }
            .joined(separator: "\n")
    }

    /// A JSON list a tool or `--json` printed: a bare array, or an object with `key` holding one.
    static func list(from text: String, key: String) throws -> [JSON] {
        let json = try JSON.parse(text)
        if let items = json.arrayValue { return items }
        if let items = json[key]?.arrayValue { return items }
        throw HarnessError("expected a JSON array (or {\"\(key)\": [...]}), got: \(text.prefix(800))")
    }
}

/// Fails the test unless `response` is a 200 acceptance `{"received":true,"event_id":"evt_…"}`;
/// returns the event id.
@discardableResult
func expectProviderAccepted(_ response: RawHTTPResponse, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    #expect(response.status == 200, "\(response)", sourceLocation: sourceLocation)
    let json = try? response.json()
    #expect(json?["received"] == true, "\(response)", sourceLocation: sourceLocation)
    #expect(json?["duplicate"] == nil, "a first delivery is not a duplicate: \(response)", sourceLocation: sourceLocation)
    let eventID = json?["event_id"]?.stringValue
    #expect(eventID?.hasPrefix("evt_") == true, "event_id: \(response)", sourceLocation: sourceLocation)
    return eventID
}
