import Foundation

/// How a sender signs its requests (SPEC section 6). Keys are the bytes of the whole secret
/// string, `whsec_` prefix included, except for Standard Webhooks, whose key is the base64
/// after the prefix.
public enum SignatureScheme: String, Sendable, CaseIterable {
    /// The seed's headers: `X-Source-Id`, `X-Timestamp`, `X-Signature: v1=…` and/or `sha256=…`.
    case webhook
    case github
    case stripe
    case standard
    case slack

    /// Timestamps further than this from our clock are refused (replay window).
    public static let tolerance: Int64 = 300
}

/// What a verifier sees of a request.
public struct SignatureInput {
    public let headerLookup: (String) -> String?
    public let body: UnsafeRawBufferPointer
    public let now: Int64

    public init(headerLookup: @escaping (String) -> String?, body: UnsafeRawBufferPointer, now: Int64) {
        self.headerLookup = headerLookup
        self.body = body
        self.now = now
    }
}

public struct SignatureDetails: Sendable, Equatable {
    public var usedPreviousSecret = false
    /// For the seed's `sha256=` form, which does not cover the timestamp: the signature itself,
    /// so the caller can refuse a replay of it.
    public var seedSignature: String?
    public var timestamp: Int64?
}

/// Why a signature failed. Internal detail: the HTTP answer is the same for all.
public enum SignatureFailure: Error, Sendable, Equatable {
    case missingHeader(String)
    case malformedHeader(String)
    case staleTimestamp
    case mismatch
}

public enum SignatureVerdict: Sendable, Equatable {
    case valid(SignatureDetails)
    case invalid(SignatureFailure)
}

extension SignatureScheme {
    public static func verify(scheme: SignatureScheme, secrets: [String], input: SignatureInput) -> SignatureVerdict {
        var lastFailure = SignatureFailure.mismatch
        for (index, secret) in secrets.enumerated() {
            switch scheme.verify(secret: secret, input: input) {
            case .success(var details):
                details.usedPreviousSecret = index > 0
                return .valid(details)
            case .failure(let failure):
                // A missing or stale header fails the same way for every secret.
                if failure != .mismatch { return .invalid(failure) }
                lastFailure = failure
            }
        }
        return .invalid(lastFailure)
    }

    private func verify(secret: String, input: SignatureInput) -> Result<SignatureDetails, SignatureFailure> {
        let key = Array(secret.utf8)
        switch self {
        case .webhook:
            guard let timestampText = input.headerLookup("X-Timestamp") else { return .failure(.missingHeader("X-Timestamp")) }
            guard let header = input.headerLookup("X-Signature") else { return .failure(.missingHeader("X-Signature")) }
            let timestamp: Int64
            switch Self.checkTimestamp(timestampText, now: input.now, header: "X-Timestamp") {
            case .success(let value): timestamp = value
            case .failure(let failure): return .failure(failure)
            }
            let items = Self.items(header, separator: ",")
            // The replay-safe form first: it covers the timestamp.
            for (name, value) in items where name == "v1" {
                if Self.matchesHex(value, Self.mac(key, [Array(timestampText.utf8), [0x2E]], input.body)) {
                    return .success(SignatureDetails(timestamp: timestamp))
                }
            }
            for (name, value) in items where name == "sha256" {
                if Self.matchesHex(value, Self.mac(key, [], input.body)) {
                    return .success(SignatureDetails(seedSignature: value.lowercased(), timestamp: timestamp))
                }
            }
            return .failure(items.isEmpty ? .malformedHeader("X-Signature") : .mismatch)

        case .github:
            guard let header = input.headerLookup("X-Hub-Signature-256") else { return .failure(.missingHeader("X-Hub-Signature-256")) }
            guard header.hasPrefix("sha256=") else { return .failure(.malformedHeader("X-Hub-Signature-256")) }
            return Self.matchesHex(header.dropFirst(7), Self.mac(key, [], input.body)) ? .success(SignatureDetails()) : .failure(.mismatch)

        case .stripe:
            guard let header = input.headerLookup("Stripe-Signature") else { return .failure(.missingHeader("Stripe-Signature")) }
            let items = Self.items(header, separator: ",")
            guard let timestampText = items.first(where: { $0.0 == "t" })?.1 else { return .failure(.malformedHeader("Stripe-Signature")) }
            let timestamp: Int64
            switch Self.checkTimestamp(timestampText, now: input.now, header: "Stripe-Signature") {
            case .success(let value): timestamp = value
            case .failure(let failure): return .failure(failure)
            }
            let expected = Self.mac(key, [Array(timestampText.utf8), [0x2E]], input.body)
            for (name, value) in items where name == "v1" && Self.matchesHex(value, expected) {
                return .success(SignatureDetails(timestamp: timestamp))
            }
            return .failure(.mismatch)

        case .standard:
            guard let id = input.headerLookup("webhook-id") else { return .failure(.missingHeader("webhook-id")) }
            guard let timestampText = input.headerLookup("webhook-timestamp") else { return .failure(.missingHeader("webhook-timestamp")) }
            guard let header = input.headerLookup("webhook-signature") else { return .failure(.missingHeader("webhook-signature")) }
            let timestamp: Int64
            switch Self.checkTimestamp(timestampText, now: input.now, header: "webhook-timestamp") {
            case .success(let value): timestamp = value
            case .failure(let failure): return .failure(failure)
            }
            let expected = Self.mac(Self.standardKey(secret), [Array("\(id).\(timestampText).".utf8)], input.body)
            for entry in header.split(separator: " ") {
                let pieces = entry.split(separator: ",", maxSplits: 1)
                guard pieces.count == 2, pieces[0] == "v1", let given = Base64.decode(pieces[1]) else { continue }
                if ConstantTime.equals(given, expected) { return .success(SignatureDetails(timestamp: timestamp)) }
            }
            return .failure(.mismatch)

        case .slack:
            guard let timestampText = input.headerLookup("X-Slack-Request-Timestamp") else {
                return .failure(.missingHeader("X-Slack-Request-Timestamp"))
            }
            guard let header = input.headerLookup("X-Slack-Signature") else { return .failure(.missingHeader("X-Slack-Signature")) }
            let timestamp: Int64
            switch Self.checkTimestamp(timestampText, now: input.now, header: "X-Slack-Request-Timestamp") {
            case .success(let value): timestamp = value
            case .failure(let failure): return .failure(failure)
            }
            guard header.hasPrefix("v0=") else { return .failure(.malformedHeader("X-Slack-Signature")) }
            let expected = Self.mac(key, [Array("v0:\(timestampText):".utf8)], input.body)
            return Self.matchesHex(header.dropFirst(3), expected) ? .success(SignatureDetails(timestamp: timestamp)) : .failure(.mismatch)
        }
    }

