#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization
import Platform

/// One follower's connection: a bounded queue of notification lines, the thread that
/// writes them, and which log generations hold events the follower has not passed on.
final class FollowerLink: @unchecked Sendable {
    let info: SessionInfo
    private let fd: Int32
    /// The follower says how many events it passed on (`passed` frames); one that does not
    /// (an older version) holds no log generation back.
    let reportsPassed: Bool
    private struct Queue {
        var bytes: [UInt8] = []
        var closed = false
        var wakeOwed = false
        /// The writer took bytes and has not finished writing them.
        var inFlight = false
        /// How many (they still take memory until written).
        var inFlightBytes = 0
        /// A catch-up is being sent: what is shared meanwhile waits in `later`, to go after it.
        var catchingUp = false
        var later: [UInt8] = []
        var hold = FollowerHold()

        var pendingBytes: Int { bytes.count + inFlightBytes + later.count }
    }
    private let queue = Mutex(Queue())
    private let wake = ConditionSignal()
    private let drained = ConditionSignal()
    private let writerDone = ConditionSignal()
    private let writing = Atomic<Bool>(false)

    init(fd: Int32, info: SessionInfo, reportsPassed: Bool) {
        self.fd = fd
        self.info = info
        self.reportsPassed = reportsPassed
    }

    /// The oldest event-log generation with an event sent to this follower and not passed on
    /// to its session yet (nil: none).
    var oldestHeldGeneration: Int? {
        queue.withLock { $0.hold.oldestGeneration }
    }

    /// A catch-up read from the log generations from `generation` on is about to be inserted.
    func catchUpStarts(from generation: Int?) {
        guard reportsPassed, let generation else { return }
        queue.withLock { $0.hold.catchUpStarts(from: generation) }
    }

    /// The catch-up inserted was `events` events.
    func catchUpSent(events: Int) {
        guard reportsPassed else { return }
        queue.withLock { $0.hold.catchUpSent(events: events) }
    }

    /// The follower passed on `count` events since it attached.
    func passedOn(_ count: Int) {
        queue.withLock { $0.hold.passedOn(count) }
    }

    /// Bytes queued for the follower or being written to it.
    var queuedBytes: Int {
        queue.withLock { $0.pendingBytes }
    }

    /// What a catch-up may have queued and not yet written before its reader waits: a
    /// far-behind follower's catch-up is tens of megabytes, and several re-attach at once.
    static let catchUpWindowBytes = 1 << 20

    /// From now on, lines shared with the follower wait until `endCatchUp`.
    func beginCatchUp() {
        queue.withLock { $0.catchingUp = true }
    }

    /// Queues catch-up lines for the writer (started already), then waits while more than
    /// `catchUpWindowBytes` are not written yet. False when the link has ended (no more is
    /// wanted).
    func sendCatchUp(_ lines: [UInt8]) -> Bool {
        queue.withLock { state in
            if !state.closed { state.bytes.append(contentsOf: lines) }
        }
        wake.signal()
        while true {
            let (closed, waiting) = queue.withLock { ($0.closed, $0.bytes.count + $0.inFlightBytes) }
            if closed { return false }
            if waiting <= Self.catchUpWindowBytes { return true }
            drained.wait(timeoutMilliseconds: 100)
        }
    }

    /// The catch-up is all queued: what was shared meanwhile follows it.
    func endCatchUp() {
        queue.withLock { state in
            state.catchingUp = false
            state.bytes.append(contentsOf: state.later)
            state.later = []
            state.wakeOwed = true
        }
        wakeIfQueued()
    }

    /// Queues a line (its newline added) for the next `wakeIfQueued`; false (and the link is
    /// cut) when the follower has fallen past the safety net (`cutOffBytesPerFollower`).
    /// `loggedIn`: the log generation of the event the line notifies (nil for other lines).
    func queue(_ line: [UInt8], loggedIn generation: Int? = nil) -> Bool {
        let accepted = queue.withLock { state -> Bool in
            guard !state.closed else { return true }
            guard state.pendingBytes + line.count < HubServer.cutOffBytesPerFollower else { return false }
            if state.catchingUp {
                state.later.append(contentsOf: line)
                state.later.append(0x0A)
            } else {
                state.bytes.append(contentsOf: line)
                state.bytes.append(0x0A)
            }
            state.wakeOwed = true
            if reportsPassed, let generation { state.hold.share(loggedIn: generation) }
            return true
        }
        if !accepted { cut() }
        return accepted
    }

    /// Queues a line and wakes the writer at once (messages outside the loop's passes).
    func send(_ line: [UInt8]) -> Bool {
        let accepted = queue(line)
        wakeIfQueued()
        return accepted
    }

    func wakeIfQueued() {
        let owed = queue.withLock { state -> Bool in
            defer { state.wakeOwed = false }
            return state.wakeOwed
        }
        if owed { wake.signal() }
    }

    /// Starts the writer thread (once; later calls do nothing).
    func startWriting() {
        guard !writing.exchange(true, ordering: .acquiringAndReleasing) else { return }
        DetachedThread.start(name: "hub-writer") { [self] in
            defer { writerDone.signal() }
            var taken: [UInt8] = []
            var gathering = FollowerWriteGathering()
            let clock = SystemClock()
            while true {
                let queued = queue.withLock { $0.closed ? nil : $0.bytes.count }
                guard let queued else { return }
                if queued == 0 {
                    wake.wait(timeoutMilliseconds: 1000)
                    continue
                }
                let pause = gathering.pause(now: clock.monotonicNanoseconds(), queuedBytes: queued)
                if pause > 0 {
                    var interval = timespec(tv_sec: 0, tv_nsec: Int(pause))
                    nanosleep(&interval, nil)
                }
                let closed = queue.withLock { state -> Bool in
                    swap(&taken, &state.bytes)
                    state.inFlight = !taken.isEmpty
                    state.inFlightBytes = taken.count
                    return state.closed
                }
                if closed { return }
                gathering.wrote(at: clock.monotonicNanoseconds())
                if writeFully(fd, taken) != 0 {
                    cut()
                    return
                }
                queue.withLock { state in
                    state.inFlight = false
                    state.inFlightBytes = 0
                }
                drained.signal()
                taken.removeAll(keepingCapacity: taken.capacity <= 1 << 20)
            }
        }
    }

    /// Cuts the link, waits for its writer to stop, and closes the descriptor (only then, so a
    /// write can never reach a descriptor number reused meanwhile).
    func finish() {
        cut()
        if writing.load(ordering: .acquiring) { writerDone.wait(timeoutMilliseconds: 5000) }
        close(fd)
    }

    /// Lets the writer write what is queued (until `deadline`, a monotonic reading), then
    /// cuts the link: the hub's orderly exit, so the follower has every event the hub answered.
    func drainThenCut(deadline: UInt64) {
        let clock = SystemClock()
        wake.signal()
        while writing.load(ordering: .acquiring), clock.monotonicNanoseconds() < deadline {
            let pending = queue.withLock { !$0.closed && (!$0.bytes.isEmpty || $0.inFlight || !$0.later.isEmpty) }
            guard pending else { break }
            wake.signal()
            drained.wait(timeoutMilliseconds: 10)
        }
        cut()
    }

    /// Ends the link: the reader sees the end, the writer stops, the follower sees EOF.
    func cut() {
        let first = queue.withLock { state -> Bool in
            defer {
                state.closed = true
                state.bytes = []
                state.later = []
                state.hold.release()
            }
            return !state.closed
        }
        guard first else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        wake.signal()
    }
}
