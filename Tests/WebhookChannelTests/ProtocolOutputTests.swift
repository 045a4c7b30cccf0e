import Foundation
import Synchronization
import Testing
@testable import Platform
@testable import MCP
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
            if index % 7 == 0 { output.writeQueued() }
        }
        output.flush(timeoutMilliseconds: 10_000)
        #expect(pipe.readAvailable() == expected.joined(separator: "\n") + "\n")
    }

    /// Whole lines queued by two threads at once (a follower's reader and the MCP side),
    /// written by `writeQueued` from both and by the writer thread: each comes out once, whole,
    /// and each thread's lines in the order it queued them.
    @Test func wholeLinesQueuedFromTwoThreadsComeOutOnceAndInEachThreadsOrder() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let direct = NonBlockingWriter.make(for: pipe.writeFD)
        let output = ProtocolOutput(fd: pipe.writeFD, worker: SerialWorker(name: "test-whole-lines"), direct: direct)
        let reader = Thread {
            for index in 0..<2_000 {
                output.enqueue(line: Array("a\(index)".utf8))
                if index % 5 == 4 { output.writeQueued() }
            }
            output.writeQueued()
        }
        reader.start()
        for index in 0..<2_000 {
            if index % 2 == 0 { output.send(line: Array("b\(index)".utf8)) } else { output.enqueue(line: Array("b\(index)".utf8)) }
            if index % 3 == 0 { output.writeQueued() }
        }
        output.writeQueued()
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while text.split(separator: "\n").count < 4_000 && Date() < deadline {
            text += pipe.readAvailable()
            output.flush(timeoutMilliseconds: 100)
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.filter { $0.hasPrefix("a") } == (0..<2_000).map { "a\($0)"[...] })
        #expect(lines.filter { $0.hasPrefix("b") } == (0..<2_000).map { "b\($0)"[...] })
        #expect(lines.count == 4_000)
    }

    @Test func enqueuedLinesAreWrittenByFlushEvenWithoutAWake() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let output = ProtocolOutput(fd: pipe.writeFD)
        output.enqueue { $0.append(contentsOf: "late".utf8) }
        output.flush(timeoutMilliseconds: 10_000)
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
        worker.sync(timeoutMilliseconds: 10_000)
        #expect(seen.withLock { $0 } == ["first\n"])
    }

    @Test func aClosedReaderDoesNotBlockSenders() throws {
        let pipe = try Pipe()
        Foundation.close(pipe.readFD)
        defer { Foundation.close(pipe.writeFD) }
        signal(SIGPIPE, SIG_IGN)
        let output = ProtocolOutput(fd: pipe.writeFD)
        // Far more than a pipe holds: with nobody reading, a blocking writer would hang here
        // (and this test with it); a closed reader is noticed and nothing is held any more.
        for index in 0..<20_000 { output.send(line: Array("line \(index) \(String(repeating: "x", count: 40))".utf8)) }
        output.flush(timeoutMilliseconds: 10_000)
        output.enqueue(weight: 100) { $0.append(contentsOf: "after".utf8) }
        output.writeQueued()
        output.flush(timeoutMilliseconds: 10_000)
        #expect(output.backlog == ProtocolOutput.Backlog())
    }

    /// The loop's own non-blocking writes (a descriptor of its own on the pipe): what the
    /// reader cannot take yet goes to the worker, ahead of later lines, and counts as backlog
    /// until written.
    @Test func directWritesThatDoNotFitKeepTheirOrderAndCountUntilWritten() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let direct = try #require(NonBlockingWriter.make(for: pipe.writeFD))
        let output = ProtocolOutput(fd: pipe.writeFD, worker: SerialWorker(name: "test-direct"), direct: direct)
        let filler = String(repeating: "z", count: 1000)
        var expected: [String] = []
        // About 300 KB: several times what a pipe holds while nobody reads.
        for index in 0..<300 {
            let line = "e\(index) \(filler)"
            expected.append(line)
            if index % 50 == 49 {
                output.send(line: Array(line.utf8))
            } else {
                output.enqueue(weight: line.utf8.count) { $0.append(contentsOf: line.utf8) }
            }
            if index % 10 == 9 { output.writeQueued() }
        }
        output.writeQueued()
        #expect(output.backlog.messages > 0, "nothing is waiting although the pipe is full")
        // Read as the worker writes, until all of it is here: bounded by real time (generously),
        // since 2000 reads a millisecond apart could end before a worker kept off the CPU of a
        // loaded machine had written it all, and the rest would not fit in the pipe for flush.
        var received = ""
        let total = expected.joined(separator: "\n").utf8.count + 1
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while received.utf8.count < total && ContinuousClock.now < deadline {
            received += pipe.readAvailable()
            usleep(1000)
        }
        output.flush(timeoutMilliseconds: 10_000)
        received += pipe.readAvailable()
        #expect(received == expected.joined(separator: "\n") + "\n")
        #expect(output.backlog == ProtocolOutput.Backlog())
    }

    /// Queues `count` lines of about 1 KB (`enqueue`, as channel events are) and has the loop
    /// write what fits: the rest waits in the backlog for the writer.
    static func queueLines(_ count: Int, on output: ProtocolOutput) {
        let filler = String(repeating: "y", count: 1000)
        for index in 0..<count {
            let line = "b\(index) \(filler)"
            output.enqueue(weight: line.utf8.count) { $0.append(contentsOf: line.utf8) }
        }
        output.writeQueued()
    }

    static func pipeOutput(_ pipe: Pipe, name: String) throws -> ProtocolOutput {
        let direct = try #require(NonBlockingWriter.make(for: pipe.writeFD))
        return ProtocolOutput(fd: pipe.writeFD, worker: SerialWorker(name: name), direct: direct)
    }

    @Test func aBacklogUnderTheMarkDoesNotHoldTheLoop() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let output = try Self.pipeOutput(pipe, name: "test-under-mark")
        Self.queueLines(20, on: output)
        #expect(output.waitWhileReaderBehind(high: 1024) == false)
        Self.drainCompletely(pipe, output)
    }

    /// A reader that stopped (nothing written for longer than the window) is left to the
    /// backlog bound and its 503s (SPEC 9): the loop goes on at once, however long the backlog.
    @Test func aReaderThatStoppedDoesNotHoldTheLoop() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let output = try Self.pipeOutput(pipe, name: "test-stopped-reader")
        Self.queueLines(300, on: output)  // ~300 KB: the pipe fills, nobody reads
        #expect(output.backlog.messages >= 100, "the pipe took everything")
        usleep(120_000)  // longer than the window below since the last write that finished
        #expect(output.waitWhileReaderBehind(high: 100, low: 50, limit: 5_000, progressWindow: 50) == false)
        Self.drainCompletely(pipe, output)
    }

    /// Reads until the writer has written everything, before the pipe is closed: a writer
    /// thread still blocked on it would go on writing to whatever descriptor takes the number
    /// next (another test's pipe or socket).
    static func drainCompletely(_ pipe: Pipe, _ output: ProtocolOutput) {
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while output.backlog != ProtocolOutput.Backlog() && ContinuousClock.now < deadline {
            _ = pipe.readAvailable()
            usleep(500)
        }
        output.flush(timeoutMilliseconds: 10_000)
        _ = pipe.readAvailable()
    }

    /// A reader that reads, slower than lines come: the loop waits for the writer until the
    /// backlog is down to the low mark (here with no time limit, to pin the condition).
    @Test func aReaderThatIsReadingHoldsTheLoopUntilTheBacklogIsDown() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let output = try Self.pipeOutput(pipe, name: "test-reading-reader")
        Self.queueLines(2000, on: output)  // ~2 MB: the direct write takes what the pipe holds
        let reading = Atomic<Bool>(true)
        let stopped = Atomic<Bool>(false)
        let reader = Thread {
            while reading.load(ordering: .acquiring) {
                _ = pipe.readAvailable()
                usleep(200)
            }
            stopped.store(true, ordering: .releasing)
        }
        reader.start()
        // The reader thread is done with the pipe before it is closed (the descriptor's number
        // goes to the next test that opens one).
        defer {
            reading.store(false, ordering: .releasing)
            while !stopped.load(ordering: .acquiring) { usleep(200) }
        }
        #expect(output.backlog.messages >= 1000, "the pipe took most of it")
        // Reading has begun (a loaded machine may hold the threads back a while).
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while !output.hasWrittenToReader && ContinuousClock.now < deadline { usleep(1000) }
        #expect(output.waitWhileReaderBehind(high: 1000, low: 100, limit: 600_000, progressWindow: 600_000))
        #expect(output.backlog.messages < 100)
        output.flush(timeoutMilliseconds: 30_000)
        #expect(output.backlog == ProtocolOutput.Backlog())
        Self.drainCompletely(pipe, output)
    }

    /// A message that says when the last copy of what it holds is gone.
    final class Holder: Sendable {
        final class Count: Sendable {
            let value = Atomic<Int>(0)
        }

        let released: Count
        init(_ released: Count) { self.released = released }
        deinit { released.value.add(1, ordering: .relaxed) }
    }

    struct HeldMessage: DeferredMessage {
        let text: String
        let holder: Holder

        func write(into bytes: inout [UInt8]) { bytes.append(contentsOf: text.utf8) }
    }

    /// The writer moves each queued message out of the queue it keeps for the next pass
    /// (`serialize`): each message is written once, in order, and released once it is written,
    /// not held by the reused queue, whether the loop writes it or the worker does.
    @Test func aWrittenMessageIsReleasedOnceItIsWrittenAndNotKeptByTheReusedQueue() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let direct = try #require(NonBlockingWriter.make(for: pipe.writeFD))
        let output = ProtocolOutput(fd: pipe.writeFD, worker: SerialWorker(name: "test-held"), direct: direct)
        let released = Holder.Count()
        var expected: [String] = []
        for pass in 0..<5 {
            for index in 0..<3 {
                let text = "p\(pass)m\(index)"
                expected.append(text)
                output.enqueue(weight: text.utf8.count, message: HeldMessage(text: text, holder: Holder(released)))
            }
            output.writeQueued()
            #expect(released.value.load(ordering: .relaxed) == 3 * (pass + 1), "pass \(pass)")
        }
        // Through the worker as well (no direct write), then nothing is left holding one.
        let queued = ProtocolOutput(fd: pipe.writeFD)
        for index in 0..<4 {
            let text = "w\(index)"
            expected.append(text)
            queued.enqueue(message: HeldMessage(text: text, holder: Holder(released)))
        }
        queued.flush(timeoutMilliseconds: 10_000)
        #expect(released.value.load(ordering: .relaxed) == 19)
        #expect(pipe.readAvailable() == expected.joined(separator: "\n") + "\n")
    }

    /// The threads that serialised a set of messages.
    final class Writers: Sendable {
        let threads = Mutex<Set<UInt>>([])
        var seen: Set<UInt> { threads.withLock { $0 } }
    }

    /// A message that notes which thread serialised it.
    struct ThreadNotingMessage: DeferredMessage {
        let text: String
        let writers: Writers

        func write(into bytes: inout [UInt8]) {
            writers.threads.withLock { _ = $0.insert(ThreadIdentity.current) }
            bytes.append(contentsOf: text.utf8)
        }
    }

    /// At the loop's end of pass, a pass of a few events is written by the loop itself, before
    /// `writeQueued` returns (no thread wake-up: a notification's latency); a busy pass of
    /// `handOffMessages` or more is handed whole to the writer thread, so the loop goes on
    /// serving while it is written. A follower's reader thread (no hand-off asked) writes a
    /// busy read's lines itself. Each comes out once, in order.
    @Test func aBusyPassAtTheLoopsEndIsWrittenByTheWriterThreadAndASmallOneByTheLoopItself() throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let direct = try #require(NonBlockingWriter.make(for: pipe.writeFD))
        let output = ProtocolOutput(fd: pipe.writeFD, worker: SerialWorker(name: "test-hand-off"), direct: direct)
        /// Queues `count` messages, writes them, and says which threads serialised them.
        func pass(_ name: String, count: Int, handingOff: Bool) -> Set<UInt> {
            let writers = Writers()
            var expected: [String] = []
            for index in 0..<count {
                expected.append("\(name)\(index)")
                output.enqueue(message: ThreadNotingMessage(text: "\(name)\(index)", writers: writers))
            }
            output.writeQueued(handingOffBusyPass: handingOff)
            output.flush(timeoutMilliseconds: 10_000)
            #expect(pipe.readAvailable() == expected.joined(separator: "\n") + "\n", "\(name)")
            return writers.seen
        }
        let me = ThreadIdentity.current
        #expect(pass("small", count: ProtocolOutput.handOffMessages - 1, handingOff: true) == [me])
        let busy = pass("busy", count: ProtocolOutput.handOffMessages, handingOff: true)
        #expect(busy.count == 1 && !busy.contains(me), "written by \(busy), the loop is \(me)")
        #expect(pass("follower", count: 3 * ProtocolOutput.handOffMessages, handingOff: false) == [me])
        #expect(output.backlog == ProtocolOutput.Backlog())
    }
}
