#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization
import Platform

/// The only writer of protocol lines. At start the real stdout is moved to a private descriptor
/// and descriptor 1 is pointed at stderr, so a stray `print` from anywhere (ours or a library's)
/// can never corrupt the JSON-RPC stream.
///
/// Channel events are queued during an event-loop pass and written at its end by the loop
/// itself, with one non-blocking write (`writeQueued`): no thread wake-up when webhooks come
/// one or a few at a time, which is what a notification's latency is measured on. A pass of
/// `handOffMessages` events or more (a busy server) is handed by the loop to the background
/// thread instead, which serialises and writes it while the loop goes on serving: a `200` needs the
/// event log's `write`, not stdout's (SPEC 9), and that work, with the reader's wake-up,
/// was a tenth of the loop's time under load. What the reader cannot take yet, and every
/// other message (tool results), is written by that thread (a `SerialWorker`), blocking;
/// while it has output, the loop leaves all writing to it, so two writers never interleave
/// and order is kept. Everything not yet
/// written counts in `backlog`, so a reader that stopped reading shows up as a growing backlog
/// that callers can bound.
public final class ProtocolOutput: Sendable {
    private struct Buffer {
        var bytes: [UInt8] = []
        /// Messages serialised by whoever writes them, after `bytes` (see `enqueue`).
        var deferred: [any DeferredMessage] = []
        var closed = false
        /// A drain job is queued on the worker, or running (it drains until nothing is left).
        var workerOwnsOutput = false
        /// The loop is writing what it took (outside the lock).
        var loopWriting = false
        /// Enqueued messages not yet taken by a writer, and those being written.
        var queued = Backlog()
        var writing = Backlog()
        /// Bytes a writer took and has not finished writing (`unwrittenBytes`).
        var takenBytes = 0
        /// The loop's last output buffer and closure list, emptied, kept for its next pass:
        /// a pass's notifications are serialised into capacity already there instead of an
        /// array that doubles its way up from empty (seven allocations and copies for a pass
        /// of 30 events, each large one also making malloc sort its free lists).
        var spare: (bytes: [UInt8], deferred: [any DeferredMessage]) = ([], [])

        /// Keeps every message in order: deferred ones come before anything sent after them.
        mutating func serializeDeferred() {
            ProtocolOutput.serialize(&deferred, into: &bytes)
            deferred.removeAll(keepingCapacity: true)
        }

        var hasOutput: Bool { !bytes.isEmpty || !deferred.isEmpty }

        /// Everything queued, for one writer: it counts as being written until that writer
        /// reports back.
        mutating func takeForWriting() -> (bytes: [UInt8], deferred: [any DeferredMessage]) {
            writing = queued
            queued = Backlog()
            takenBytes = bytes.count
            defer { (bytes, deferred) = spare; spare = ([], []) }
            return (bytes, deferred)
        }

        /// True when the caller must queue a drain job: there is output, and no one else is
        /// writing (a running drain picks up what arrives; the loop hands over when it is done).
        /// The client is gone: keep accepting so senders never block, but write nothing.
        mutating func close() {
            closed = true
            bytes = []
            deferred = []
            queued = Backlog()
            writing = Backlog()
            takenBytes = 0
        }

        /// A writer is done with what it took (`takeForWriting`).
        mutating func finishWriting() {
            writing = Backlog()
            takenBytes = 0
        }

        mutating func claimDrain() -> Bool {
            guard hasOutput, !workerOwnsOutput, !loopWriting, !closed else { return false }
            workerOwnsOutput = true
            return true
        }
    }

    /// Messages (and their weight in bytes) accepted and not yet written.
    public struct Backlog: Sendable, Equatable {
        public var messages = 0
        public var bytes = 0
    }

    private let fd: Int32
    /// For the loop's own writes; nil where stdout cannot be written without blocking.
    private let direct: NonBlockingWriter?
    private let buffer = Mutex(Buffer())
    private let worker: SerialWorker
    /// Set by `enqueue`: messages wait for `writeQueued`.
    private let writeOwed = Atomic<Bool>(false)
    /// When the last write to the reader finished (monotonic nanoseconds; 0: none yet), and a
    /// signal for the loop waiting on a reader that is behind (`waitWhileReaderBehind`).
    private let lastWriteFinished = Atomic<UInt64>(0)
    private let loopWaiting = Atomic<Bool>(false)
    private let wroteSome = ConditionSignal()
    /// What to do, once, when a write finds the reader gone (`whenReaderGone`).
    private let readerGoneHandler = Mutex<(@Sendable () -> Void)?>(nil)

