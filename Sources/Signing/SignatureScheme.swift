/// How a sender signs its webhooks (README "Real senders"). The raw value is what `sources.json`
/// and the CLI's `--scheme` use.
public enum SignatureScheme: String, Sendable, CaseIterable {
    /// The seed's own scheme on `POST /webhook`: `X-Timestamp` + `X-Signature` holding
    /// `v1=<hex HMAC("<ts>.<body>")>` and/or the older `sha256=<hex HMAC(body)>`.
    case webhook
    /// `X-Hub-Signature-256: sha256=<hex HMAC(body)>`.
    case github
    /// `Stripe-Signature: t=<ts>,v1=<hex HMAC("<ts>.<body>")>`.
    case stripe
    /// Standard Webhooks / Svix: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature: v1,<base64 HMAC("<id>.<ts>.<body>")>` (or the same three named
    /// `svix-id`, `svix-timestamp`, `svix-signature`, as Svix-branded senders name them).
    case standard
    /// `X-Slack-Signature: v0=<hex HMAC("v0:<ts>:<body>")>`, `X-Slack-Request-Timestamp`.
    case slack

    /// How far a signed timestamp may be from the receiver's clock, either way, in seconds.
    /// Five minutes, as the seed and the providers use: wide enough for clock skew and
    /// retries in flight, narrow enough that a captured request cannot be replayed later.
    public static let timestampTolerance: Int64 = 300
}

/// What a signature check looks at. Nothing else (no clock, no state) goes into a verdict.
public struct SignatureInput {
    /// Case-insensitive request header lookup; nil when the header is absent.
    public var headerLookup: (String) -> String?
    public var body: [UInt8]
    /// The receiver's clock, Unix seconds.
    public var now: Int64

    public init(headerLookup: @escaping (String) -> String?, body: [UInt8], now: Int64) {
        self.headerLookup = headerLookup
        self.body = body
        self.now = now
    }
}

public enum SignatureVerdict: Equatable, Sendable {
    case valid(SignatureDetails)
    case invalid(SignatureFailure)
}

public struct SignatureDetails: Equatable, Sendable {
    /// The match used the previous secret (still in its grace period after a rotation).
    public var usedPreviousSecret: Bool
    /// For the `webhook` scheme's `sha256=` form only: the lowercase hex signature. That form
    /// does not cover the timestamp, so the caller remembers the signature to refuse a replay.
    public var seedSignature: String?
    /// A valid `sha256=` signature that came along with the `v1=` one this request was
    /// accepted by. Not asked about (the `v1=` part proves the request fresh), but remembered:
    /// otherwise whoever captured the request could strip the `v1=` part, put a fresh
    /// timestamp on, and have the `sha256=` part accepted as a new event.
    public var accompanyingSeedSignature: String?
    /// The signed (or, for the seed's `sha256=` form, accompanying) timestamp.
    public var timestamp: Int64?

    public init(usedPreviousSecret: Bool, seedSignature: String? = nil, timestamp: Int64?) {
        self.usedPreviousSecret = usedPreviousSecret
        self.seedSignature = seedSignature
        self.timestamp = timestamp
    }
}

/// Why a signature was refused. For logs and tests only: the HTTP answer is the same `401`
/// for every case, so a prober learns nothing about which part was wrong.
public enum SignatureFailure: Equatable, Sendable {
    case missingHeader(String)
    case malformedHeader(String)
    case staleTimestamp
    case mismatch
}

// MARK: - Verifying

extension SignatureScheme {
    /// Checks a request's signature. `secrets` holds the current secret first, then a previous
    /// one still inside its rotation grace period; any of them may match.
    ///
    /// Keys are the UTF-8 bytes of the whole secret string, `whsec_` prefix included (seed
    /// compatibility), except for `standard`, whose key is the base64 decoding of the secret.
    public static func verify(scheme: SignatureScheme, secrets: [String], input: SignatureInput) -> SignatureVerdict {
        switch scheme {
        case .webhook: return verifySeed(secrets: secrets, input: input)
        case .github: return verifyGitHub(secrets: secrets, input: input)
        case .stripe: return verifyStripe(secrets: secrets, input: input)
        case .standard: return verifyStandard(secrets: secrets, input: input)
        case .slack: return verifySlack(secrets: secrets, input: input)
        }
    }

