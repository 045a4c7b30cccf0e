/// A hub that took the port over from one that went away: the other followers of the old hub
/// re-attach in the next moments and ask for what they missed from the log (`FollowerCatchUp`).
/// Until they have, nothing says which log generations they need, so the log may not rotate
/// at all: under load it can fill a generation in a fraction of a second, and a second
/// rotation would remove what a follower still on its way needs.
///
/// The wait ends when every follower the old hub listed in `server.json` is attached or gone,
/// or at `until` (a follower tries every 50 ms for 5 s). When the old hub left no list (an
/// orderly exit removes the file), the wait lasts until `until` alone, which is then shorter.
struct ReattachWait {
    /// The followers still awaited (nil: not known which).
    private var awaited: Set<Int32>?
    /// Monotonic nanoseconds.
    private var until: UInt64
    private(set) var isOver = false

    static let knownMilliseconds: UInt64 = 5_000
    static let unknownMilliseconds: UInt64 = 2_000

    /// `listed`: the old hub's followers other than this process, nil when it left no list.
    init(listed: Set<Int32>?, now: UInt64) {
        awaited = listed
        until = now + (listed == nil ? Self.unknownMilliseconds : Self.knownMilliseconds) * 1_000_000
        if listed?.isEmpty == true { isOver = true }
    }

    /// Whether rotation must still wait. `attached`: the pids attached now.
    mutating func holds(now: UInt64, attached: Set<Int32>, isAlive: (Int32) -> Bool) -> Bool {
        guard !isOver else { return false }
        if var awaited {
            awaited.subtract(attached)
            awaited = awaited.filter(isAlive)
            self.awaited = awaited
            if awaited.isEmpty { isOver = true }
        }
        if now >= until { isOver = true }
        return !isOver
    }
}