    /// Takes over descriptor 1. Call once, before anything can print.
    public static func takeOverStandardOutput(worker: SerialWorker) -> ProtocolOutput {
        let privateFD = dup(STDOUT_FILENO)
        _ = dup2(STDERR_FILENO, STDOUT_FILENO)
        let fd = privateFD >= 0 ? privateFD : STDERR_FILENO
        return ProtocolOutput(fd: fd, worker: worker, direct: NonBlockingWriter.make(for: fd))
    }

    /// `direct`: how the loop may write without blocking (none: the worker writes everything).
    init(fd: Int32, worker: SerialWorker = SerialWorker(name: "stdout-writer"), direct: NonBlockingWriter? = nil) {
        self.fd = fd
        self.worker = worker
        self.direct = direct
    }

    /// Runs `handler` once, on a thread of its own, when a write finds the reader gone (the
    /// pipe closed): no notification can reach Claude Code any more, so the server should stop
    /// acknowledging webhooks, which it promises to deliver.
    public func whenReaderGone(_ handler: @escaping @Sendable () -> Void) {
        readerGoneHandler.withLock { $0 = handler }
    }

    private func readerGone() {
        guard let handler = readerGoneHandler.withLock({ handler in defer { handler = nil }; return handler }) else { return }
        DetachedThread.start(name: "stdout-closed") { handler() }
    }

    /// Queues one message; a newline is appended.
    public func send(line: [UInt8]) {
        send { $0.append(contentsOf: line) }
    }

