import Foundation
@testable import HTTP
@testable import Platform
@testable import Socket

extension EventLoop {
    /// An `HTTPServer` on 127.0.0.1 and a port the kernel picks, bound and started on this
    /// loop's thread (where it must be), for tests that run the server in-process. `alsoOnLoop`
    /// runs there too, right after the start (a probe to register, say).
    func startTestServer(timeouts: HTTPServer.Timeouts = HTTPServer.Timeouts(),
                         alsoOnLoop: @escaping @Sendable () throws(SocketError) -> Void = {},
                         respond: @escaping @Sendable (HTTPRequest, SocketAddress?) -> HTTPReply) async throws -> HTTPServer {
        let started: Result<LoopConfined<HTTPServer>, SocketError> = await withCheckedContinuation { continuation in
            execute { [self] in
                do throws(SocketError) {
                    let server = try HTTPServer(host: "127.0.0.1", port: 0, loop: self, limits: .standard, timeouts: timeouts,
                                                maxConnections: 16, respond: respond)
                    try server.start()
                    try alsoOnLoop()
                    continuation.resume(returning: .success(LoopConfined(server)))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try started.get().value
    }
}
