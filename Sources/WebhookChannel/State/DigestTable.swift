import Signing

/// A hash table from 64-bit digests to expiry times: what `ReplayMemory` asks on every
/// webhook. Open addressing with linear probing in one array of key and value side by side,
/// so that a lookup touches one cache line where a `Dictionary` touched two (its keys and its
/// values are separate arrays) and hashed the key with SipHash first, five times a webhook.
///
/// The digests are FNV-1a of strings a sender chose, so their low bits are not trusted to
/// spread: a slot is the top bits of the digest times a random odd number drawn at start
/// (multiply-shift, a universal family), so no sender can aim many keys at one run of slots.
/// At most half the slots are used; deletion shifts the run back (no tombstones).
struct DigestTable {
    private struct Entry {
        /// 0 when the slot is empty (a digest of 0 is stored as 1: one more collision in 2^64).
        var key: UInt64
        var value: Double
    }

    private var entries: [Entry]
    private var shift: UInt64
    private let multiplier: UInt64
    private(set) var count = 0

    init() {
        entries = [Entry](repeating: Entry(key: 0, value: 0), count: 16)
        shift = 64 - 4
        multiplier = SecureRandom.bytes(8).reduce(0) { $0 << 8 | UInt64($1) } | 1
    }

    @inline(__always)
    private static func stored(_ digest: UInt64) -> UInt64 { digest == 0 ? 1 : digest }

    /// The slot a key's run starts from.
    @inline(__always)
    private static func home(_ key: UInt64, _ multiplier: UInt64, _ shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* multiplier) >> shift)
    }

    /// Where `key` is, or the empty slot that ends its run (which starts at its home slot).
    @inline(__always)
    private static func find(_ key: UInt64, in slots: UnsafeBufferPointer<Entry>, _ multiplier: UInt64,
                             _ shift: UInt64) -> (index: Int, found: Bool) {
        let mask = slots.count - 1
        var index = home(key, multiplier, shift)
        while slots[index].key != 0 {
            if slots[index].key == key { return (index, true) }
            index = (index + 1) & mask
        }
        return (index, false)
    }

    subscript(digest: UInt64) -> Double? {
        get {
            let key = Self.stored(digest), multiplier = multiplier, shift = shift
            return entries.withUnsafeBufferPointer { slots in
                let (index, found) = Self.find(key, in: slots, multiplier, shift)
                return found ? slots[index].value : nil
            }
        }
        set {
            if let newValue { update(Self.stored(digest), newValue) } else { remove(digest) }
        }
    }

    /// Sets the value; grows first when the table would be more than half full.
    private mutating func update(_ key: UInt64, _ value: Double) {
        if (count + 1) * 2 > entries.count { grow() }
        let multiplier = multiplier, shift = shift
        let inserted = entries.withUnsafeMutableBufferPointer { slots in
            let (index, found) = Self.find(key, in: UnsafeBufferPointer(slots), multiplier, shift)
            slots[index] = Entry(key: key, value: value)
            return !found
        }
        if inserted { count += 1 }
    }

    /// Removes the digest; false when it was not there. Each later entry of its run that may
    /// take the freed slot (one whose home is not between the freed slot and itself) moves back.
    @discardableResult
    mutating func remove(_ digest: UInt64) -> Bool {
        let key = Self.stored(digest), multiplier = multiplier, shift = shift
        let removed = entries.withUnsafeMutableBufferPointer { slots in
            let mask = slots.count - 1
            let (index, found) = Self.find(key, in: UnsafeBufferPointer(slots), multiplier, shift)
            guard found else { return false }
            var free = index
            var next = (index + 1) & mask
            while slots[next].key != 0 {
                let wanted = Self.home(slots[next].key, multiplier, shift)
                // Distances along the run, wrapping: the entry may move when its home is not
                // after the free slot (cyclically, between free and next).
                if (next &- wanted) & mask >= (next &- free) & mask {
                    slots[free] = slots[next]
                    free = next
                }
                next = (next + 1) & mask
            }
            slots[free] = Entry(key: 0, value: 0)
            return true
        }
        if removed { count -= 1 }
        return removed
    }

    private mutating func grow() {
        let old = entries
        entries = [Entry](repeating: Entry(key: 0, value: 0), count: old.count * 2)
        shift -= 1
        count = 0
        for entry in old where entry.key != 0 { update(entry.key, entry.value) }
    }
}
