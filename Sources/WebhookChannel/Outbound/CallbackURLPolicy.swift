#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Synchronization

/// Where replies may be sent. A callback URL comes from an unauthenticated `/pair` request, so
/// without this a sender could make Claude POST into the local network or a cloud metadata
/// service (SSRF). Checked when the URL is registered and again, after DNS, before each send.
public struct CallbackURLPolicy: Sendable {
    /// The operator's explicit opt-in for callbacks on private networks.
    public var allowPrivate: Bool
    /// The port this server's HTTP endpoint listens on, when serving: a callback to it on a
    /// local address is refused. Otherwise a reply (which Claude sends) would reach the
    /// server's own routes from a loopback peer, signed with a source's secret: complete a
    /// pairing at `/pair/complete`, or answer a permission prompt at `/webhook` — what no
    /// tool may do (SPEC 3).
    public var ownPort: OwnPort?

    public init(allowPrivate: Bool = false, ownPort: OwnPort? = nil) {
        self.allowPrivate = allowPrivate
        self.ownPort = ownPort
    }

    /// The serving port, set once it is known (a port of 0 is the kernel's pick).
    public final class OwnPort: Sendable {
        private let value: Atomic<UInt16>

        public init(_ port: UInt16) { value = Atomic(port) }

        public var port: UInt16? {
            let port = value.load(ordering: .acquiring)
            return port == 0 ? nil : port
        }

        public func set(_ port: UInt16) { value.store(port, ordering: .releasing) }
    }

    public struct Target: Sendable, Equatable {
        public let scheme: String
        public let host: String
        public let port: UInt16
        public let pathAndQuery: String
    }

    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Checks the URL's form and, for an IP literal or a well-known name, its address class.
    public func check(_ text: String) throws(Refusal) -> Target {
        guard text.utf8.count <= 2048, let components = URLComponents(string: text) else {
            throw Refusal(reason: "the callback URL is not a valid URL")
        }
        guard let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw Refusal(reason: "the callback URL must use http or https")
        }
        guard components.user == nil, components.password == nil else {
            throw Refusal(reason: "the callback URL must not contain a user name or password")
        }
        guard var host = components.host?.lowercased(), !host.isEmpty else {
            throw Refusal(reason: "the callback URL has no host")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { throw Refusal(reason: "the callback URL has an invalid port") }
        var path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { path += "?" + query }
        if ["metadata.google.internal", "metadata", "instance-data"].contains(host) || host.hasSuffix(".metadata.google.internal") {
            throw Refusal(reason: "the callback URL points at a cloud metadata service")
        }
        let addressClass = AddressClass.of(literal: host)
        if let addressClass {
            try permit(addressClass)
        }
        let isLocalName = host == "localhost" || host.hasSuffix(".localhost")
        if isLocalName || addressClass == .loopback || addressClass == .unspecified {
            try refuseOwnPort(UInt16(port))
        }
        return Target(scheme: scheme, host: host, port: UInt16(port), pathAndQuery: path)
    }

    /// Checks every address a name resolved to; all must be allowed. `port`: the target's.
    public func checkResolved(_ addresses: [String], port: UInt16? = nil) throws(Refusal) {
        guard !addresses.isEmpty else { throw Refusal(reason: "the callback host does not resolve") }
        for address in addresses {
            guard let addressClass = AddressClass.of(literal: address) else {
                throw Refusal(reason: "the callback host resolved to an unusable address")
            }
            try permit(addressClass)
            if let port, addressClass == .loopback || addressClass == .unspecified { try refuseOwnPort(port) }
        }
    }

    private func refuseOwnPort(_ port: UInt16) throws(Refusal) {
        guard let own = ownPort?.port, own == port else { return }
        throw Refusal(reason: "the callback URL points at this server itself")
    }

    private func permit(_ addressClass: AddressClass) throws(Refusal) {
        switch addressClass {
        case .loopback, .public: return
        case .privateNetwork where allowPrivate: return
        case .privateNetwork: throw Refusal(reason: "the callback URL points into a private network (not allowed unless the operator enabled it)")
        case .linkLocal: throw Refusal(reason: "the callback URL points at a link-local address")
        case .metadata: throw Refusal(reason: "the callback URL points at a cloud metadata service")
        case .unspecified: throw Refusal(reason: "the callback URL points at an unspecified address")
        case .multicast: throw Refusal(reason: "the callback URL points at a multicast or broadcast address")
        }
    }
}

/// What kind of network an IP address belongs to.
public enum AddressClass: Sendable, Equatable {
    case loopback, privateNetwork, linkLocal, metadata, unspecified, multicast, `public`

    /// `nil` when the text is not an IP literal ("localhost" counts as loopback).
    public static func of(literal host: String) -> AddressClass? {
        if host == "localhost" || host.hasSuffix(".localhost") { return .loopback }
        var v4 = in_addr()
        // inet_aton also reads the forms getaddrinfo will later accept and inet_pton does not:
        // "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "10.1" — aliases of forbidden addresses.
        if inet_pton(AF_INET, host, &v4) == 1 || inet_aton(host, &v4) != 0 {
            return of(ipv4: UInt32(bigEndian: v4.s_addr))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return of(ipv6: bytes)
        }
        return nil
    }

    static func of(ipv4 a: UInt32) -> AddressClass {
        func inNet(_ net: UInt32, _ bits: UInt32) -> Bool { a >> (32 - bits) == net >> (32 - bits) }
        if a == 0xA9FE_A9FE || a == 0x6464_64C8 { return .metadata }  // 169.254.169.254, 100.100.100.200
        if inNet(0x7F00_0000, 8) { return .loopback }
        if inNet(0x0000_0000, 8) { return .unspecified }
        if inNet(0xA9FE_0000, 16) { return .linkLocal }
        if inNet(0x0A00_0000, 8) || inNet(0xAC10_0000, 12) || inNet(0xC0A8_0000, 16) || inNet(0x6440_0000, 10) {
            return .privateNetwork
        }
        if inNet(0xE000_0000, 4) || a == 0xFFFF_FFFF { return .multicast }
        return .public
    }

    static func of(ipv6 b: [UInt8]) -> AddressClass {
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF {
            let v4 = UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15])
            return of(ipv4: v4)
        }
        if b[0..<15].allSatisfy({ $0 == 0 }) {
            return b[15] == 1 ? .loopback : .unspecified
        }
        // IPv4 carried inside IPv6, which a NAT64 or 6to4 router on the way would turn back
        // into that IPv4 address: judged as it. IPv4-compatible (::a.b.c.d, deprecated), the
        // NAT64 prefixes 64:ff9b::/96 and 64:ff9b:1::/48 (RFC 6052, 8215), 6to4 2002::/16
        // (the address after the prefix). Teredo (2001::/32) hides its server and client
        // addresses; no sender needs it: refused as a private network.
        func embedded(_ at: Int) -> AddressClass {
            of(ipv4: UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3]))
        }
        if b[0..<12].allSatisfy({ $0 == 0 }) { return embedded(12) }
        if b[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] { return embedded(12) }
        if b[0..<6] == [0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01] { return embedded(12) }
        if b[0] == 0x20 && b[1] == 0x02 { return embedded(2) }
        if b[0..<4] == [0x20, 0x01, 0x00, 0x00] { return .privateNetwork }
        if b == [0xFD, 0x00, 0x0E, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54] { return .metadata }  // fd00:ec2::254
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return .linkLocal }
        if b[0] & 0xFE == 0xFC { return .privateNetwork }
        if b[0] == 0xFF { return .multicast }
        return .public
    }
}
