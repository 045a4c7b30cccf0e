import Foundation
import Testing
@testable import Platform

/// Log lines never block the thread that logs: with a stderr pipe nobody reads, lines that do
/// not fit are dropped and counted, and the count is reported once the pipe is read again.
/// (A blocked log write stalled the MCP session, and would stall the event loop.)
@Suite struct StandardErrorTests {
    @Test func linesToAPipeNobodyReadsAreDroppedAndCountedNotBlockedOn() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let sink = StandardError(fd: fds[1])
        let line = Array("webhook-channel: a log line of some length, as the server writes them\n".utf8)

        // 4,000 lines, about 280 KB: four times what a pipe holds. Returns (does not block).
        for _ in 0..<4_000 { sink.write(line) }

        let drained = readAll(fds[0])
        #expect(drained.count % line.count == 0, "a torn line: \(drained.count) bytes")
        let kept = drained.count / line.count
        #expect(kept > 0 && kept < 4_000, "\(kept) lines kept")
        sink.write(line)
        let after = String(decoding: readAll(fds[0]), as: UTF8.self)
        #expect(after.hasPrefix("webhook-channel: warning: \(4_000 - kept) log line(s) dropped: stderr was not read fast enough\n"), "\(after)")
        #expect(after.hasSuffix(String(decoding: line, as: UTF8.self)))
    }

    private func readAll(_ fd: Int32) -> [UInt8] {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { return out }
            out += chunk[0..<count]
        }
    }
}
