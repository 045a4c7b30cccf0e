import Foundation

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