    private static func verifySeed(secrets: [String], input: SignatureInput) -> SignatureVerdict {
        let timestampName = "X-Timestamp", signatureName = "X-Signature"
        guard let timestampText = header(timestampName, in: input) else { return .invalid(.missingHeader(timestampName)) }
        guard let signatureText = header(signatureName, in: input) else { return .invalid(.missingHeader(signatureName)) }
        guard let timestamp = parseTimestamp(timestampText) else { return .invalid(.malformedHeader(timestampName)) }
        if let verdict = verifySingleV1(secrets: secrets, input: input, signature: signatureText,
                                        timestampText: timestampText, timestamp: timestamp)
        {
            return verdict
        }

        // Several comma-separated items let a sender offer both forms at once (README "Real senders").
        var v1: [[UInt8]?] = [], sha256: [[UInt8]?] = []
        for item in items(of: signatureText, separatedBy: ",") {
            guard case let (name, value)? = keyValue(item, separator: "=") else { continue }
            switch name {
            case "v1": v1.append(Hex.decode(value))
            case "sha256": sha256.append(Hex.decode(value))
            default: continue
            }
        }
        guard !v1.isEmpty || !sha256.isEmpty else { return .invalid(.malformedHeader(signatureName)) }
        guard isFresh(timestamp, now: input.now) else { return .invalid(.staleTimestamp) }

        let keys = secrets.map { signingKey(.webhook, secret: $0) }
        // v1 first: it covers the timestamp, so a match there needs no signature memory.
        if !v1.isEmpty {
            let prefix = signedPrefix(.webhook, timestamp: timestampText, id: "")
            if let match = firstMatch(keys: keys, candidates: v1, mac: { HMACSHA256.mac(key: $0, message: prefix, input.body) }) {
                var details = SignatureDetails(usedPreviousSecret: match.keyIndex > 0, timestamp: timestamp)
                if !sha256.isEmpty,
                   let seed = firstMatch(keys: [keys[match.keyIndex]], candidates: sha256, mac: { HMACSHA256.mac(key: $0, message: input.body) })
                {
                    details.accompanyingSeedSignature = Hex.encode(seed.signature)
                }
                return .valid(details)
            }
        }
        if !sha256.isEmpty {
            if let match = firstMatch(keys: keys, candidates: sha256, mac: { HMACSHA256.mac(key: $0, message: input.body) }) {
                return .valid(SignatureDetails(
                    usedPreviousSecret: match.keyIndex > 0,
                    seedSignature: Hex.encode(match.signature),
                    timestamp: timestamp))
            }
        }
        return .invalid(.mismatch)
    }

