import Foundation
import Synchronization

/// Wall-clock time in seconds since 1970, injectable so expiry (pairing codes, replay memory,
/// rotated secrets) is tested without sleeping.
public protocol WallClock: Sendable {
    func now() -> Double
}

public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// A clock tests move by hand.
public final class ManualClock: WallClock {
    private let seconds: Mutex<Double>
    public init(_ start: Double) { seconds = Mutex(start) }
    public func now() -> Double { seconds.withLock { $0 } }
    public func advance(by delta: Double) { seconds.withLock { $0 += delta } }
}
