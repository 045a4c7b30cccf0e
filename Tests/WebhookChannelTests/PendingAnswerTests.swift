import Foundation
import Testing
@testable import WebhookChannel

/// An answer the server owes (here `/pair`, waiting for another process's lock on the state
/// dir) holds back the requests a client pipelines behind it: at most one request's worth is
/// read and kept; the rest waits in the kernel until the answer is out.
@Suite struct PendingAnswerTests {
    @Test func bytesPipelinedBehindAPendingAnswerAreNotReadPastOneRequestsWorth() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let pid = channel.server.pid
        // Hold the state dir's lock as a CLI command in progress would: /pair's change waits.
        let lockPath = channel.stateDir.url.appendingPathComponent(".lock").path
        let lockFD = open(lockPath, O_RDWR | O_CREAT, 0o600)
        #expect(lockFD >= 0 && flock(lockFD, LOCK_EX) == 0)
        var locked = true
        defer { if locked { close(lockFD) } }
        let baseline = try Durability.residentBytes(of: pid)

        let port = channel.server.port
        let socket = try await offloaded { try RawSocket.connectBlocking(port: port, timeout: .seconds(1)) }
        defer { socket.close() }
        let body = #"{"name":"held"}"#
        let pair = "POST /pair HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let junk = Data(String(repeating: "GET /health HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n", count: 20_000).utf8)
        let sentMiB = try await offloaded { () -> Int in
            guard socket.sendBlocking(Data(pair.utf8)) == nil else { return -1 }
            // About 1 MiB a round; a server that kept reading would take all 64.
            for round in 0..<64 where socket.sendBlocking(junk) != nil { return round }
            return 64
        }
        #expect(sentMiB >= 0 && sentMiB < 64, "the server kept reading \(sentMiB) MiB pipelined behind a pending answer")
        let grown = try Durability.residentBytes(of: pid) - baseline
        #expect(grown < 16 << 20, "resident memory grew \(grown >> 20) MiB while an answer was pending")

        close(lockFD)
        locked = false
        let answer = try await offloaded { try socket.readResponseBlocking(timeout: .seconds(10)) }
        #expect(answer.status == 200, "\(answer)")
        #expect(try await channel.http.get("/health").status == 200)
    }
}
