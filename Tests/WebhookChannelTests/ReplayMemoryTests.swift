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
}
