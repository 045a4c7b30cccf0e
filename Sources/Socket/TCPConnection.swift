#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// What the protocol layer above a connection implements. Called on the loop thread.
public protocol TCPConnectionDelegate: AnyObject {
    func connection(_ connection: TCPConnection, didReceive bytes: UnsafeRawBufferPointer)
    func connectionTick(_ connection: TCPConnection, now: UInt64)
    func connectionDidClose(_ connection: TCPConnection)
}

/// A non-blocking accepted socket: buffered writes, half-close with drain, nothing about HTTP.
public final class TCPConnection: EventLoopHandler {
    /// How long a half-closed connection keeps reading (and discarding) what the client still
    /// sends, so it reads our error response instead of a reset.
    static let drainNanoseconds: UInt64 = 2_000_000_000
    /// Stop reading while this much output waits for a client that does not read.
    static let maxPendingOutput = 1 << 20
    /// Reads of a full scratch buffer per readiness event: a peer that keeps its socket full
    /// gets this much of the loop's pass, and readiness (level-triggered) brings it back in
    /// the next one, after the other ready descriptors.
    static let readsPerTurn = 4
    /// A client that has not taken a single byte of pending output for this long is gone.
    static let stuckOutputNanoseconds: UInt64 = 10_000_000_000
    /// Output capacity a connection keeps once everything is sent: room for the next answer
    /// without an allocation, and little held by an idle connection.
    static let keptOutputCapacity = 4096

    public let fd: Int32
    public let peer: SocketAddress?
    /// Owned: the protocol handler lives exactly as long as its connection.
    public var delegate: (any TCPConnectionDelegate)?
    public private(set) var isClosed = false
    public let acceptedAt: UInt64

    private unowned let loop: EventLoop
    private let scratch: UnsafeMutableRawBufferPointer
    private var output: [UInt8] = []
    private var outputOffset = 0
    private var closeWhenFlushed = false
    private var drainWhenFlushed = false
    private var drainingSince: UInt64?
    /// When we decided to close; a client that never reads what we owe it is cut off after
    /// `drainNanoseconds` instead of holding the connection forever.
    private var closingSince: UInt64?
    /// Since when output has waited without any progress.
    private var outputStuckSince: UInt64?
    private var wantsWritable = false
    private var readingPaused = false
    /// Set by the protocol layer (`pauseReading`) while it holds all it will take for now.
    private var heldByReader = false
    private let onClose: (TCPConnection) -> Void

    init(fd: Int32, peer: SocketAddress?, loop: EventLoop, scratch: UnsafeMutableRawBufferPointer,
         onClose: @escaping (TCPConnection) -> Void)
    {
        self.fd = fd
        self.peer = peer
        self.loop = loop
        self.scratch = scratch
        self.onClose = onClose
        self.acceptedAt = loop.clock.monotonicNanoseconds()
    }

    public var hasPendingOutput: Bool { outputOffset < output.count }

    /// Bytes written and not yet taken by the peer's socket.
    public var pendingOutputBytes: Int { output.count - outputOffset }

    /// Run once, by `flush`, when all pending output has been sent (`whenOutputSent`).
    private var onOutputSent: (() -> Void)?

    /// Runs `action` once the output pending now has all been sent: the protocol layer's way
    /// to stop answering a client that sends without reading, and go on when it reads again.
    /// Never runs if the connection closes first.
    public func whenOutputSent(_ action: @escaping () -> Void) {
        guard !isClosed else { return }
        guard hasPendingOutput else { return action() }
        onOutputSent = action
    }

    /// Sends bytes now if the socket takes them, else keeps them until it is writable.
    public func write(_ bytes: [UInt8]) {
        write { $0.append(contentsOf: bytes) }
    }

    /// Lets the caller append its bytes to the output buffer itself (no array of its own),
    /// then sends them as `write(_:)` does. The buffer is reused write after write.
    public func write(_ appendBytes: (inout [UInt8]) -> Void) {
        guard !isClosed, !closeWhenFlushed else { return }
        if !hasPendingOutput {
            output.removeAll(keepingCapacity: true)
            outputOffset = 0
        }
        appendBytes(&output)
        flush()
    }

    /// Closes once everything written has been sent. With `drain`, the write side is shut
    /// first and input is read and discarded for a short while (RFC 9112 §9.6).
    public func closeAfterWriting(drain: Bool) {
        guard !isClosed else { return }
        closeWhenFlushed = true
        drainWhenFlushed = drain
        closingSince = loop.clock.monotonicNanoseconds()
        if !hasPendingOutput { finishClosing() }
    }

    public func closeNow() {
        guard !isClosed else { return }
        isClosed = true
        loop.unregister(fd: fd, closing: true)
        close(fd)
        output = []
        onOutputSent = nil
        delegate?.connectionDidClose(self)
        onClose(self)
    }