    /// The form nearly every request has, `X-Signature: v1=<64 hex digits>` and nothing else,
    /// checked without building a list of items or an array per step (the signature on the
    /// stack, the tag into a stack buffer, the key read in place); the answer is the general
    /// path's. Nil for anything else, which the general path takes.
    private static func verifySingleV1(secrets: [String], input: SignatureInput, signature: String,
                                       timestampText: String, timestamp: Int64) -> SignatureVerdict?
    {
        var signature = signature
        var timestampText = timestampText
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * HMACSHA256.byteCount) { buffers in
            let offered = UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffers[0..<HMACSHA256.byteCount]))
            let computed = UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffers[HMACSHA256.byteCount...]))
            let wellFormed = signature.withUTF8 { text -> Bool in
                guard text.count == 3 + 2 * HMACSHA256.byteCount, text[0] == UInt8(ascii: "v"), text[1] == UInt8(ascii: "1"),
                      text[2] == UInt8(ascii: "=")
                else { return false }
                return Hex.decode(utf8: UnsafeBufferPointer(rebasing: text[3...]), into: offered)
            }
            guard wellFormed else { return nil }
            guard isFresh(timestamp, now: input.now) else { return .invalid(.staleTimestamp) }
            return timestampText.withUTF8 { stamp -> SignatureVerdict in
                // The signed prefix `<ts>.`: the digits (at most 18) and a dot, on the stack.
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: stamp.count + 1) { prefix in
                    _ = prefix.initialize(from: stamp)
                    prefix[stamp.count] = UInt8(ascii: ".")
                    return input.body.withUnsafeBytes { body in
                        for (index, secret) in secrets.enumerated() {
                            var secret = secret
                            secret.withUTF8 { key in
                                HMACSHA256.mac(key: UnsafeRawBufferPointer(key), prefix: UnsafeRawBufferPointer(prefix),
                                               body: body, into: computed)
                            }
                            if ConstantTime.equals(UnsafeRawBufferPointer(computed), UnsafeRawBufferPointer(offered)) {
                                return .valid(SignatureDetails(usedPreviousSecret: index > 0, timestamp: timestamp))
                            }
                        }
                        return .invalid(.mismatch)
                    }
                }
            }
        }
    }

    private static func verifyGitHub(secrets: [String], input: SignatureInput) -> SignatureVerdict {
        let signatureName = "X-Hub-Signature-256"
        guard let signatureText = header(signatureName, in: input) else { return .invalid(.missingHeader(signatureName)) }
        guard case let (name, value)? = keyValue(Substring(signatureText), separator: "="), name == "sha256" else {
            return .invalid(.malformedHeader(signatureName))
        }
        let keys = secrets.map { signingKey(.github, secret: $0) }
        guard let match = firstMatch(keys: keys, candidates: [Hex.decode(value)], mac: { HMACSHA256.mac(key: $0, message: input.body) }) else {
            return .invalid(.mismatch)
        }
        return .valid(SignatureDetails(usedPreviousSecret: match.keyIndex > 0, timestamp: nil))
    }

    private static func verifyStripe(secrets: [String], input: SignatureInput) -> SignatureVerdict {
        let signatureName = "Stripe-Signature"
        guard let signatureText = header(signatureName, in: input) else { return .invalid(.missingHeader(signatureName)) }
        var timestampText: Substring?
        var v1: [[UInt8]?] = []
        for item in items(of: signatureText, separatedBy: ",") {
            guard case let (name, value)? = keyValue(item, separator: "=") else { continue }
            switch name {
            case "t": if timestampText == nil { timestampText = value }
            case "v1": v1.append(Hex.decode(value))
            default: continue  // v0 is Stripe's test-mode scheme; never accept it.
            }
        }
        guard let timestampText, let timestamp = parseTimestamp(timestampText), !v1.isEmpty else {
            return .invalid(.malformedHeader(signatureName))
        }
        guard isFresh(timestamp, now: input.now) else { return .invalid(.staleTimestamp) }

        let keys = secrets.map { signingKey(.stripe, secret: $0) }
        let prefix = signedPrefix(.stripe, timestamp: timestampText, id: "")
        guard let match = firstMatch(keys: keys, candidates: v1, mac: { HMACSHA256.mac(key: $0, message: prefix, input.body) }) else {
            return .invalid(.mismatch)
        }
        return .valid(SignatureDetails(usedPreviousSecret: match.keyIndex > 0, timestamp: timestamp))
    }

    private static func verifyStandard(secrets: [String], input: SignatureInput) -> SignatureVerdict {
        // Svix-branded senders (Svix itself, Clerk, Resend) send the same three headers named
        // `svix-*`; the svix library reads those first and falls back to `webhook-*`. Here the
        // standard names win, and the `svix-*` set is read when there is no `webhook-id`.
        let svix = input.headerLookup("webhook-id") == nil && input.headerLookup("svix-id") != nil
        let idName = svix ? "svix-id" : "webhook-id"
        let timestampName = svix ? "svix-timestamp" : "webhook-timestamp"
        let signatureName = svix ? "svix-signature" : "webhook-signature"
        guard let id = header(idName, in: input) else { return .invalid(.missingHeader(idName)) }
        guard let timestampText = header(timestampName, in: input) else { return .invalid(.missingHeader(timestampName)) }
        guard let signatureText = header(signatureName, in: input) else { return .invalid(.missingHeader(signatureName)) }
        guard let timestamp = parseTimestamp(timestampText) else { return .invalid(.malformedHeader(timestampName)) }

        var v1: [[UInt8]?] = []
        for item in items(of: signatureText, separatedBy: " ") {
            // Other versions (such as the asymmetric `v1a`) are not ours to check.
            guard case let (version, value)? = keyValue(item, separator: ","), version == "v1" else { continue }
            v1.append(Base64.decode(value))
        }
        guard !v1.isEmpty else { return .invalid(.malformedHeader(signatureName)) }
        guard isFresh(timestamp, now: input.now) else { return .invalid(.staleTimestamp) }

        let keys = secrets.map { signingKey(.standard, secret: $0) }
        let prefix = signedPrefix(.standard, timestamp: timestampText, id: id)
        guard let match = firstMatch(keys: keys, candidates: v1, mac: { HMACSHA256.mac(key: $0, message: prefix, input.body) }) else {
            return .invalid(.mismatch)
        }
        return .valid(SignatureDetails(usedPreviousSecret: match.keyIndex > 0, timestamp: timestamp))
    }

    private static func verifySlack(secrets: [String], input: SignatureInput) -> SignatureVerdict {
        let timestampName = "X-Slack-Request-Timestamp", signatureName = "X-Slack-Signature"
        guard let timestampText = header(timestampName, in: input) else { return .invalid(.missingHeader(timestampName)) }
        guard let signatureText = header(signatureName, in: input) else { return .invalid(.missingHeader(signatureName)) }
        guard let timestamp = parseTimestamp(timestampText) else { return .invalid(.malformedHeader(timestampName)) }
        guard case let (version, value)? = keyValue(Substring(signatureText), separator: "="), version == "v0" else {
            return .invalid(.malformedHeader(signatureName))
        }
        guard isFresh(timestamp, now: input.now) else { return .invalid(.staleTimestamp) }

        let keys = secrets.map { signingKey(.slack, secret: $0) }
        let prefix = signedPrefix(.slack, timestamp: timestampText, id: "")
        guard let match = firstMatch(keys: keys, candidates: [Hex.decode(value)], mac: { HMACSHA256.mac(key: $0, message: prefix, input.body) }) else {
            return .invalid(.mismatch)
        }
        return .valid(SignatureDetails(usedPreviousSecret: match.keyIndex > 0, timestamp: timestamp))
    }

    /// The first key (in order: current, then previous) whose MAC equals one of the offered
    /// signatures. A candidate that failed to decode (nil) never matches.
    private static func firstMatch(
        keys: [[UInt8]],
        candidates: [[UInt8]?],
        mac: ([UInt8]) -> [UInt8]
    ) -> (keyIndex: Int, signature: [UInt8])? {
        for (index, key) in keys.enumerated() {
            let expected = mac(key)
            for case let candidate? in candidates where ConstantTime.equals(expected, candidate) {
                return (index, candidate)
            }
        }
        return nil
    }

    /// Header value without surrounding whitespace; nil when absent or empty.
    private static func header(_ name: String, in input: SignatureInput) -> String? {
        guard let raw = input.headerLookup(name) else { return nil }
        // The HTTP parser hands values over trimmed: then the value is used as it is, not
        // copied into a new string (a signature is 67 bytes, past the inline size).
        if let first = raw.utf8.first, let last = raw.utf8.last, !isBlank(first), !isBlank(last) { return raw }
        let value = trimmed(Substring(raw))
        return value.isEmpty ? nil : String(value)
    }

    /// Unix seconds: 1 to 18 ASCII digits (no sign, no space), so it cannot overflow Int64.
    private static func parseTimestamp(_ text: some StringProtocol) -> Int64? {
        let utf8 = text.utf8
        guard (1...18).contains(utf8.count) else { return nil }
        var value: Int64 = 0
        for character in utf8 {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(character) else { return nil }
            value = value * 10 + Int64(character - UInt8(ascii: "0"))
        }
        return value
    }

    private static func isFresh(_ timestamp: Int64, now: Int64) -> Bool {
        let (difference, overflow) = now.subtractingReportingOverflow(timestamp)
        return !overflow && difference >= -timestampTolerance && difference <= timestampTolerance
    }

    /// The non-empty items of a header list. Splits on UTF-8 bytes: headers are ASCII, and
    /// this avoids grapheme breaking on the per-request path.
    private static func items(of text: String, separatedBy separator: Unicode.Scalar) -> [Substring] {
        let mark = UInt8(ascii: separator)
        // Nearly every signature header is one item: found in its contiguous bytes, without
        // walking `Substring` views (which cost tens of instructions a byte).
        var contiguous = text
        if !contiguous.withUTF8({ $0.contains(mark) }) { return text.isEmpty ? [] : [Substring(text)] }
        let utf8 = text.utf8
        var items: [Substring] = []
        var start = utf8.startIndex
        while let end = utf8[start...].firstIndex(of: mark) {
            if start != end { items.append(Substring(utf8[start..<end])) }
            start = utf8.index(after: end)
        }
        if start != utf8.endIndex { items.append(Substring(utf8[start...])) }
        return items
    }

    /// Splits `name<separator>value` at the first separator, trimming whitespace around the
    /// item; nil when there is no separator.
    private static func keyValue(_ item: Substring, separator: Unicode.Scalar) -> (Substring, Substring)? {
        let bytes = trimmed(item).utf8
        guard let index = bytes.firstIndex(of: UInt8(ascii: separator)) else { return nil }
        return (Substring(bytes[..<index]), Substring(bytes[bytes.index(after: index)...]))
    }

    /// A space or a tab (HTTP's optional whitespace).
    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// `text` without leading and trailing spaces and tabs.
    private static func trimmed(_ text: Substring) -> Substring {
        let bytes = text.utf8
        guard let first = bytes.firstIndex(where: { !isBlank($0) }),
              let last = bytes.lastIndex(where: { !isBlank($0) }) else {
            return text[text.endIndex...]
        }
        return Substring(bytes[first...last])
    }

    /// The bytes signed ahead of the body — one definition, used to verify and to sign:
    /// `<ts>.` (the `v1=` form and Stripe), `<id>.<ts>.` (Standard Webhooks), `v0:<ts>:`
    /// (Slack); nothing for GitHub and the `sha256=` form, which sign the body alone.
    static func signedPrefix(_ scheme: SignatureScheme, timestamp: some StringProtocol, id: some StringProtocol)
        -> [UInt8]
    {
        switch scheme {
        case .webhook, .stripe: return Array("\(timestamp).".utf8)
        case .standard: return Array("\(id).\(timestamp).".utf8)
        case .slack: return Array("v0:\(timestamp):".utf8)
        case .github: return []
        }
    }

    /// The HMAC key for a secret: the bytes of the whole string (`whsec_` included, as the
    /// seed did), except for Standard Webhooks (`standardKey`).
    static func signingKey(_ scheme: SignatureScheme, secret: String) -> [UInt8] {
        scheme == .standard ? standardKey(secret) : Array(secret.utf8)
    }

    /// Standard Webhooks keys are the base64 decoding of the secret after `whsec_` (or of the
    /// whole secret without that prefix). A secret that is not base64 (typed by hand) falls
    /// back to its raw bytes. The signer derives its key here too, so both sides agree; our own
    /// generated `whsec_<hex>` secrets are valid base64 and decode like any other.
    static func standardKey(_ secret: String) -> [UInt8] {
        decodedStandardKey(secret) ?? Array(secret.utf8)
    }

    /// Whether a Standard Webhooks secret decodes as its senders decode it (base64 after
    /// `whsec_`). One that does not is still accepted (`standardKey` uses its raw bytes), but
    /// a sender's library refuses such a secret, so it was most likely pasted wrong.
    public static func isBase64StandardSecret(_ secret: String) -> Bool {
        decodedStandardKey(secret) != nil
    }

    /// The base64 decoding of the secret after `whsec_` (or of all of it); nil when it is
    /// empty or not base64.
    private static func decodedStandardKey(_ secret: String) -> [UInt8]? {
        let encoded = secret.hasPrefix("whsec_") ? secret.dropFirst("whsec_".count) : Substring(secret)
        return encoded.isEmpty ? nil : Base64.decode(encoded)
    }
}

