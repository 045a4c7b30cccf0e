import Foundation
import Glibc
import Synchronization

/// The only writer of protocol lines. At start the real stdout is moved to a private descriptor
/// and descriptor 1 is pointed at stderr, so a stray `print` from anywhere (ours or a library's)
/// can never corrupt the JSON-RPC stream.
///
/// Lines are queued and written by one thread in batches: two messages never interleave, and a
/// burst of channel events costs one `write` instead of one per event.
public final class ProtocolOutput: Sendable {
    private struct Buffer {
        var bytes: [UInt8] = []
        /// Messages the writer thread serialises itself, after `bytes` (see `enqueue`).
        var deferred: [@Sendable (inout [UInt8]) -> Void] = []
        var closed = false

        /// Keeps every message in order: deferred ones come before anything sent after them.
        mutating func serializeDeferred() {
            for writeMessage in deferred {
                writeMessage(&bytes)
                bytes.append(0x0A)
            }
            deferred.removeAll(keepingCapacity: true)
        }
    }

    private let fd: Int32
    private let buffer = Mutex(Buffer())
    private let wakeup = ConditionSignal()
    private let drained = ConditionSignal()
    /// Set by `enqueue`: messages wait for `wakeWriterIfQueued`.
    private let wakeOwed = Atomic<Bool>(false)

    /// Takes over descriptor 1. Call once, before anything can print.
    public static func takeOverStandardOutput() -> ProtocolOutput {
        let privateFD = dup(STDOUT_FILENO)
        _ = dup2(STDERR_FILENO, STDOUT_FILENO)
        return ProtocolOutput(fd: privateFD >= 0 ? privateFD : STDERR_FILENO)
    }

    public init(fd: Int32) {
        self.fd = fd
        let thread = Thread { [self] in self.writerLoop() }
        thread.name = "stdout-writer"
        thread.start()
    }

    /// Queues one message; a newline is appended.
    public func send(line: [UInt8]) {
        send { $0.append(contentsOf: line) }
    }

    /// Lets the caller write a message straight into the output buffer (no intermediate array).
    public func send(_ writeMessage: (inout [UInt8]) -> Void) {
        buffer.withLock { state in
            guard !state.closed else { return }
            state.serializeDeferred()
            writeMessage(&state.bytes)
            state.bytes.append(0x0A)
        }
        wakeup.signal()
    }

    /// Queues one message that the writer thread serialises, and does not wake the writer:
    /// the caller must call `wakeWriterIfQueued` soon. The event loop does at the end of each
    /// pass, so a burst of channel events costs one wake-up of the writer instead of one each,
    /// and their encoding is done off the loop thread.
    public func enqueue(_ writeMessage: @escaping @Sendable (inout [UInt8]) -> Void) {
        buffer.withLock { state in
            guard !state.closed else { return }
            state.deferred.append(writeMessage)
        }
        wakeOwed.store(true, ordering: .releasing)
    }

    public func wakeWriterIfQueued() {
        if wakeOwed.exchange(false, ordering: .acquiringAndReleasing) { wakeup.signal() }
    }

    /// Waits (bounded) until everything queued has been written; used at exit.
    public func flush(timeoutMilliseconds: Int = 200) {
        let deadline = MonotonicClock.nowNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while MonotonicClock.nowNanoseconds() < deadline {
            if buffer.withLock({ $0.bytes.isEmpty && $0.deferred.isEmpty }) { return }
            wakeup.signal()
            drained.wait(timeoutMilliseconds: 10)
        }
    }

    private func writerLoop() {
        var pendingWrite: [UInt8] = []
        var deferred: [@Sendable (inout [UInt8]) -> Void] = []
        BackgroundPriority.applyToCurrentThread()
        while true {
            let closed = buffer.withLock { state -> Bool in
                swap(&pendingWrite, &state.bytes)
                swap(&deferred, &state.deferred)
                return state.closed
            }
            // Serialised here, outside the lock and off the thread that queued them.
            for writeMessage in deferred {
                writeMessage(&pendingWrite)
                pendingWrite.append(0x0A)
            }
            deferred.removeAll(keepingCapacity: true)
            if pendingWrite.isEmpty {
                drained.signal()
                if closed { return }
                wakeup.wait(timeoutMilliseconds: 1000)
                continue
            }
            if !writeAll(pendingWrite) {
                // The client is gone; keep draining so senders never block, but write nothing.
                buffer.withLock { $0.closed = true; $0.bytes = []; $0.deferred = [] }
            }
            pendingWrite.removeAll(keepingCapacity: pendingWrite.capacity <= 1 << 20)
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
