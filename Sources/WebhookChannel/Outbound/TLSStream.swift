import COpenSSL
#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// TLS over a connected non-blocking socket with the system's libssl: the system trust store,
/// SNI, and host name verification. Used for https callback URLs.
final class TLSStream: ByteStream {
    private let fd: Int32
    private let context: OpaquePointer
    private let ssl: OpaquePointer

    private init(fd: Int32, context: OpaquePointer, ssl: OpaquePointer) {
        self.fd = fd
        self.context = context
        self.ssl = ssl
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    struct Failure: Error {
        let reason: String
        /// A refused certificate will not fix itself in seconds; a failed handshake might.
        var retryable = true
    }

    static func open(fd: Int32, host: String, deadline: Deadline) -> Result<TLSStream, Failure> {
        guard let context = SSL_CTX_new(TLS_client_method()) else { return .failure(Failure(reason: "TLS is unavailable")) }
        SSL_CTX_set_default_verify_paths(context)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        // TLS 1.2 at least (SSL_CTX_set_min_proto_version is a macro over SSL_CTX_ctrl).
        SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        guard let ssl = SSL_new(context) else {
            SSL_CTX_free(context)
            return .failure(Failure(reason: "TLS is unavailable"))
        }
        let stream = TLSStream(fd: fd, context: context, ssl: ssl)
        SSL_set_fd(ssl, fd)
        // SNI (SSL_set_tlsext_host_name is a macro) carries DNS names only (RFC 6066 section
        // 3); an IP literal is still checked against the certificate by SSL_set1_host.
        if !Self.isIPLiteral(host) {
            _ = host.withCString { name in
                SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: name))
            }
        }
        // Without the name check any trusted certificate would do, so a failure here is final.
        guard SSL_set1_host(ssl, host) == 1 else {
            return .failure(Failure(reason: "the callback's host name cannot be checked against its certificate", retryable: false))
        }
        while true {
            let result = SSL_connect(ssl)
            if result == 1 { return .success(stream) }
            guard stream.waitForRetry(result, deadline: deadline) else {
                let verify = SSL_get_verify_result(ssl)
                let reason = verify != X509_V_OK
                    ? "the callback's TLS certificate was refused (\(String(cString: X509_verify_cert_error_string(verify))))"
                    : "the TLS handshake with the callback failed"
                return .failure(Failure(reason: reason, retryable: verify == X509_V_OK))
            }
        }
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1
    }

    /// After a non-blocking SSL call: waits for the socket when OpenSSL asks to, else gives up.
    private func waitForRetry(_ result: Int32, deadline: Deadline) -> Bool {
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return PlainStream.waitFor(fd: fd, events: Int16(POLLIN), deadline: deadline)
        case SSL_ERROR_WANT_WRITE: return PlainStream.waitFor(fd: fd, events: Int16(POLLOUT), deadline: deadline)
        default: return false
        }
    }

    func writeAll(_ bytes: [UInt8], deadline: Deadline) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + offset, Int32($0.count - offset)) }
            if n > 0 { offset += Int(n); continue }
            guard waitForRetry(n, deadline: deadline) else { return false }
        }
        return true
    }

    func read(deadline: Deadline) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n > 0 { return Array(buffer[0..<Int(n)]) }
            if SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN { return [] }
            guard waitForRetry(n, deadline: deadline) else { return n == 0 ? [] : nil }
        }
    }

    func shutdown() {
        SSL_shutdown(ssl)
    }
}
