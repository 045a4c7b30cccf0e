import Testing
@testable import Platform
@testable import Socket

/// A peer's address is kept as the kernel's bytes and turned into text only when asked:
/// what the routes decide from it (loopback or not) and what they log must be what the text
/// form always said.
@Suite struct SocketAddressTests {
    struct LoopbackCase: Sendable, CustomTestStringConvertible {
        var host: String
        var isLoopback: Bool
        var testDescription: String { host }
    }

    @Test(arguments: [
        LoopbackCase(host: "127.0.0.1", isLoopback: true),
        LoopbackCase(host: "127.255.3.9", isLoopback: true),
        LoopbackCase(host: "128.0.0.1", isLoopback: false),
        LoopbackCase(host: "10.127.0.1", isLoopback: false),
        LoopbackCase(host: "0.0.0.0", isLoopback: false),
        LoopbackCase(host: "::1", isLoopback: true),
        LoopbackCase(host: "::2", isLoopback: false),
        LoopbackCase(host: "::", isLoopback: false),
        LoopbackCase(host: "1::1", isLoopback: false),
        LoopbackCase(host: "::ffff:127.0.0.1", isLoopback: true),
        LoopbackCase(host: "::ffff:127.9.8.7", isLoopback: true),
        LoopbackCase(host: "::ffff:10.0.0.1", isLoopback: false),
        LoopbackCase(host: "::fffe:127.0.0.1", isLoopback: false),
        LoopbackCase(host: "fe80::1", isLoopback: false),
    ])
    func loopbackIsReadFromTheAddressBytes(example: LoopbackCase) throws {
        let address = try #require(SocketAddress.resolve(host: example.host, port: 8788))
        #expect(address.isLoopback == example.isLoopback)
    }

    @Test func theTextFormIsMadeFromTheKeptBytes() throws {
        let v4 = try #require(SocketAddress.resolve(host: "127.0.0.1", port: 8788))
        #expect(v4.host == "127.0.0.1")
        #expect(v4.port == 8788)
        #expect(v4.family == .ipv4)
        #expect(v4.description == "127.0.0.1:8788")
        let v6 = try #require(SocketAddress.resolve(host: "[::1]", port: 443))
        #expect(v6.host == "::1")
        #expect(v6.family == .ipv6)
        #expect(v6.description == "[::1]:443")
        let mapped = try #require(SocketAddress.resolve(host: "::ffff:127.0.0.1", port: 1))
        #expect(mapped.host == "::ffff:127.0.0.1")
    }

    @Test func aSockaddrRoundTripsThroughTheKeptBytes() throws {
        // What `withSockaddr` hands to bind/connect is the kernel's form again, so a copy
        // rebuilt from it is the same address.
        for host in ["127.0.0.1", "::1", "192.0.2.7", "2001:db8::5"] {
            let address = try #require(SocketAddress.resolve(host: host, port: 12345))
            let copy = try #require(address.withSockaddr { pointer, length in
                SocketAddress(raw: UnsafeRawPointer(pointer), length: Int(length))
            })
            #expect(copy.host == address.host)
            #expect(copy.port == 12345)
            #expect(copy.family == address.family)
        }
    }

    @Test func anAcceptedPeerIsLoopbackAndNamedByItsAddress() throws {
        // The real path: a connection accepted from 127.0.0.1 (getpeername of a connected socket).
        let listener = socket(AF_INET, StreamSocket.type, 0)
        #expect(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        #expect(bound == 0)
        #expect(listen(listener, 1) == 0)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listener, $0, &length) }
        }
        let client = socket(AF_INET, StreamSocket.type, 0)
        defer { close(client) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) }
        }
        #expect(connected == 0)
        var peer = sockaddr_storage()
        var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let accepted = withUnsafeMutablePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &peerLength) }
        }
        #expect(accepted >= 0)
        defer { close(accepted) }
        let address2 = try #require(withUnsafePointer(to: &peer) { SocketAddress(raw: $0, length: Int(peerLength)) })
        #expect(address2.isLoopback)
        #expect(address2.host == "127.0.0.1")
        #expect(address2.port != 0)
    }
}
