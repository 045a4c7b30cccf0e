import COpenSSL

/// Randomness from libcrypto's CSPRNG (RAND_bytes), for ids, secrets, codes and tokens.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        // Without entropy no credential is safe to hand out; this is an environment failure.
        precondition(ok == 1, "libcrypto RAND_bytes failed: no secure randomness available")
        return out
    }

    public static func hex(_ byteCount: Int) -> String { Hex.encode(bytes(byteCount)) }
}
