import Synchronization

/// Sends channel events to Claude Code. Until the client says `notifications/initialized`,
/// events wait in a bounded queue and are then sent in arrival order.
public final class ChannelNotifier: Sendable {
    public static let maxQueued = 1024

    /// Builds an event when it is about to be written, on whichever thread writes it.
    public typealias EventBuilder = @Sendable () -> ChannelEvent

    private struct State {
        var initialized = false
        var queue: [EventBuilder] = []
    }

    private let output: ProtocolOutput
    private let state = Mutex(State())
    /// When true, `deliver` leaves building and writing the line to the writer thread, and
    /// whoever set this wakes the writer later (`ProtocolOutput.wakeWriterIfQueued`, once per
    /// event-loop pass).
    private let wakesLater: Bool

    public init(output: ProtocolOutput, wakesWriterLater: Bool = false) {
        self.output = output
        self.wakesLater = wakesWriterLater
    }

    public var isInitialized: Bool { state.withLock { $0.initialized } }

    public func deliver(_ event: ChannelEvent) -> Bool {
        deliver(building: { event })
    }

    /// Returns false when the client is not ready yet and the queue is full: the caller answers
    /// 503 so the sender retries, rather than the event being lost.
    public func deliver(building makeEvent: @escaping EventBuilder) -> Bool {
        state.withLock { state in
            if state.initialized {
                if wakesLater {
                    output.enqueue { makeEvent().writeNotification(into: &$0) }
                } else {
                    output.send { makeEvent().writeNotification(into: &$0) }
                }
                return true
            }
            guard state.queue.count < ChannelNotifier.maxQueued else { return false }
            state.queue.append(makeEvent)
            return true
        }
    }

    /// Flushes the queue and switches to direct delivery. Done under the lock so an event
    /// arriving meanwhile cannot overtake the queued ones.
    public func markInitialized() {
        state.withLock { state in
            guard !state.initialized else { return }
            for makeEvent in state.queue {
                output.send { makeEvent().writeNotification(into: &$0) }
            }
            state.queue = []
            state.initialized = true
        }
    }
}
