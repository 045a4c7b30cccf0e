import COpenSSL
import Synchronization

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

    /// `byteCount` random bytes as lowercase hex, cut from a pool that one `RAND_bytes` call
    /// fills 4 KiB at a time: for ids made once per webhook (event ids), where a call per id
    /// cost a libcrypto round trip and a `getpid` (its fork check) on the event loop. Same
    /// CSPRNG, same unpredictability; secrets and pairing codes keep using `hex(_:)`.
    /// `prefix` comes first, in the same string.
    public static func pooledHex(_ byteCount: Int, prefix: String = "") -> String {
        precondition(byteCount > 0 && byteCount <= RandomPool.size, "SecureRandom.pooledHex: count out of range")
        return RandomPool.shared.withLock { pool in
            if pool.offset + byteCount > RandomPool.size { pool.refill() }
            defer { pool.offset += byteCount }
            return pool.bytes.withUnsafeBytes {
                Hex.encode(UnsafeRawBufferPointer(rebasing: $0[pool.offset..<(pool.offset + byteCount)]), prefix: prefix)
            }
        }
    }
}

/// Random bytes drawn ahead, handed out once each (see `SecureRandom.pooledHex`).
struct RandomPool: ~Copyable {
    static let size = 4096
    static let shared = Mutex(RandomPool())

    var bytes = [UInt8](repeating: 0, count: RandomPool.size)
    var offset = RandomPool.size

    mutating func refill() {
        let status = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        precondition(status == 1, "libcrypto RAND_bytes failed: no usable system random source")
        offset = 0
    }
}
