import Foundation
import Testing

/// `webhook_reply` to an https callback: libssl with the system trust store (here pointed at
/// a test CA through `SSL_CERT_FILE`) and host-name verification.
@Suite struct ReplyTLSTests {
    /// A self-signed certificate for localhost and a Python https receiver that answers 200 and
    /// prints each request's X-Signature header.
    final class TLSReceiver: @unchecked Sendable {
        let directory: URL
        let process = Process()
        let output = Pipe()
        let port: Int

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let openssl = Process()
            openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                 "-keyout", directory.appendingPathComponent("key.pem").path,
                                 "-out", directory.appendingPathComponent("cert.pem").path]
            openssl.standardError = FileHandle.nullDevice
            try openssl.run()
            openssl.waitUntilExit()
            guard openssl.terminationStatus == 0 else { throw HarnessError("openssl req failed") }
            let script = """
            import http.server, ssl, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers.get('Content-Length', 0)))
                    print('SIG ' + str(self.headers.get('X-Signature')), flush=True)
                    self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
                def log_message(self, *args): pass
            s = http.server.HTTPServer(('127.0.0.1', 0), H)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(sys.argv[1] + '/cert.pem', sys.argv[1] + '/key.pem')
            s.socket = ctx.wrap_socket(s.socket, server_side=True)
            print(s.server_address[1], flush=True)
            s.serve_forever()
            """
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", script, directory.path]
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            guard let line = Self.readLine(output.fileHandleForReading), let port = Int(line) else {
                process.terminate()
                throw HarnessError("the TLS receiver did not start")
            }
            self.port = port
        }

        var certificatePath: String { directory.appendingPathComponent("cert.pem").path }

        /// The next line the receiver printed (blocking; the receiver prints one per request).
        func nextLine() -> String? { Self.readLine(output.fileHandleForReading) }

        static func readLine(_ handle: FileHandle) -> String? {
            var bytes: [UInt8] = []
            while true {
                let byte = handle.readData(ofLength: 1)
                guard let first = byte.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
                if first == 0x0A { return String(decoding: bytes, as: UTF8.self) }
                bytes.append(first)
            }
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test func replyOverHTTPSIsDeliveredWhenTheCertificateIsTrusted() async throws {
        let receiver = try TLSReceiver()
        defer { receiver.stop() }
        let channel = try await TestChannel.start(environment: ["SSL_CERT_FILE": receiver.certificatePath])
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "tls", callbackURL: "https://localhost:\(receiver.port)/hook")

        let response = try await channel.mcp.callTool("webhook_reply", arguments: [
            "source_id": .string(credentials.sourceID), "payload": ["ok": true],
        ], timeout: .seconds(12))

        let result = try #require(response["result"], "\(response)")
        #expect(result["isError"] != true, "\(result)")
        #expect(toolText(result).contains("HTTP 200"), "\(result)")
        let signatureLine = try #require(receiver.nextLine())
        #expect(signatureLine.hasPrefix("SIG v1="), "\(signatureLine)")
        #expect(signatureLine.contains(",sha256="), "\(signatureLine)")
    }

    @Test func untrustedCertificateIsRefusedAndNotRetried() async throws {
        let receiver = try TLSReceiver()
        defer { receiver.stop() }
        let channel = try await TestChannel.start(environment: ["WEBHOOK_RETRY_DELAYS": "0.1,0.1,0.1"])
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "tls", callbackURL: "https://localhost:\(receiver.port)/hook")

        let response = try await channel.mcp.callTool("webhook_reply", arguments: [
            "source_id": .string(credentials.sourceID), "payload": ["ok": true],
        ], timeout: .seconds(12))

        let result = try #require(response["result"], "\(response)")
        #expect(result["isError"] == true, "\(result)")
        #expect(toolText(result).contains("certificate"), "\(result)")
    }
}
