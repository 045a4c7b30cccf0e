#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// An IPv4 or IPv6 socket address, resolved with getaddrinfo (numeric or by name).
public struct SocketAddress: Sendable, CustomStringConvertible {
    public enum Family: Sendable { case ipv4, ipv6 }
    public let host: String
    public let port: UInt16
    public let family: Family
    private let storage: [UInt8]

    /// Resolves a host for binding; `nil` when it cannot be resolved. Prefers IPv4 when a
    /// name resolves to both: "localhost" is then 127.0.0.1 like the seed.
    public static func resolve(host: String, port: UInt16) -> SocketAddress? {
        let all = resolveAll(host: host, port: port)
        return all.first { $0.family == .ipv4 } ?? all.first
    }

    /// Every stream address getaddrinfo gives for a host (numeric or by name, IPv6 with or
    /// without brackets), in its order; empty when the host cannot be resolved. Connecting
    /// walks them in turn.
    public static func resolveAll(host: String, port: UInt16) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = StreamSocket.type
        var result: UnsafeMutablePointer<addrinfo>?
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        guard getaddrinfo(bareHost, String(port), &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var addresses: [SocketAddress] = []
        var entry = result
        while let current = entry {
            if let raw = current.pointee.ai_addr,
               let address = SocketAddress(raw: UnsafeRawPointer(raw), length: Int(current.pointee.ai_addrlen))
            {
                addresses.append(address)
            }
            entry = current.pointee.ai_next
        }
        return addresses
    }

    /// Builds from a kernel-filled sockaddr (accept, getsockname).
    public init?(raw: UnsafeRawPointer, length: Int) {
        // Not at offset 0 everywhere: BSD sockaddrs start with a length byte.
        let family = raw.load(fromByteOffset: MemoryLayout<sockaddr>.offset(of: \sockaddr.sa_family)!, as: sa_family_t.self)
        storage = Array(UnsafeRawBufferPointer(start: raw, count: length))
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(family) {
        case AF_INET:
            let sin = raw.load(as: sockaddr_in.self)
            var addr = sin.sin_addr
            inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
            self.family = .ipv4
            port = UInt16(bigEndian: sin.sin_port)
        case AF_INET6:
            let sin6 = raw.load(as: sockaddr_in6.self)
            var addr = sin6.sin6_addr
            inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count))
            self.family = .ipv6
            port = UInt16(bigEndian: sin6.sin6_port)
        default:
            return nil
        }
        host = String(cString: text)
    }

    public var isLoopback: Bool {
        switch family {
        case .ipv4: return host.hasPrefix("127.")
        case .ipv6: return host == "::1" || host.hasPrefix("::ffff:127.")
        }
    }

    /// For log lines and `server.json`: IPv6 in brackets.
    public var hostForURL: String { family == .ipv6 ? "[\(host)]" : host }

    public var description: String { "\(hostForURL):\(port)" }

    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        try storage.withUnsafeBytes { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
    }

    public var protocolFamily: Int32 { family == .ipv4 ? AF_INET : AF_INET6 }
}