    /// The headers a sender of this scheme sends, signed with `secret`. The one signer used by
    /// replies and by the CLI's `send` and `sign`.
    public static func signingHeaders(scheme: SignatureScheme, secret: String, body: [UInt8], timestamp: Int64,
                                      deliveryID: String) -> [(String, String)]
    {
        let key = Array(secret.utf8)
        let ts = String(timestamp)
        return body.withUnsafeBytes { raw -> [(String, String)] in
            switch scheme {
            case .webhook:
                let v1 = Hex.encode(mac(key, [Array(ts.utf8), [0x2E]], raw))
                let sha256 = Hex.encode(mac(key, [], raw))
                return [("X-Timestamp", ts), ("X-Webhook-Id", deliveryID), ("X-Signature", "v1=\(v1),sha256=\(sha256)")]
            case .github:
                return [("X-GitHub-Delivery", deliveryID), ("X-Hub-Signature-256", "sha256=" + Hex.encode(mac(key, [], raw)))]
            case .stripe:
                return [("Stripe-Signature", "t=\(ts),v1=" + Hex.encode(mac(key, [Array(ts.utf8), [0x2E]], raw)))]
            case .standard:
                let signature = Base64.encode(mac(standardKey(secret), [Array("\(deliveryID).\(ts).".utf8)], raw))
                return [("webhook-id", deliveryID), ("webhook-timestamp", ts), ("webhook-signature", "v1,\(signature)")]
            case .slack:
                return [("X-Slack-Request-Timestamp", ts),
                        ("X-Slack-Signature", "v0=" + Hex.encode(mac(key, [Array("v0:\(ts):".utf8)], raw)))]
            }
        }
    }

    // MARK: Helpers

    /// Standard Webhooks: the key is the base64 after `whsec_` (raw bytes if it is not base64).
    static func standardKey(_ secret: String) -> [UInt8] {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
        return Base64.decode(encoded) ?? Array(encoded.utf8)
    }

    private static func mac(_ key: [UInt8], _ prefixes: [[UInt8]], _ body: UnsafeRawBufferPointer) -> [UInt8] {
        key.withUnsafeBytes { k in
            HMACSHA256.withBuffers(prefixes) { parts in HMACSHA256.mac(key: k, parts: parts + [body]) }
        }
    }

    private static func matchesHex<S: StringProtocol>(_ hex: S, _ expected: [UInt8]) -> Bool {
        guard let given = Hex.decode(hex.trimmingCharacters(in: .whitespaces)) else { return false }
        return ConstantTime.equals(given, expected)
    }

    /// `name=value` items of a signature header (`t=…,v1=…`), whitespace trimmed.
    private static func items(_ header: String, separator: Character) -> [(String, String)] {
        header.split(separator: separator).compactMap { item in
            let pieces = item.split(separator: "=", maxSplits: 1)
            guard pieces.count == 2 else { return nil }
            return (pieces[0].trimmingCharacters(in: .whitespaces), pieces[1].trimmingCharacters(in: .whitespaces))
        }
    }

    private static func checkTimestamp(_ text: String, now: Int64, header: String) -> Result<Int64, SignatureFailure> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 12, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(trimmed) else {
            return .failure(.malformedHeader(header))
        }
        guard abs(value - now) <= tolerance else { return .failure(.staleTimestamp) }
        return .success(value)
    }
}
