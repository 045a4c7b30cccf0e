import Testing
@testable import WebhookChannel

/// When a follower reports how many events it passed on (`PassedReports`), on an injected
/// clock: a lone event at once, a stream of batches every `interval` or every
/// `maxEventsBehind` events, and never a count twice.
struct PassedReportsTests {
    private static let ms: UInt64 = 1_000_000

    @Test func nothingPassedOnIsNeverReported() {
        var reports = PassedReports()
        #expect(reports.due(now: 100 * Self.ms) { _ in false } == nil)
    }

    @Test func aLoneEventIsReportedAtOnceWhenNothingMoreArrives() {
        var reports = PassedReports()
        reports.sent(0, at: 100 * Self.ms)
        reports.passedOne()
        var waited: UInt64?
        let count = reports.due(now: 101 * Self.ms) { wait in
            waited = wait
            return false
        }
        #expect(count == 1)
        // It waited no longer than the rest of the interval.
        #expect(waited == PassedReports.interval - Self.ms)
    }

    @Test func batchesArrivingWithinTheIntervalAreReportedOnceTheIntervalIsOver() {
        var reports = PassedReports()
        reports.sent(0, at: 0)
        var now: UInt64 = 0
        var sent: [Int] = []
        // A batch of 10 every 100 µs, more always on its way.
        for _ in 0..<200 {
            for _ in 0..<10 { reports.passedOne() }
            now += 100_000
            if let count = reports.due(now: now, moreArrives: { _ in true }) {
                sent.append(count)
                reports.sent(count, at: now)
            }
        }
        // 20 ms of batches: one report every 5 ms, each with everything passed on by then.
        #expect(sent == [500, 1000, 1500, 2000])
    }

    @Test func aFollowerFarBehindItsLastReportReportsWithinTheInterval() {
        var reports = PassedReports()
        reports.sent(0, at: 0)
        for _ in 0..<PassedReports.maxEventsBehind { reports.passedOne() }
        #expect(reports.due(now: Self.ms) { _ in true } == PassedReports.maxEventsBehind)
    }

    @Test func aCountAlreadySentIsNotSentAgain() {
        var reports = PassedReports()
        reports.passedOne()
        let count = reports.due(now: 10 * Self.ms) { _ in false }
        #expect(count == 1)
        reports.sent(1, at: 10 * Self.ms)
        var asked = false
        #expect(reports.due(now: 20 * Self.ms) { _ in asked = true; return false } == nil)
        #expect(!asked)
    }
}
