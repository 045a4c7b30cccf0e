import COpenSSL

/// Random bytes from libcrypto's CSPRNG, for secrets, ids and pairing codes.
public enum SecureRandom {
    /// `count` random bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0 && count <= Int(Int32.max), "SecureRandom.bytes: count out of range")
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            // RAND_bytes only fails when the system offers no entropy source at all; handing out
            // predictable secrets instead would be far worse than stopping.
            let status = RAND_bytes(buffer.baseAddress, Int32(count))
            precondition(status == 1, "libcrypto RAND_bytes failed: no usable system random source")
            initialized = count
        }
    }

    /// `byteCount` random bytes as lowercase hex (twice as many characters).
    public static func hex(_ byteCount: Int) -> String {
        Hex.encode(bytes(byteCount))
    }
}
