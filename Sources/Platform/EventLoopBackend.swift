#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which readiness mechanism the event loop runs on (`WEBHOOK_EVENT_LOOP`). Each one brings
/// the companions that fit it: `epoll` uses eventfd, inotify and `accept4`; `poll` uses only
/// what every POSIX system has (a pipe, one `stat` per round, `accept` + `fcntl`), so running
/// it on Linux tests the path a platform without epoll takes.
public enum EventLoopBackend: String, Sendable, CaseIterable, CustomStringConvertible {
    case epoll
    case poll

    /// The platform's own: epoll on Linux; poll elsewhere (macOS has kqueue, but a kqueue
    /// backend could not be tested here, so it is not offered).
    public static var native: EventLoopBackend {
        #if canImport(Glibc)
        return .epoll
        #else
        return .poll
        #endif
    }

    public var isAvailable: Bool {
        switch self {
        case .poll: return true
        case .epoll:
            #if canImport(Glibc)
            return true
            #else
            return false
            #endif
        }
    }

    public var description: String { rawValue }

    /// Linux-only extensions (eventfd, inotify, `accept4`, socket type flags) are used with
    /// epoll only.
    public var usesLinuxExtensions: Bool { self == .epoll }

    public func makeReadiness() throws(SocketError) -> any ReadinessBackend {
        switch self {
        case .poll: return PollReadiness()
        case .epoll:
            #if canImport(Glibc)
            return try EpollReadiness()
            #else
            throw SocketError(call: "epoll", code: ENOSYS)
            #endif
        }
    }
}
