import Synchronization
import JSON
import Platform

/// Sends channel events to Claude Code, and bounds what waits to be written.
///
/// An event is admitted (its room reserved) when its webhook is verified, and delivered once
/// the event log holds it. Until the client says `notifications/initialized`, delivered events
/// wait here and are then sent in arrival order. Everything not yet written — reserved,
/// waiting here, or queued on the stdout writer — counts against one bound, so a reader that
/// stops reading turns into `503` answers (the sender retries) instead of unbounded memory or
/// acknowledged events that could not be delivered.
public final class ChannelNotifier: Sendable {
    public static let maxWaitingEvents = 4096
    public static let maxWaitingBytes = 8 << 20

    public enum Admission: Equatable, Sendable {
        case admitted
        /// The client has not initialised and the waiting room is full.
        case notReady
        /// The client is not reading fast enough (or at all) and the waiting room is full.
        case backlog
    }

    private struct Waiting {
        var event: ChannelEvent
        var weight: Int
    }

    private struct State {
        var initialized = false
        var queue: [Waiting] = []
        var queuedBytes = 0
        var reserved = ProtocolOutput.Backlog()

        /// Everything not yet written: reserved, waiting here, and on the output.
        func waiting(besides output: ProtocolOutput.Backlog) -> ProtocolOutput.Backlog {
            ProtocolOutput.Backlog(messages: output.messages + reserved.messages + queue.count,
                                   bytes: output.bytes + reserved.bytes + queuedBytes)
        }
    }

    private let output: ProtocolOutput
    private let state = Mutex(State())
    private let maxEvents: Int
    private let maxBytes: Int

    public init(output: ProtocolOutput, maxEvents: Int = maxWaitingEvents, maxBytes: Int = maxWaitingBytes) {
        self.output = output
        self.maxEvents = maxEvents
        self.maxBytes = maxBytes
    }

    public var isInitialized: Bool { state.withLock { $0.initialized } }

    /// What a notification holds in memory until it is written.
    public static func weight(of event: ChannelEvent) -> Int {
        var bytes = event.contentUTF8.count + 64
        for pair in event.meta { bytes += pair.key.utf8.count + pair.value.utf8.count + 16 }
        return bytes
    }

    /// Notifications accepted and not yet written.
    public var waiting: ProtocolOutput.Backlog {
        state.withLock { $0.waiting(besides: output.backlog) }
    }

    /// Reserves room for one event of `weight` bytes; on `.admitted` the caller must later
    /// `deliver` or `cancel` with the same weight.
    public func admit(weight: Int) -> Admission {
        let (reserved, initialized) = reserveIfRoom(weight: weight)
        return reserved ? .admitted : initialized ? .backlog : .notReady
    }

    /// Reserves room for one message of `weight` bytes if what waits leaves it; says too
    /// whether the client has initialised.
    private func reserveIfRoom(weight: Int) -> (reserved: Bool, initialized: Bool) {
        state.withLock { state in
            let total = state.waiting(besides: output.backlog)
            // One event always fits when nothing waits, however large it is.
            guard total.messages == 0 || (total.messages < maxEvents && total.bytes + weight <= maxBytes) else {
                return (false, state.initialized)
            }
            state.reserved.messages += 1
            state.reserved.bytes += weight
            return (true, state.initialized)
        }
    }

    /// Reserves room for an event already taken, whatever waits (it is delivered next): one
    /// whose sessions changed after it was admitted elsewhere.
    public func reserve(weight: Int) {
        state.withLock { state in
            state.reserved.messages += 1
            state.reserved.bytes += weight
        }
    }

    /// Reserves room for one message of `weight` bytes as soon as what waits leaves room for
    /// it (the bound `admit` applies; one always fits when nothing waits), looking again every
    /// `pollMilliseconds`. For a catch-up read from the event log on a thread of its own: it
    /// takes its turn instead of holding the whole log in memory for a session that does not
    /// read. False, reserving nothing, once the reader is gone (nothing would be written).
    public func reserveWhenRoom(weight: Int, pollMilliseconds: Int = 10) -> Bool {
        while !output.isClosed {
            if reserveIfRoom(weight: weight).reserved { return true }
            usleep(UInt32(pollMilliseconds * 1000))
        }
        return false
    }

    /// Gives back room reserved for an event that will not be delivered.
    public func cancel(weight: Int) {
        state.withLock { state in
            state.reserved.messages -= 1
            state.reserved.bytes -= weight
        }
    }

    /// Sends an admitted event (or keeps it until the client is initialised). The stdout
    /// lines are written by whoever writes them once per loop pass (`ProtocolOutput.writeQueued`).
    public func deliver(_ event: consuming ChannelEvent, weight: Int) {
        // Moved into the queue, not copied: a copy retained what the event holds, and the
        // caller's released it again (an event is handed over, never kept by the caller).
        var event: ChannelEvent? = consume event
        state.withLock { state in
            state.reserved.messages -= 1
            state.reserved.bytes -= weight
            if state.initialized {
                output.enqueue(weight: weight, message: event.take()!)
            } else {
                state.queue.append(Waiting(event: event.take()!, weight: weight))
                state.queuedBytes += weight
            }
        }
    }

    /// Writes the notifications delivered so far (one non-blocking write, or a busy pass
    /// handed to the writer thread; see `ProtocolOutput.writeQueued`). The state calls it
    /// before it lets the answers go, so an event's notification is on its way, written or
    /// queued in order, no later than its sender hears back.
    /// Returns false when the reader is gone (stdout closed): what was delivered reaches no one.
    @discardableResult
    public func writeDelivered() -> Bool {
        output.writeQueued(handingOffBusyPass: true)
        return !output.isClosed
    }

    /// Passes a permission verdict on to Claude Code (README "Permission relay"). A handful of bytes, rare, and
    /// only ever after the client asked: it does not count against the event backlog.
    public func sendPermission(requestID: String, behavior: String) {
        let line = Self.permissionLine(requestID: requestID, behavior: behavior)
        output.enqueue { $0.append(contentsOf: line) }
    }

    /// `notifications/claude/channel/permission` (no newline), for this session or a follower's.
    public static func permissionLine(requestID: String, behavior: String) -> [UInt8] {
        JSONWriter.compact([
            "jsonrpc": "2.0", "method": "notifications/claude/channel/permission",
            "params": ["request_id": .string(requestID), "behavior": .string(behavior)],
        ])
    }

    /// `deliver` for an event whose notification line is already encoded (shared with the
    /// hub's followers), so it is not encoded twice.
    public func deliver(encoded line: [UInt8], weight: Int) {
        deliver(ChannelEvent(encodedNotification: line), weight: weight)
    }

    /// Flushes the queue and switches to direct delivery. Done under the lock so an event
    /// arriving meanwhile cannot overtake the queued ones.
    public func markInitialized() {
        state.withLock { state in
            guard !state.initialized else { return }
            for waiting in state.queue {
                output.enqueue(weight: waiting.weight, message: waiting.event)
            }
            state.queue = []
            state.queuedBytes = 0
            state.initialized = true
        }
        output.writeQueued()
    }
}