    /// Lets the caller write a message straight into the output buffer (no intermediate array).
    public func send(_ writeMessage: (inout [UInt8]) -> Void) {
        let mustDrain = buffer.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.serializeDeferred()
            writeMessage(&state.bytes)
            state.bytes.append(0x0A)
            return state.claimDrain()
        }
        drainOnWorker(if: mustDrain)
    }

    /// Queues one message, serialised when it is written, and does not write it: the caller
    /// must call `writeQueued` soon. The event loop does at the end of each pass, so a burst
    /// of channel events costs one write.
    /// `weight` is what the message holds in memory until it is written; it counts in
    /// `backlog` until the write that carries it returns.
    public func enqueue(weight: Int = 0, _ writeMessage: @escaping @Sendable (inout [UInt8]) -> Void) {
        enqueue(weight: weight, message: WrittenByClosure(writeMessage: writeMessage))
    }

    /// Queues a whole line given as bytes, for `writeQueued` (a follower passes the hub's
    /// lines on as they are: a read's worth written by its own thread with one `write`, where
    /// `send` woke the writer thread for them).
    public func enqueue(line: [UInt8]) {
        enqueue(weight: line.count, message: WholeLine(bytes: line))
    }

    /// The same for a message that writes itself (a channel event): the value is queued as
    /// it is, where a closure capturing it would be one more allocation per message.
    public func enqueue(weight: Int = 0, message: consuming any DeferredMessage) {
        var message: (any DeferredMessage)? = consume message
        buffer.withLock { state in
            guard !state.closed else { return }
            state.deferred.append(message.take()!)
            state.queued.messages += 1
            state.queued.bytes += weight
        }
        writeOwed.store(true, ordering: .releasing)
    }

    /// The reader is gone (a write failed): nothing will be written again.
    public var isClosed: Bool {
        buffer.withLock { $0.closed }
    }

    /// Everything accepted and not yet written, in bytes: replies and errors as well as channel
    /// events (their weight). The JSON-RPC session stops reading requests while it is high, so
    /// a client that sends without reading cannot grow it without bound. Zero once the reader
    /// is gone.
    public var unwrittenBytes: Int {
        buffer.withLock { state in
            state.bytes.count + state.takenBytes + state.queued.bytes + state.writing.bytes
        }
    }

    /// Enqueued messages not yet written (all of them while the reader is not reading).
    /// Zero once the reader is gone: nothing will ever be written again.
    public var backlog: Backlog {
        buffer.withLock { state in
            Backlog(messages: state.queued.messages + state.writing.messages, bytes: state.queued.bytes + state.writing.bytes)
        }
    }

    /// Writes what `enqueue` queued: at once, with one non-blocking write, when this process
    /// can write stdout that way and the worker has nothing; what the reader cannot take yet
    /// goes to the worker (ahead of anything queued meanwhile).
    /// `handingOffBusyPass`: the event loop's end of pass, where `handOffMessages` queued or
    /// more go to the worker whole, to be serialised and written there. Not a follower's
    /// reader thread: its lines come serialised already, and writing them itself is what
    /// keeps a follower's CPU an event low (bench/HISTORY.md, fifth session).
    public func writeQueued(handingOffBusyPass: Bool = false) {
        guard writeOwed.exchange(false, ordering: .acquiringAndReleasing) else { return }
        guard let direct else {
            drainOnWorker(if: buffer.withLock { $0.claimDrain() })
            return
        }
        var handedOff = false
        let taken = buffer.withLock { state -> (bytes: [UInt8], deferred: [any DeferredMessage])? in
            guard state.hasOutput, !state.closed, !state.workerOwnsOutput, !state.loopWriting else { return nil }
            if handingOffBusyPass && state.deferred.count >= Self.handOffMessages {
                handedOff = state.claimDrain()
                return nil
            }
            state.loopWriting = true
            return state.takeForWriting()
        }
        drainOnWorker(if: handedOff)
        guard var (bytes, deferred) = taken else { return }
        Self.serialize(&deferred, into: &bytes)
        deferred.removeAll(keepingCapacity: true)
        let written = bytes.withUnsafeBytes { direct.write($0) }
        if written == nil { readerGone() } else if written! > 0 { wroteToReader() }
        let mustDrain = buffer.withLock { state -> Bool in
            state.loopWriting = false
            guard let written else {
                state.close()
                return false
            }
            if written < bytes.count {
                // Not all of it fits: the rest goes first, then what others queued meanwhile.
                state.bytes.insert(contentsOf: bytes[written...], at: 0)
                state.queued.messages += state.writing.messages
                state.queued.bytes += state.writing.bytes
            }
            state.finishWriting()
            Self.keep(&bytes, deferred, asSpareIn: &state)
            return state.claimDrain()
        }
        drainOnWorker(if: mustDrain)
    }

    /// Backpressure on a reader that reads, but slower than webhooks come: at the end of a
    /// pass with `high` messages or more waiting, the event loop waits for the writer, up to
    /// `limit` milliseconds, until fewer than `low` are left. Without it a saturating load
    /// filled the bound of SPEC 9 (4096 events) whenever the reader fell a tenth of a second
    /// behind, and webhooks were refused (`503`) while the reader was still reading (328 in a
    /// 90 s keep-alive round at 49,594 req/s, bench/HISTORY.md, twelfth session); the C probe,
    /// whose loop writes stdout blocking, slows down instead. The loop does not wait when no
    /// write has finished for `progressWindow` milliseconds: a reader that stopped is left to
    /// the bound and its `503`s, as SPEC 9 asks. A wait this short keeps `/health` answered
    /// within a few milliseconds; the loop's idle time is the writer's and the reader's.
    /// Returns whether it waited.
    @discardableResult
    public func waitWhileReaderBehind(high: Int = 1024, low: Int = 512, limit: Int = 2,
                                      progressWindow: Int = 100) -> Bool
    {
        guard backlog.messages >= high else { return false }
        let start = SystemClock().monotonicNanoseconds()
        var waited = false
        loopWaiting.store(true, ordering: .sequentiallyConsistent)
        defer { loopWaiting.store(false, ordering: .sequentiallyConsistent) }
        while true {
            let now = SystemClock().monotonicNanoseconds()
            let last = lastWriteFinished.load(ordering: .acquiring)
            guard last > 0, nanoseconds(from: last, to: now) <= UInt64(progressWindow) * 1_000_000 else { return waited }
            guard nanoseconds(from: start, to: now) < UInt64(limit) * 1_000_000 else { return waited }
            wroteSome.wait(timeoutMilliseconds: 1)
            waited = true
            if backlog.messages < low { return true }
        }
    }

    /// Whether a write to the reader has finished since this output was made (for tests).
    var hasWrittenToReader: Bool { lastWriteFinished.load(ordering: .acquiring) > 0 }

    /// A write to the reader finished: the reader is reading.
    private func wroteToReader() {
        lastWriteFinished.store(SystemClock().monotonicNanoseconds(), ordering: .releasing)
        if loopWaiting.load(ordering: .sequentiallyConsistent) { wroteSome.signal() }
    }

    /// Queued messages from which a pass's write goes to the worker (`writeQueued`). Eight:
    /// at one connection, or a webhook a millisecond, a pass holds one; at 32 busy keep-alive
    /// connections, ten to thirty. Measured with `bench/ab` at 32 connections, 3 and 16
    /// did as well as 8 (bench/HISTORY.md, eleventh session).
    static let handOffMessages = 8

    /// Hands a writer's emptied buffers back for the loop's next pass, unless they grew large
    /// (a burst's megabytes are not kept for ever).
    private static func keep(_ bytes: inout [UInt8], _ deferred: [any DeferredMessage],
                             asSpareIn state: inout Buffer)
    {
        guard bytes.capacity <= 1 << 20, deferred.capacity <= 4096 else { return }
        bytes.removeAll(keepingCapacity: true)
        state.spare = (bytes, deferred)
    }

    /// Waits (bounded) until everything queued has been written; used at exit.
    public func flush(timeoutMilliseconds: Int = 200) {
        writeOwed.store(false, ordering: .releasing)
        drainOnWorker(if: buffer.withLock { $0.claimDrain() })
        worker.sync(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Queues a drain when the caller claimed it (`Buffer.claimDrain`).
    private func drainOnWorker(if claimed: Bool) {
        if claimed { worker.async { [self] in drain() } }
    }

    /// On the worker: writes everything queued, blocking, until nothing is left; only then
    /// does the loop write again.
    private func drain() {
        while true {
            let taken = buffer.withLock { state -> (bytes: [UInt8], deferred: [any DeferredMessage])? in
                guard state.hasOutput, !state.closed else {
                    state.workerOwnsOutput = false
                    return nil
                }
                return state.takeForWriting()
            }
            guard var (bytes, deferred) = taken else { return }
            Self.serialize(&deferred, into: &bytes)
            deferred.removeAll(keepingCapacity: true)
            // Each part the reader takes counts as progress: a slow reader may take a long
            // time over a large pass, and is still reading (`waitWhileReaderBehind`).
            let written = writeFully(fd, bytes, progress: wroteToReader) == 0
            buffer.withLock { state in
                state.finishWriting()
                if written {
                    // A busy loop's passes come here (`handOffMessages`): their next one
                    // fills these again rather than arrays grown from empty.
                    Self.keep(&bytes, deferred, asSpareIn: &state)
                } else {
                    state.close()
                }
            }
            if !written { readerGone() }
        }
    }

    /// Each deferred message, then its newline; the messages are moved out as they are
    /// written (each slot left holding a `Written` that owns nothing), so the array keeps
    /// its capacity and `removeAll(keepingCapacity:)` after this releases nothing. Calling
    /// `write` on a message in the array (even in place, through its address) copied it
    /// first: three retains and three releases a channel event.
    private static func serialize(_ deferred: inout [any DeferredMessage], into bytes: inout [UInt8]) {
        deferred.withUnsafeMutableBufferPointer { messages in
            guard let base = messages.baseAddress else { return }
            for index in messages.indices {
                let message = (base + index).move()
                (base + index).initialize(to: Written())
                message.write(into: &bytes)
                bytes.append(0x0A)
            }
        }
    }

    /// What `serialize` leaves in a slot it took a message from.
    private struct Written: DeferredMessage {
        func write(into bytes: inout [UInt8]) {}
    }
}

/// A message that `ProtocolOutput` serialises when it writes it, not when it is queued.
/// Queued as a value: a small one (three words at most, as a channel event is) sits in the
/// queue itself, where bare closures cost an allocation each (the closure's context, and a
/// thunk to store it in an array); a larger one would be boxed on the heap.
public protocol DeferredMessage: Sendable {
    func write(into bytes: inout [UInt8])
}

/// A line given whole (`enqueue(line:)`).
private struct WholeLine: DeferredMessage {
    let bytes: [UInt8]

    func write(into out: inout [UInt8]) {
        out.append(contentsOf: bytes)
    }
}

/// A message given as the closure that writes it.
private struct WrittenByClosure: DeferredMessage {
    let writeMessage: @Sendable (inout [UInt8]) -> Void

    func write(into bytes: inout [UInt8]) {
        writeMessage(&bytes)
    }
}
