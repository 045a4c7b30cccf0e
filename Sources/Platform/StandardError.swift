#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Where log lines go. stderr is written without blocking where that can be done without
/// touching the parent's descriptor (`NonBlockingWriter`: a pipe or terminal reopened on
/// Linux, a socket with `MSG_DONTWAIT`): a parent that stops reading stderr must not stall
/// the thread that logs, which may be the event loop or the MCP session. A line that does not
/// fit is dropped, counted, and the count is reported with the next line stderr takes.
final class StandardError: Sendable {
    static let shared = StandardError(fd: STDERR_FILENO)

    private let fd: Int32
    private let writer: NonBlockingWriter?
    private let dropped = Mutex<Int>(0)

    /// `fd`: stderr, or a test's pipe.
    init(fd: Int32) {
        self.fd = fd
        writer = NonBlockingWriter.make(for: fd)
    }

    func write(_ line: [UInt8]) {
        guard let writer else {
            writeFully(fd, line)
            return
        }
        dropped.withLock { dropped in
            if dropped > 0 {
                let note = Array("webhook-channel: warning: \(dropped) log line(s) dropped: stderr was not read fast enough\n".utf8)
                guard fits(note, writer) else {
                    dropped += 1
                    return
                }
                dropped = 0
            }
            if !fits(line, writer) { dropped += 1 }
        }
    }

    /// Writes `bytes` whole if the reader takes them (a line under PIPE_BUF goes in one piece
    /// or not at all); a line the reader took only part of is finished, as a torn line would
    /// run into the next.
    private func fits(_ bytes: [UInt8], _ writer: NonBlockingWriter) -> Bool {
        guard let written = bytes.withUnsafeBytes({ writer.write($0) }) else { return true }  // gone: nothing to keep
        guard written > 0 else { return false }
        if written < bytes.count { writeFully(fd, Array(bytes[written...])) }
        return true
    }
}
