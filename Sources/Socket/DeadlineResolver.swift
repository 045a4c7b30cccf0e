import Platform
import Synchronization

/// `getaddrinfo` under a deadline. The call cannot be interrupted, and with a nameserver that
/// does not answer glibc's resolver waits 5 s per server and attempt: tens of seconds, against
/// a POST that has 10 s in all. So a name is looked up on a thread of its own (`resolve`) while
/// the caller waits until its deadline at most; a lookup that outlives it finishes on its
/// thread and its answer is dropped. An address literal needs no lookup and is answered on
/// the caller's thread. Blocking: never call it on the event loop.
public enum DeadlineResolver {
    /// Counts lookups still running on their threads (some perhaps given up on); past `limit`
    /// a new one is not started, so a resolver that hangs costs at most that many threads.
    public final class InFlight: Sendable {
        public let limit: Int
        fileprivate let count = Atomic<Int>(0)
        public init(limit: Int) { self.limit = limit }
        public var running: Int { count.load(ordering: .relaxed) }
    }

    /// The process's count, shared by every callback POST and CLI request.
    public static let shared = InFlight(limit: 16)

    public enum Failure: Error, Equatable {
        /// The deadline passed before the lookup finished.
        case timedOut
        /// `InFlight.limit` lookups are still running.
        case busy
    }

    /// Every address of `host` (a name, or an IPv4 / bracketed IPv6 literal), or a failure
    /// once `remainingMilliseconds` (asked again after each wait of at most 50 ms, so an
    /// injected clock decides) says the deadline has passed. A name that does not resolve is
    /// an empty list, as from `SocketAddress.resolveAll`.
    public static func resolveAll(host: String, port: UInt16, remainingMilliseconds: () -> Int32?,
                                  lookup: @escaping @Sendable (String, UInt16) -> [SocketAddress] = SocketAddress.resolveAll,
                                  inFlight: InFlight = shared)
        -> Result<[SocketAddress], Failure>
    {
        if isAddressLiteral(host) { return .success(lookup(host, port)) }
        guard inFlight.count.wrappingAdd(1, ordering: .relaxed).newValue <= inFlight.limit else {
            inFlight.count.wrappingSubtract(1, ordering: .relaxed)
            return .failure(.busy)
        }
        let answer = Answer()
        DetachedThread.start(name: "resolve", stackSize: 256 << 10) {
            let addresses = lookup(host, port)
            answer.addresses.withLock { $0 = addresses }
            inFlight.count.wrappingSubtract(1, ordering: .relaxed)
            answer.done.signal()
        }
        while true {
            if let addresses = answer.addresses.withLock({ $0 }) { return .success(addresses) }
            guard let remaining = remainingMilliseconds() else { return .failure(.timedOut) }
            answer.done.wait(timeoutMilliseconds: Int(min(remaining, 50)))
        }
    }

    /// What the lookup thread hands back; it outlives the caller when the caller gives up.
    private final class Answer: Sendable {
        let addresses = Mutex<[SocketAddress]?>(nil)
        let done = ConditionSignal()
    }

    static func isAddressLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return inet_pton(AF_INET, bare, &v4) == 1 || inet_pton(AF_INET6, bare, &v6) == 1
    }
}