// MARK: - Signing

extension SignatureScheme {
    /// The headers a sender using `scheme` attaches to `body`: the one signer behind both
    /// `webhook_reply` and the CLI's `send`/`sign`. Callers add `Content-Type`, `X-Source-Id`
    /// and any event-type header themselves.
    ///
    /// `deliveryID` goes into the scheme's own delivery header (`X-Webhook-Id`,
    /// `X-GitHub-Delivery`, `webhook-id`); Stripe and Slack have none, so they get
    /// `X-Webhook-Id`, which the receiver also reads as a delivery id.
    public static func signingHeaders(
        scheme: SignatureScheme,
        secret: String,
        body: [UInt8],
        timestamp: Int64,
        deliveryID: String
    ) -> [(String, String)] {
        let ts = String(timestamp)
        let signature = HMACSHA256.mac(key: signingKey(scheme, secret: secret),
                                       message: signedPrefix(scheme, timestamp: ts, id: deliveryID), body)
        switch scheme {
        case .webhook:
            let sha256 = HMACSHA256.mac(key: signingKey(scheme, secret: secret), message: body)
            return [
                ("X-Webhook-Id", deliveryID),
                ("X-Timestamp", ts),
                ("X-Signature", "v1=\(Hex.encode(signature)),sha256=\(Hex.encode(sha256))"),
            ]
        case .github:
            return [
                ("X-GitHub-Delivery", deliveryID),
                ("X-Hub-Signature-256", "sha256=\(Hex.encode(signature))"),
            ]
        case .stripe:
            return [
                ("X-Webhook-Id", deliveryID),
                ("Stripe-Signature", "t=\(ts),v1=\(Hex.encode(signature))"),
            ]
        case .standard:
            return [
                ("webhook-id", deliveryID),
                ("webhook-timestamp", ts),
                ("webhook-signature", "v1,\(Base64.encode(signature))"),
            ]
        case .slack:
            return [
                ("X-Webhook-Id", deliveryID),
                ("X-Slack-Request-Timestamp", ts),
                ("X-Slack-Signature", "v0=\(Hex.encode(signature))"),
            ]
        }
    }
}
