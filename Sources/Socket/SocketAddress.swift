#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// An IPv4 or IPv6 socket address, resolved with getaddrinfo (numeric or by name).
public struct SocketAddress: @unchecked Sendable, CustomStringConvertible {
    public enum Family: Sendable { case ipv4, ipv6 }
    public let port: UInt16
    public let family: Family
    /// The sockaddr as the kernel gave it, held inline (an `sockaddr_in6` has room for either
    /// family): every accepted connection makes one of these, and an array cost an allocation.
    /// A plain C struct of bytes, hence `@unchecked Sendable`.
    private let storage: sockaddr_in6
    private let length: Int

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
        switch Int32(family) {
        case AF_INET:
            guard length >= MemoryLayout<sockaddr_in>.size else { return nil }
            self.family = .ipv4
            port = UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        case AF_INET6:
            guard length >= MemoryLayout<sockaddr_in6>.size else { return nil }
            self.family = .ipv6
            port = UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
        default:
            return nil
        }
        let kept = Swift.min(length, MemoryLayout<sockaddr_in6>.size)
        var storage = sockaddr_in6()
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: kept)) }
        self.storage = storage
        self.length = kept
    }

    /// The address as text (`inet_ntop`), made when asked: for a log line, a pairing's
    /// record, `server.json`. Formatting it for every accepted connection cost ~4,700
    /// instructions (`inet_ntop` goes through `sprintf`) that nearly every request threw away.
    public var host: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        withUnsafeBytes(of: storage) { raw in
            switch family {
            case .ipv4:
                var addr = raw.load(as: sockaddr_in.self).sin_addr
                inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
            case .ipv6:
                var addr = raw.load(as: sockaddr_in6.self).sin6_addr
                inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count))
            }
        }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// 127.0.0.0/8, `::1`, or 127.0.0.0/8 mapped into IPv6 (`::ffff:127.x.x.x`), read from
    /// the address bytes (network order).
    public var isLoopback: Bool {
        withUnsafeBytes(of: storage) { raw in
            switch family {
            case .ipv4:
                return withUnsafeBytes(of: raw.load(as: sockaddr_in.self).sin_addr) { $0[0] == 127 }
            case .ipv6:
                return withUnsafeBytes(of: raw.load(as: sockaddr_in6.self).sin6_addr) { bytes in
                    let zeroTen = bytes.prefix(10).allSatisfy { $0 == 0 }
                    let isOne = zeroTen && bytes[10] == 0 && bytes[11] == 0 && bytes[12...14].allSatisfy { $0 == 0 } && bytes[15] == 1
                    let isMapped127 = zeroTen && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
                    return isOne || isMapped127
                }
            }
        }
    }

    /// For log lines and `server.json`: IPv6 in brackets.
    public var hostForURL: String { family == .ipv6 ? "[\(host)]" : host }

    public var description: String { "\(hostForURL):\(port)" }

    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        try withUnsafeBytes(of: storage) { raw in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(length))
        }
    }

    public var protocolFamily: Int32 { family == .ipv4 ? AF_INET : AF_INET6 }
}
