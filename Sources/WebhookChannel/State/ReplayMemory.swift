/// Remembers keys (delivery ids, seed signatures) for a fixed time, bounded in size: when full,
/// the oldest key is forgotten first. Entries are kept in insertion order, which is also expiry
/// order because every key lives the same time.
public struct ReplayMemory: Sendable {
    public let lifetime: Double
    public let capacity: Int
    private var expiries: [String: Double] = [:]
    private var order: [String] = []
    private var head = 0

    public init(lifetime: Double = 24 * 3600, capacity: Int = 100_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    public var count: Int { expiries.count }

    public func contains(_ key: String, now: Double) -> Bool {
        guard let expiry = expiries[key] else { return false }
        return expiry > now
    }

    /// Records a key; returns false when it was already remembered (a duplicate).
    public mutating func insert(_ key: String, now: Double) -> Bool {
        evictExpired(now: now)
        if contains(key, now: now) { return false }
        if expiries.count >= capacity { evictOldest() }
        expiries[key] = now + lifetime
        order.append(key)
        return true
    }

    /// Keys with their expiry, oldest first, for persisting across restarts.
    public var entries: [(key: String, expiresAt: Double)] {
        order[head...].compactMap { key in expiries[key].map { (key, $0) } }
    }

    public mutating func restore(key: String, expiresAt: Double, now: Double) {
        guard expiresAt > now, expiries[key] == nil else { return }
        if expiries.count >= capacity { evictOldest() }
        expiries[key] = expiresAt
        order.append(key)
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
            if expiries.removeValue(forKey: key) != nil { break }
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
