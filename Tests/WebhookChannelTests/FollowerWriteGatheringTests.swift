import Testing
@testable import WebhookChannel

/// The hub's writer to a follower: a lone event at once, a busy stream gathered into one
/// write a millisecond (on an injected clock: the readings are given).
@Suite struct FollowerWriteGatheringTests {
    let interval = FollowerWriteGathering.interval

    @Test func theFirstWriteGoesAtOnce() {
        #expect(FollowerWriteGathering().pause(now: 0, queuedBytes: 100) == 0)
        #expect(FollowerWriteGathering().pause(now: 123_456_789, queuedBytes: 100) == 0)
    }

    @Test func aLoneEventAfterAQuietIntervalGoesAtOnce() {
        var gathering = FollowerWriteGathering()
        gathering.wrote(at: 10_000_000)
        #expect(gathering.pause(now: 10_000_000 + interval, queuedBytes: 100) == 0)
        #expect(gathering.pause(now: 10_000_000 + 5 * interval, queuedBytes: 100) == 0)
    }

    @Test func linesSoonAfterAWriteWaitForTheRestOfTheInterval() {
        var gathering = FollowerWriteGathering()
        gathering.wrote(at: 10_000_000)
        #expect(gathering.pause(now: 10_000_000, queuedBytes: 100) == interval)
        #expect(gathering.pause(now: 10_000_000 + 300_000, queuedBytes: 100) == interval - 300_000)
        #expect(gathering.pause(now: 10_000_000 + interval - 1, queuedBytes: 100) == 1)
    }

    @Test func enoughQueuedGoesAtOnce() {
        var gathering = FollowerWriteGathering()
        gathering.wrote(at: 10_000_000)
        #expect(gathering.pause(now: 10_000_000 + 1, queuedBytes: FollowerWriteGathering.enoughBytes - 1) > 0)
        #expect(gathering.pause(now: 10_000_000 + 1, queuedBytes: FollowerWriteGathering.enoughBytes) == 0)
    }

    /// A reading taken before the last write (another thread's clock) is no later than it.
    @Test func aReadingBeforeTheLastWriteWaitsTheWholeInterval() {
        var gathering = FollowerWriteGathering()
        gathering.wrote(at: 10_000_000)
        #expect(gathering.pause(now: 9_000_000, queuedBytes: 100) == interval)
    }
}
