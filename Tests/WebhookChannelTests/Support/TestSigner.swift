import COpenSSL
import Foundation

/// Signatures computed independently of the product: libcrypto's one-shot `HMAC()` called
/// directly, nothing shared with the product's signer. Keys are the bytes of the whole
/// secret string, `whsec_` prefix included (seed compatibility, SPEC section 6).
enum TestSigner {
    /// Lowercase hex of HMAC-SHA256(key, message).
    static func hmacSHA256Hex(key: String, message: Data) -> String {
        let keyBytes = Array(key.utf8)
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = message.withUnsafeBytes { messageBuffer in
            keyBytes.withUnsafeBytes { keyBuffer in
                HMAC(EVP_sha256(),
                     keyBuffer.baseAddress, Int32(keyBuffer.count),
                     messageBuffer.bindMemory(to: UInt8.self).baseAddress, messageBuffer.count,
                     &digest, &length)
            }
        }
        precondition(ok != nil && length == 32, "libcrypto HMAC failed")
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// The seed's scheme: `sha256=<hex HMAC(secret, body)>`.
    static func seedSignature(secret: String, body: Data) -> String {
        "sha256=" + hmacSHA256Hex(key: secret, message: body)
    }

    /// The replay-safe scheme: `v1=<hex HMAC(secret, "<timestamp>.<body>")>`.
    static func v1Signature(secret: String, timestamp: String, body: Data) -> String {
        var message = Data("\(timestamp).".utf8)
        message.append(body)
        return "v1=" + hmacSHA256Hex(key: secret, message: message)
    }
}
