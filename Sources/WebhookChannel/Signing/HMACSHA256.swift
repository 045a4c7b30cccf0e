import COpenSSL

/// HMAC-SHA256 from the system's libcrypto (OpenSSL 3 EVP_MAC). The message may come in parts
/// (`"<timestamp>"`, `"."`, body) so nothing is concatenated on the hot path.
public enum HMACSHA256 {
    public static let byteCount = 32

    /// Fetched once: fetching an algorithm is the expensive part of OpenSSL 3's EVP API, and
    /// a fetched EVP_MAC is immutable and safe to share between threads.
    nonisolated(unsafe) private static let algorithm: OpaquePointer = {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else {
            preconditionFailure("libcrypto has no HMAC implementation; is OpenSSL 3 installed?")
        }
        return mac
    }()

    public static func mac(key: UnsafeRawBufferPointer, parts: [UnsafeRawBufferPointer]) -> [UInt8] {
        guard let context = EVP_MAC_CTX_new(algorithm) else { preconditionFailure("EVP_MAC_CTX_new failed: out of memory") }
        defer { EVP_MAC_CTX_free(context) }
        var output = [UInt8](repeating: 0, count: byteCount)
        let ok: Bool = "digest".withCString { digestKey in
            "SHA256".withCString { digestName in
                var params = [
                    OSSL_PARAM_construct_utf8_string(digestKey, UnsafeMutablePointer(mutating: digestName), 0),
                    OSSL_PARAM_construct_end(),
                ]
                // An empty key is legal for HMAC; libcrypto wants a non-null pointer for it.
                var empty: UInt8 = 0
                let keyPointer = key.count > 0 ? key.baseAddress!.assumingMemoryBound(to: UInt8.self) : withUnsafeMutablePointer(to: &empty) { UnsafePointer($0) }
                guard EVP_MAC_init(context, keyPointer, key.count, &params) == 1 else { return false }
                for part in parts where part.count > 0 {
                    guard EVP_MAC_update(context, part.baseAddress!.assumingMemoryBound(to: UInt8.self), part.count) == 1 else {
                        return false
                    }
                }
                var length = 0
                return output.withUnsafeMutableBufferPointer { EVP_MAC_final(context, $0.baseAddress, &length, byteCount) } == 1
                    && length == byteCount
            }
        }
        precondition(ok, "libcrypto HMAC-SHA256 failed")
        return output
    }

    public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        key.withUnsafeBytes { k in message.withUnsafeBytes { m in mac(key: k, parts: [m]) } }
    }

    public static func mac(key: String, parts: [[UInt8]]) -> [UInt8] {
        let keyBytes = Array(key.utf8)
        return keyBytes.withUnsafeBytes { k in
            withBuffers(parts) { mac(key: k, parts: $0) }
        }
    }

    /// Gives stable pointers to several arrays at once.
    static func withBuffers<T>(_ arrays: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) -> T) -> T {
        var pointers: [UnsafeRawBufferPointer] = []
        func nest(_ index: Int) -> T {
            guard index < arrays.count else { return body(pointers) }
            return arrays[index].withUnsafeBytes { buffer in
                pointers.append(buffer)
                return nest(index + 1)
            }
        }
        return nest(0)
    }
}

/// Comparison whose time does not depend on where the inputs differ (libcrypto's CRYPTO_memcmp),
/// so an attacker cannot find a valid signature byte by byte from response times.
public enum ConstantTime {
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
    }
}
