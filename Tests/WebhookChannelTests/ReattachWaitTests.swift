import Testing
@testable import WebhookChannel

/// After a take-over the log does not rotate until the old hub's other followers re-attached
/// (README "Several sessions"): they read what they missed from it.
struct ReattachWaitTests {
    static let second: UInt64 = 1_000_000_000

    @Test func theWaitLastsUntilEveryListedFollowerAttached() {
        var wait = ReattachWait(listed: [11, 12], now: 0)
        do {
            let holds = wait.holds(now: 1, attached: [], isAlive: { _ in true })
            #expect(holds)
        }
        do {
            let holds = wait.holds(now: 2, attached: [11], isAlive: { _ in true })
            #expect(holds)
        }
        do {
            let holds = wait.holds(now: 3, attached: [11, 12], isAlive: { _ in true })
            #expect(!holds)
        }
        do {
            let holds = wait.holds(now: 4, attached: [], isAlive: { _ in true })
            #expect(!holds, "once over, it stays over")
        }
    }

    @Test func aListedFollowerThatIsGoneIsNotAwaited() {
        var wait = ReattachWait(listed: [11, 12], now: 0)
        do {
            let holds = wait.holds(now: 1, attached: [11], isAlive: { $0 != 12 })
            #expect(!holds)
        }
    }

    @Test func theWaitEndsAfterFiveSecondsWhateverIsMissing() {
        var wait = ReattachWait(listed: [11], now: 0)
        do {
            let holds = wait.holds(now: 5 * Self.second - 1, attached: [], isAlive: { _ in true })
            #expect(holds)
        }
        do {
            let holds = wait.holds(now: 5 * Self.second, attached: [], isAlive: { _ in true })
            #expect(!holds)
        }
    }

    @Test func withoutAListTheWaitIsTwoSeconds() {
        var wait = ReattachWait(listed: nil, now: 0)
        do {
            let holds = wait.holds(now: 2 * Self.second - 1, attached: [7, 8, 9], isAlive: { _ in true })
            #expect(holds)
        }
        do {
            let holds = wait.holds(now: 2 * Self.second, attached: [], isAlive: { _ in true })
            #expect(!holds)
        }
    }

    @Test func anEmptyListMeansNoWait() {
        var wait = ReattachWait(listed: [], now: 0)
        do {
            let holds = wait.holds(now: 0, attached: [], isAlive: { _ in true })
            #expect(!holds)
        }
    }
}
