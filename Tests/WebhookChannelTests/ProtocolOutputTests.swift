import Foundation
import Synchronization
import Testing
@testable import WebhookChannel

/// The single writer of stdout lines: order, batching hand-off, and the shared worker.
struct ProtocolOutputTests {
    /// A pipe whose read end never blocks, so reading cannot stall the test thread pool.
    struct Pipe {
        let readFD: Int32
        let writeFD: Int32

        init() throws {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw HarnessError("pipe failed") }
            readFD = fds[0]
            writeFD = fds[1]
            _ = fcntl(readFD, F_SETFL, fcntl(readFD, F_GETFL) | O_NONBLOCK)
        }

        func readAvailable() -> String {
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
                guard n > 0 else { break }
                bytes += chunk[0..<n]
            }
            return String(decoding: bytes, as: UTF8.self)
        }

        func close() {
            Foundation.close(readFD)
            Foundation.close(writeFD)
        }
    }

    @Test func linesComeOutInTheOrderTheyWereQueuedWhetherSentOrEnqueued() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let output = ProtocolOutput(fd: pipe.writeFD)
        var expected: [String] = []
        for index in 0..<300 {
            let line = "m\(index)"
            expected.append(line)
            if index % 3 == 0 {
                output.send(line: Array(line.utf8))
            } else {
                output.enqueue { $0.append(contentsOf: line.utf8) }
            }
            if index % 7 == 0 { output.wakeWriterIfQueued() }
        }
        output.flush(timeoutMilliseconds: 2000)
        #expect(pipe.readAvailable() == expected.joined(separator: "\n") + "\n")
    }

    @Test func enqueuedLinesAreWrittenByFlushEvenWithoutAWake() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let output = ProtocolOutput(fd: pipe.writeFD)
        output.enqueue { $0.append(contentsOf: "late".utf8) }
        output.flush(timeoutMilliseconds: 2000)
        #expect(pipe.readAvailable() == "late\n")
    }

    @Test func aSharedWorkerRunsOtherJobsInOrderWithTheLines() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let worker = SerialWorker(name: "test-writer")
        let output = ProtocolOutput(fd: pipe.writeFD, worker: worker)
        let seen = Mutex<[String]>([])
        output.send(line: Array("first".utf8))
        worker.async {
            // The line sent before this job has already been written when it runs.
            let written = pipe.readAvailable()
            seen.withLock { $0.append(written) }
        }
        worker.sync(timeoutMilliseconds: 2000)
        #expect(seen.withLock { $0 } == ["first\n"])
    }

    @Test func aClosedReaderDoesNotBlockSenders() throws {
        let pipe = try Pipe()
        Foundation.close(pipe.readFD)
        defer { Foundation.close(pipe.writeFD) }
        signal(SIGPIPE, SIG_IGN)
        let output = ProtocolOutput(fd: pipe.writeFD)
        let started = MonotonicClock.nowNanoseconds()
        // Far more than a pipe holds: with nobody reading, a blocking writer would hang here.
        for index in 0..<20_000 { output.send(line: Array("line \(index) \(String(repeating: "x", count: 40))".utf8)) }
        output.flush(timeoutMilliseconds: 2000)
        output.send(line: Array("after".utf8))
        output.flush(timeoutMilliseconds: 2000)
        let elapsed = Double(MonotonicClock.nowNanoseconds() - started) / 1e9
        #expect(elapsed < 1.5, "sending to a closed reader took \(elapsed) s")
    }
}
