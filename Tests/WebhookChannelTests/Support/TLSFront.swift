import COpenSSL
import Foundation

/// An https face for a `CallbackReceiver`: listens on `127.0.0.1:0`, completes the TLS
/// handshake with one certificate (libssl, the same library the product uses), and hands the
/// decrypted request to the plain receiver behind it and its answer back. An https reply is
/// therefore recorded and checked by exactly the code that checks plain http replies.
///
/// Every handshake is recorded, completed (with the SNI name the client sent) or failed (with
/// OpenSSL's reason), so a test can tell "refused before any request" from "never connected"
/// and count attempts. One connection at a time on its own thread; every socket call there
/// has a timeout, and the test's async code only reads the records (`poll` with
/// `Task.sleep`), so nothing blocks the cooperative pool. `stop()` (idempotent, also in
/// `deinit`) closes it.
final class TLSFront: @unchecked Sendable {
    enum Handshake: Sendable, Equatable, CustomStringConvertible {
        case completed(serverName: String?)
        case failed(String)

        var isCompleted: Bool {
            if case .completed = self { return true }
            return false
        }

        var description: String {
            switch self {
            case .completed(let name): return "completed (SNI \(name ?? "none"))"
            case .failed(let reason): return "failed: \(reason)"
            }
        }
    }

    var port: Int { listener.port }
    private let backendPort: Int
    private let listener: LoopbackListener
    private let context: OpaquePointer
    private let lock = NSLock()
    private var recorded: [Handshake] = []

    /// Bounds every read and write on one connection, so a stuck peer cannot hold the thread.
    /// Peers here never stall on purpose (a refused handshake ends at once), so this is only
    /// a safety net; 3 s could cut off a reply on a loaded machine and cause a retry.
    private static let ioTimeout: Double = 10

    init(certificate: URL, key: URL, forwardingTo backendPort: Int) throws {
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw HarnessError("SSL_CTX_new failed") }
        guard SSL_CTX_use_certificate_chain_file(context, certificate.path) == 1,
              SSL_CTX_use_PrivateKey_file(context, key.path, SSL_FILETYPE_PEM) == 1
        else {
            let reason = Self.openSSLError()
            SSL_CTX_free(context)
            throw HarnessError("TLS front could not load \(certificate.lastPathComponent): \(reason)")
        }
        do {
            listener = try LoopbackListener()
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        self.context = context
        self.backendPort = backendPort
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "e2e-tls-front"
        thread.start()
    }

    deinit {
        stop()
        SSL_CTX_free(context)
    }

    /// The https URL of this front; `host` is `127.0.0.1` or `localhost` (both resolve here).
    func url(host: String = "127.0.0.1", path: String = "/callback") -> String { "https://\(host):\(port)\(path)" }

    var handshakes: [Handshake] { lock.withLock { recorded } }

    func waitForHandshakes(_ count: Int, timeout: Duration = defaultTimeout) async throws -> [Handshake] {
        try await poll(timeout: timeout, "\(count) TLS handshake(s) at the front (got \(handshakes))") {
            let all = handshakes
            return all.count >= count ? all : nil
        }
    }

    func stop() {
        listener.stop()
    }

    // MARK: The front's thread

    private func acceptLoop() {
        // SSL_write to a peer that hung up raises SIGPIPE in the writing thread; it must fail
        // with EPIPE instead of ending the test run.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
        listener.acceptUntilStopped { fd in
            serve(fd)
            Foundation.close(fd)
        }
    }

    private func serve(_ fd: Int32) {
        Self.setTimeouts(fd)
        guard let ssl = SSL_new(context) else { return }
        defer { SSL_free(ssl) }
        SSL_set_fd(ssl, fd)
        ERR_clear_error()
        guard SSL_accept(ssl) == 1 else {
            record(.failed(Self.openSSLError()))
            return
        }
        let serverName = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
        record(.completed(serverName: serverName))
        guard let request = readRequest(ssl), let answer = forward(request) else { return }
        _ = answer.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        SSL_shutdown(ssl)
    }

    /// The request's head and its `Content-Length` body (the product always sends one).
    private func readRequest(_ ssl: OpaquePointer) -> Data? {
        var received = Data()
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let separator = Data("\r\n\r\n".utf8)
        while true {
            if let headEnd = received.range(of: separator) {
                let head = String(decoding: received[..<headEnd.lowerBound], as: UTF8.self)
                let length = head.components(separatedBy: "\r\n").dropFirst().compactMap { line -> Int? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                    return Int(parts[1].trimmingCharacters(in: .whitespaces))
                }.first ?? 0
                if received.count - headEnd.upperBound >= length { return received }
            }
            let count = chunk.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            guard count > 0 else { return nil }
            received.append(contentsOf: chunk[0..<Int(count)])
        }
    }

    /// Sends the request to the plain receiver and returns everything it answers (it closes
    /// after one answer).
    private func forward(_ request: Data) -> Data? {
        let fd = TestSocket.makeIPv4()
        guard fd >= 0 else { return nil }
        let backend = HTTPConnection(fd: fd)
        defer { backend.close() }
        Self.setTimeouts(fd)
        guard (try? connectIPv4(fd, host: "127.0.0.1", port: backendPort)) != nil,
              (try? backend.sendBlocking(request, timeout: .seconds(Self.ioTimeout))) != nil
        else { return nil }
        var answer = Data()
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                answer.append(contentsOf: chunk[0..<count])
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return answer.isEmpty ? nil : answer
            }
        }
    }

    private func record(_ handshake: Handshake) {
        lock.withLock { recorded.append(handshake) }
    }

    private static func setTimeouts(_ fd: Int32) {
        var value = timeval(tv_sec: Int(ioTimeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The first error on this thread's OpenSSL error queue, as OpenSSL words it.
    private static func openSSLError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "no OpenSSL error recorded (\(String(cString: strerror(errno))))" }
        var text = [UInt8](repeating: 0, count: 256)
        text.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { ERR_error_string_n(code, $0.baseAddress, $0.count) }
        }
        ERR_clear_error()
        return String(decoding: text.prefix { $0 != 0 }, as: UTF8.self)
    }
}
