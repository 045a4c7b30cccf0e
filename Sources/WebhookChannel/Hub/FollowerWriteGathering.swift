import Platform

/// When the hub's writer to a follower writes (`FollowerLink`): at once when its last write
/// is `interval` old (a lone event goes out without delay) or when `enoughBytes` are queued
/// (a catch-up, a burst); otherwise at `interval` after the last write, with everything
/// queued by then. Under load the hub's loop queues lines every pass, a few hundred
/// microseconds apart, and a write per pass woke the follower (and the writer) as often;
/// gathered, a busy follower wakes about 1,000 times a second and spends a fifth less CPU an
/// event (README "Several sessions"). A follower's notifications wait at most `interval`.
struct FollowerWriteGathering {
    static let interval: UInt64 = 1_000_000
    static let enoughBytes = 64 * 1024

    private var lastWrite: UInt64?

    /// Nanoseconds to wait before taking what is queued (0: take it now). `now`: a monotonic
    /// reading; `queuedBytes`: what waits to be written.
    func pause(now: UInt64, queuedBytes: Int) -> UInt64 {
        guard let lastWrite, queuedBytes < Self.enoughBytes else { return 0 }
        let since = nanoseconds(from: lastWrite, to: now)
        return since >= Self.interval ? 0 : Self.interval - since
    }

    /// A write began at `now`.
    mutating func wrote(at now: UInt64) {
        lastWrite = now
    }
}
