/// When a follower tells the hub how many events it has passed on (`HubFollower`): before a
/// read, once every line read has been passed on, and at once only when the last report is
/// `interval` old, or `maxEventsBehind` behind, or nothing more arrives meanwhile (so a lone
/// event is reported at once). Under load the hub's batches come a loop pass apart, and a
/// frame after every read woke the hub's reader thread as often as its loop ran; the count
/// only keeps the log generations the follower still needs, where milliseconds do not matter.
struct PassedReports {
    static let interval: UInt64 = 5_000_000
    static let maxEventsBehind = 1024

    private var passed = 0
    private var reported = 0
    private var reportedAt: UInt64 = 0

    mutating func passedOne() { passed += 1 }

    /// The count to report now, if any. `now`: a monotonic reading in nanoseconds;
    /// `moreArrives(wait)`: whether the hub sends more within `wait` nanoseconds (it blocks
    /// that long at most, where the read it comes before would block anyway).
    mutating func due(now: UInt64, moreArrives: (UInt64) -> Bool) -> Int? {
        guard passed != reported else { return nil }
        let deadline = reportedAt &+ Self.interval
        if passed - reported < Self.maxEventsBehind, now < deadline, moreArrives(deadline - now) {
            return nil
        }
        return passed
    }

    /// `count` was sent at `now`.
    mutating func sent(_ count: Int, at now: UInt64) {
        reported = count
        reportedAt = now
    }
}
