import COpenSSL
import Foundation

/// Each provider's real signing algorithm, written out here from the providers' documentation
/// and computed with libcrypto's one-shot `HMAC()`: nothing is shared with the product's
/// signer (nor with `TestSigner`), and base64 and hex are done by hand.
enum ProviderCrypto {
    static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = key.withUnsafeBufferPointer { keyBuffer in
            message.withUnsafeBufferPointer { messageBuffer in
                HMAC(EVP_sha256(),
                     keyBuffer.baseAddress, Int32(keyBuffer.count),
                     messageBuffer.baseAddress, messageBuffer.count,
                     &digest, &length)
            }
        }
        precondition(ok != nil && length == 32, "libcrypto HMAC failed")
        return Array(digest.prefix(32))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var text = ""
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return text
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// RFC 4648 base64 with padding.
    static func base64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int(((b0 & 0x03) << 4) | (b1 >> 4))])
            out.append(index + 1 < bytes.count ? alphabet[Int(((b1 & 0x0f) << 2) | (b2 >> 6))] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? alphabet[Int(b2 & 0x3f)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 4648 base64 decoding (padding optional); nil on a character outside the alphabet.
    static func base64Decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        for character in text.utf8 where character != UInt8(ascii: "=") {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            values.append(UInt8(value))
        }
        var out: [UInt8] = []
        var index = 0
        while index + 1 < values.count {
            let v0 = values[index], v1 = values[index + 1]
            out.append((v0 << 2) | (v1 >> 4))
            if index + 2 < values.count {
                let v2 = values[index + 2]
                out.append(((v1 & 0x0f) << 4) | (v2 >> 2))
                if index + 3 < values.count {
                    out.append(((v2 & 0x03) << 6) | values[index + 3])
                }
            }
            index += 4
        }
        return out
    }
}

/// The signature header values as each provider computes them.
enum ProviderSigner {
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC(secret, body)>`.
    static func github(secret: String, body: Data) -> String {
        "sha256=" + ProviderCrypto.hex(ProviderCrypto.hmacSHA256(key: Array(secret.utf8), message: Array(body)))
    }

    /// Stripe: hex HMAC(secret, "<t>.<body>").
    static func stripeV1(secret: String, timestamp: String, body: Data) -> String {
        ProviderCrypto.hex(ProviderCrypto.hmacSHA256(key: Array(secret.utf8), message: Array("\(timestamp).".utf8) + Array(body)))
    }

    /// Stripe: `Stripe-Signature: t=<ts>,v1=<hex>`.
    static func stripe(secret: String, timestamp: Int, body: Data) -> String {
        "t=\(timestamp),v1=" + stripeV1(secret: secret, timestamp: String(timestamp), body: body)
    }

    /// Standard Webhooks: the key is the base64 decoding of the secret after `whsec_`.
    static func standardKey(secret: String) -> [UInt8] {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst("whsec_".count)) : secret
        guard let key = ProviderCrypto.base64Decode(encoded) else {
            preconditionFailure("a Standard Webhooks secret is base64 after whsec_: \(secret)")
        }
        return key
    }

    /// Standard Webhooks: `webhook-signature: v1,<base64 HMAC(key, "<id>.<ts>.<body>")>`.
    static func standard(secret: String, id: String, timestamp: String, body: Data) -> String {
        let mac = ProviderCrypto.hmacSHA256(key: standardKey(secret: secret), message: Array("\(id).\(timestamp).".utf8) + Array(body))
        return "v1," + ProviderCrypto.base64(mac)
    }

    /// Slack: `X-Slack-Signature: v0=<hex HMAC(secret, "v0:<ts>:<body>")>`.
    static func slack(secret: String, timestamp: Int, body: Data) -> String {
        "v0=" + ProviderCrypto.hex(ProviderCrypto.hmacSHA256(key: Array(secret.utf8), message: Array("v0:\(timestamp):".utf8) + Array(body)))
    }

    /// This product's own replay-safe scheme: `v1=<hex HMAC(secret, "<ts>.<body>")>`.
    static func webhookV1(secret: String, timestamp: String, body: Data) -> String {
        "v1=" + ProviderCrypto.hex(ProviderCrypto.hmacSHA256(key: Array(secret.utf8), message: Array("\(timestamp).".utf8) + Array(body)))
    }

    /// The seed's scheme: `sha256=<hex HMAC(secret, body)>`.
    static func webhookSeed(secret: String, body: Data) -> String {
        "sha256=" + ProviderCrypto.hex(ProviderCrypto.hmacSHA256(key: Array(secret.utf8), message: Array(body)))
    }
}