    /// Stops reading from the peer until `resumeReading`: the protocol layer holds as much of
    /// what the peer sends as it will (it owes an answer first).
    public func pauseReading() {
        guard !isClosed, !heldByReader else { return }
        heldByReader = true
        loop.modify(fd: fd, readable: false, writable: wantsWritable)
    }

    public func resumeReading() {
        guard !isClosed, heldByReader else { return }
        heldByReader = false
        loop.modify(fd: fd, readable: !readingPaused, writable: wantsWritable)
    }

    /// Runs `turn` in the loop's next pass, after the descriptors ready then: the protocol
    /// layer's way to do a long job (many pipelined requests) a share at a time.
    public func runNextPass(_ turn: @escaping () -> Void) {
        loop.runNextPass(turn)
    }

    // MARK: EventLoopHandler

    public func readable() {
        guard !isClosed else { return }
        var reads = 0
        while true {
            let n = recv(fd, scratch.baseAddress, scratch.count, 0)
            if n > 0 {
                reads += 1
                if drainingSince == nil {
                    delegate?.connection(self, didReceive: UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                    if isClosed || readingPaused || heldByReader || closeWhenFlushed { return }
                }
                if n < scratch.count || reads == TCPConnection.readsPerTurn { return }
                continue
            }
            if n == 0 {
                // The peer finished sending; it may still be reading what we owe it.
                if hasPendingOutput && drainingSince == nil {
                    readingPaused = true
                    closeWhenFlushed = true
                    drainWhenFlushed = false
                    closingSince = loop.clock.monotonicNanoseconds()
                    updateInterest(writable: true)
                } else {
                    closeNow()
                }
                return
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return
            default: closeNow(); return
            }
        }
    }

    public func writable() {
        flush()
    }

    public func tick(now: UInt64) {
        guard !isClosed else { return }
        if let since = drainingSince ?? closingSince {
            if nanoseconds(from: since, to: now) > TCPConnection.drainNanoseconds { closeNow() }
            return
        }
        // Output stuck behind a client that stopped reading: the protocol layer's timeouts
        // cannot help (its answer would queue behind the rest), so the socket layer ends it.
        if hasPendingOutput, let stuck = outputStuckSince, nanoseconds(from: stuck, to: now) > TCPConnection.stuckOutputNanoseconds {
            closeNow()
            return
        }
        // Input that arrived while the process was not running (SIGSTOP, a paused VM, a
        // starved loop) is read before any timeout is judged: that wait was ours, not the
        // client's. A one-byte peek, once a tick per connection.
        // What was just read is fresh activity, stamped after `now`: nothing to judge until
        // the next tick.
        if !readingPaused && !heldByReader && !closeWhenFlushed && hasUnreadInput() {
            readable()
            return
        }
        delegate?.connectionTick(self, now: now)
    }

    private func hasUnreadInput() -> Bool {
        var byte: UInt8 = 0
        #if canImport(Glibc)
        let flags = Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)
        #else
        let flags = MSG_PEEK | MSG_DONTWAIT
        #endif
        return recv(fd, &byte, 1, flags) > 0
    }

    // MARK: Internals

    private func flush() {
        while hasPendingOutput {
            let n = output.withUnsafeBytes { raw in
                NoSignalSend.send(fd, raw.baseAddress! + outputOffset, raw.count - outputOffset)
            }
            if n > 0 { outputOffset += n; outputStuckSince = nil; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                if outputStuckSince == nil { outputStuckSince = loop.clock.monotonicNanoseconds() }
                // A client that sends but does not read is not read from until it catches up.
                if output.count - outputOffset > TCPConnection.maxPendingOutput { readingPaused = true }
                updateInterest(writable: true)
                return
            }
            closeNow()
            return
        }
        // A few answers' worth is kept for the next one; an idle connection holds no more.
        output.removeAll(keepingCapacity: output.capacity <= TCPConnection.keptOutputCapacity)
        outputOffset = 0
        if readingPaused { readingPaused = false }
        updateInterest(writable: false)
        if closeWhenFlushed { finishClosing() }
        if !isClosed, let action = onOutputSent {
            onOutputSent = nil
            action()
        }
    }

    private func updateInterest(writable: Bool) {
        let readable = !readingPaused && !heldByReader
        guard writable != wantsWritable || !readable else { return }
        wantsWritable = writable
        loop.modify(fd: fd, readable: readable, writable: writable)
    }

    private func finishClosing() {
        guard drainWhenFlushed else { closeNow(); return }
        shutdown(fd, Int32(SHUT_WR))
        drainingSince = loop.clock.monotonicNanoseconds()
        // Drained by reading: the loop watches for input (and no longer for room to write),
        // which needs a change only when reading was stopped or writing watched.
        if readingPaused || heldByReader || wantsWritable {
            readingPaused = false
            wantsWritable = false
            loop.modify(fd: fd, readable: true, writable: false)
        }
    }
}
