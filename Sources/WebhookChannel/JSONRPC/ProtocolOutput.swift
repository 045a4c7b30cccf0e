import Foundation
import Synchronization

/// The only writer of protocol lines. At start the real stdout is moved to a private descriptor
/// and descriptor 1 is pointed at stderr, so a stray `print` from anywhere (ours or a library's)
/// can never corrupt the JSON-RPC stream.
///
/// Lines are queued and written by one background thread (a `SerialWorker`) in batches: two
/// messages never interleave, and a burst of channel events costs one `write` instead of one
/// per event. The worker may be shared with other background writing (the event log), so a
/// burst wakes one thread, once.
public final class ProtocolOutput: Sendable {
    private struct Buffer {
        var bytes: [UInt8] = []
        /// Messages the worker serialises itself, after `bytes` (see `enqueue`).
        var deferred: [@Sendable (inout [UInt8]) -> Void] = []
        var closed = false
        /// A drain job is queued on the worker and has not started yet.
        var drainQueued = false

        /// Keeps every message in order: deferred ones come before anything sent after them.
        mutating func serializeDeferred() {
            ProtocolOutput.serialize(deferred, into: &bytes)
            deferred.removeAll(keepingCapacity: true)
        }

        /// True when the caller must queue a drain job (none is waiting to run).
        mutating func claimDrain() -> Bool {
            guard !drainQueued, !closed else { return false }
            drainQueued = true
            return true
        }
    }

    private let fd: Int32
    private let buffer = Mutex(Buffer())
    private let worker: SerialWorker
    /// Set by `enqueue`: messages wait for `wakeWriterIfQueued`.
    private let wakeOwed = Atomic<Bool>(false)

    /// Takes over descriptor 1. Call once, before anything can print.
    public static func takeOverStandardOutput(worker: SerialWorker) -> ProtocolOutput {
        let privateFD = dup(STDOUT_FILENO)
        _ = dup2(STDERR_FILENO, STDOUT_FILENO)
        return ProtocolOutput(fd: privateFD >= 0 ? privateFD : STDERR_FILENO, worker: worker)
    }

    public init(fd: Int32, worker: SerialWorker = SerialWorker(name: "stdout-writer")) {
        self.fd = fd
        self.worker = worker
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
        if mustDrain { worker.async { [self] in drain() } }
    }

    /// Queues one message that the worker serialises, and does not wake it: the caller must
    /// call `wakeWriterIfQueued` soon. The event loop does at the end of each pass, so a burst
    /// of channel events costs one wake-up instead of one each, and their encoding is done
    /// off the loop thread.
    public func enqueue(_ writeMessage: @escaping @Sendable (inout [UInt8]) -> Void) {
        buffer.withLock { state in
            guard !state.closed else { return }
            state.deferred.append(writeMessage)
        }
        wakeOwed.store(true, ordering: .releasing)
    }

    public func wakeWriterIfQueued() {
        guard wakeOwed.exchange(false, ordering: .acquiringAndReleasing) else { return }
        if buffer.withLock({ $0.claimDrain() }) { worker.async { [self] in drain() } }
    }

    /// Waits (bounded) until everything queued has been written; used at exit.
    public func flush(timeoutMilliseconds: Int = 200) {
        wakeOwed.store(false, ordering: .releasing)
        if buffer.withLock({ $0.claimDrain() }) { worker.async { [self] in drain() } }
        worker.sync(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// On the worker: takes everything queued, serialises the deferred messages outside the
    /// lock, and writes it all with as few `write` calls as the pipe allows.
    private func drain() {
        var (bytes, deferred) = buffer.withLock { state in
            state.drainQueued = false
            defer { state.bytes = []; state.deferred = [] }
            return (state.bytes, state.deferred)
        }
        Self.serialize(deferred, into: &bytes)
        deferred = []
        guard !bytes.isEmpty else { return }
        if !writeAll(bytes) {
            // The client is gone; keep accepting so senders never block, but write nothing.
            buffer.withLock { $0.closed = true; $0.bytes = []; $0.deferred = [] }
        }
    }

    /// Each deferred message, then its newline.
    private static func serialize(_ deferred: [@Sendable (inout [UInt8]) -> Void], into bytes: inout [UInt8]) {
        for writeMessage in deferred {
            writeMessage(&bytes)
            bytes.append(0x0A)
        }
    }

    private func writeAll(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }
}
