import Platform

/// Remembers keys (delivery ids, seed signatures) for a fixed time, bounded in size: when full,
/// the oldest key is forgotten first. Entries are kept in insertion order, which is also expiry
/// order because every key lives the same time.
///
/// Keys are held as 64-bit FNV-1a digests, not strings: 100 000 remembered deliveries cost a
/// few megabytes instead of tens. A false duplicate needs a 64-bit collision among live keys
/// (about 1 in 10^9 at full capacity). `DedupeJournal` keeps the digests for restarts.
public struct ReplayMemory: Sendable {
    public let lifetime: Double
    public let capacity: Int
    private var expiries = DigestTable()
    private var order: [UInt64] = []
    private var head = 0

    /// FNV-1a of the key's bytes. `releasenone` (see `ByteWords`): a key held in a record is
    /// hashed without being retained.
    @_effects(releasenone)
    static func digest(_ key: String) -> UInt64 {
        key.withUTF8Bytes { bytes in
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            return hash
        }
    }

    public init(lifetime: Double = 24 * 3600, capacity: Int = 100_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    public var count: Int { expiries.count }

    public func contains(_ key: String, now: Double) -> Bool {
        contains(digest: Self.digest(key), now: now)
    }

    /// The same for a key's `digest`, made once by a caller that asks and then inserts (the
    /// digest is a byte-serial hash).
    public func contains(digest: UInt64, now: Double) -> Bool {
        guard let expiry = expiries[digest] else { return false }
        return expiry > now
    }

    /// Records a key; returns its digest, or nil when it was already remembered (a duplicate).
    @discardableResult
    public mutating func insert(_ key: String, now: Double) -> UInt64? {
        insert(digest: Self.digest(key), now: now)
    }

    @discardableResult
    public mutating func insert(digest: UInt64, now: Double) -> UInt64? {
        evictExpired(now: now)
        if let expiry = expiries[digest], expiry > now { return nil }
        if expiries.count >= capacity { evictOldest() }
        expiries[digest] = now + lifetime
        order.append(digest)
        return digest
    }

    /// Forgets a key recorded for an event that was then refused (its log line could not be
    /// written), so the sender's retry is not taken for a duplicate.
    public mutating func remove(_ key: String) {
        expiries[Self.digest(key)] = nil
    }

    public mutating func restore(key: String, expiresAt: Double, now: Double) {
        restore(digest: Self.digest(key), expiresAt: expiresAt, now: now)
    }

    public mutating func restore(digest: UInt64, expiresAt: Double, now: Double) {
        guard expiresAt > now, expiries[digest] == nil else { return }
        if expiries.count >= capacity { evictOldest() }
        expiries[digest] = expiresAt
        order.append(digest)
    }

    private mutating func evictExpired(now: Double) {
        while head < order.count, let expiry = expiries[order[head]], expiry <= now {
            expiries[order[head]] = nil
            head += 1
        }
        while head < order.count, expiries[order[head]] == nil { head += 1 }
        compactIfNeeded()
    }

    private mutating func evictOldest() {
        while head < order.count {
            let key = order[head]
            head += 1
            if expiries.remove(key) { break }
        }
        compactIfNeeded()
    }

    private mutating func compactIfNeeded() {
        if head > 1024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
