import Testing
@testable import WebhookChannel

struct ReplayMemoryTests {
    @Test func repeatedKeyWithinLifetimeIsADuplicate() {
        var memory = ReplayMemory(lifetime: 100, capacity: 10)
        let first = memory.insert("a", now: 0) != nil
        let repeated = memory.insert("a", now: 99) != nil
        let afterExpiry = memory.insert("a", now: 100.5) != nil
        #expect(first)
        #expect(!repeated)
        #expect(afterExpiry)
    }

    @Test func oldestKeyIsForgottenWhenFull() {
        var memory = ReplayMemory(lifetime: 1000, capacity: 3)
        for key in ["a", "b", "c", "d"] {
            let inserted = memory.insert(key, now: 1) != nil
            #expect(inserted)
        }
        #expect(memory.count == 3)
        #expect(!memory.contains("a", now: 2))
        #expect(memory.contains("d", now: 2))
    }

    @Test func restoredKeysCountUntilTheirExpiry() {
        var restored = ReplayMemory(lifetime: 50, capacity: 10)
        restored.restore(key: "x", expiresAt: 60, now: 20)
        restored.restore(key: "old", expiresAt: 10, now: 20)
        #expect(restored.contains("x", now: 30))
        #expect(!restored.contains("x", now: 61))
        #expect(!restored.contains("old", now: 20))
    }

    /// The replay memory's table (open addressing, runs shifted back on removal, doubling at
    /// half full) must answer as a dictionary does through any mix of sets, replacements and
    /// removals, across growth and runs that wrap past the end of the array.
    @Test func theDigestTableAnswersAsADictionaryThroughAnyMixOfChanges() {
        var random = SplitMix64(seed: 0xD16E57)
        // Few distinct keys, so that removals and re-insertions hit live runs often; 0 is
        // stored as 1 (not in the universe, so the two never meet here).
        let universe = [UInt64(0), 2, 3, UInt64.max] + (0..<2_000).map { _ in random.next() | 2 }
        var table = DigestTable()
        var model: [UInt64: Double] = [:]
        for step in 0..<60_000 {
            let key = universe[random.below(step < 30_000 ? universe.count : 64)]
            switch random.below(3) {
            case 0, 1:
                let value = Double(step)
                table[key] = value
                model[key] = value
            default:
                table[key] = nil
                model[key] = nil
            }
            if step % 997 == 0 {
                #expect(table.count == model.count)
                for probe in universe.prefix(300) { #expect(table[probe] == model[probe], "step \(step)") }
            }
        }
        #expect(table.count == model.count)
        for key in universe { #expect(table[key] == model[key]) }
    }

    @Test func aFullMemoryStillForgetsOldestFirstAndRemembersTheRest() {
        var memory = ReplayMemory(lifetime: 1_000_000, capacity: 5_000)
        for index in 0..<12_000 { #expect(memory.insert("key-\(index)", now: 1) != nil) }
        #expect(memory.count == 5_000)
        #expect(!memory.contains("key-6999", now: 2))
        #expect(memory.contains("key-7000", now: 2) && memory.contains("key-11999", now: 2))
        #expect(memory.insert("key-11000", now: 2) == nil)
        memory.remove("key-11000")
        #expect(!memory.contains("key-11000", now: 2) && memory.count == 4_999)
    }
}
