#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization
import Platform

/// Something the event loop tells about readiness on a descriptor. Called on the loop thread.
public protocol EventLoopHandler: AnyObject {
    func readable()
    func writable()
    /// Called about every `tickInterval` so handlers can enforce timeouts without one timer each.
    func tick(now: UInt64)
}

/// One thread waiting on a readiness backend (epoll or poll(2), see `EventLoopBackend`). It is
/// also a Swift `SerialExecutor`: the state actor runs its jobs here, so the HTTP side (already on this thread) reaches the actor synchronously, with no
/// hop and no allocation per request, while the MCP side reaches it with an ordinary `await`.
public final class EventLoop: SerialExecutor, @unchecked Sendable {
    public static let tickIntervalMilliseconds: Int32 = 250
    /// Polls in a row that find nothing before the loop stops busy polling (`waitForReadiness`).
    static let pollsInVain = 3

    /// Which readiness mechanism (and companions: wake-up, directory watch, accept) it uses.
    public let backend: EventLoopBackend
    /// Where the loop, its connections and their timeouts read the time (`tick(now:)` passes it).
    public let clock: any Clock
    private let readiness: any ReadinessBackend
    private let wakeup: LoopWakeup
    /// What the last wait found ready. Only touched on the loop thread.
    private var ready: [ReadyEvent] = []
    private let pending = Mutex<(jobs: [UnownedJob], closures: [@Sendable () -> Void])>(([], []))
    private let stopFlag = Atomic<Bool>(false)
    /// The loop thread's `ThreadIdentity` (0 until it runs): written on the loop thread, read
    /// from any thread by `inLoopThread`, hence atomic.
    private let threadID = Atomic<UInt>(0)
    /// Only touched on the loop thread.
    private var handlers = DescriptorTable<any EventLoopHandler>()
    private var lastTick: UInt64 = 0
    /// How long the loop looks for work without blocking after a pass that found some (see
    /// `waitForReadiness`); 0 never.
    public let busyPollNanoseconds: UInt64
    /// Whether the last wait found anything (loop thread only).
    private var lastPassFoundWork = false
    /// Polls in a row that ran out their window without finding work (loop thread only); at
    /// `EventLoop.pollsInVain` the loop stops polling until a sleep ends soon (`waitForReadiness`).
    private var pollsInVain = 0
    /// Waits that did not block because the loop was busy polling (read by tests).
    let busyPolls = Atomic<UInt64>(0)
    /// When the previous pass ended (loop thread only): a wait that found nothing yet lasted
    /// far longer than it was allowed to means the process was not running (SIGSTOP, a paused
    /// VM), and the sockets are looked at again before any timeout is judged.
    private var passEnded: UInt64 = 0
    /// Counts rounds: each return of the backend's wait, and each batch of queued jobs taken, starts
    /// one, so what a round handles was received before it began (or during its own few
    /// microseconds). Read on the loop thread only.
    public private(set) var round: UInt64 = 0
    /// The descriptor handled first in each round (see `register(first:)`), or -1.
    private var firstFD: Int32 = -1
    /// Only touched on the loop thread.
    private var endOfPassActions: [() -> Void] = []
    /// Turns handed to the next pass (`runNextPass`), and the list they are swapped into when
    /// that pass begins. Loop thread only.
    private var nextPassTurns: [() -> Void] = []
    private var runningTurns: [() -> Void] = []
    private let finished = ConditionSignal()
    private let isFinished = Atomic<Bool>(false)

    public init(backend: EventLoopBackend = .native, clock: any Clock = SystemClock(),
                busyPollNanoseconds: UInt64 = 0) throws(SocketError)
    {
        self.backend = backend
        self.clock = clock
        self.busyPollNanoseconds = busyPollNanoseconds
        readiness = try backend.makeReadiness()
        wakeup = try LoopWakeup(eventFD: backend.usesLinuxExtensions)
        try readiness.add(fd: wakeup.fd, readable: true, writable: false)
        ready.reserveCapacity(256)
    }

    /// Starts the loop on its own thread.
    public func start() {
        DetachedThread.start(name: "event-loop", stackSize: 1 << 20) { [self] in self.run() }
    }

    /// Asks the loop to stop and waits (bounded) until it has.
    public func stop(timeoutMilliseconds: Int = 300) {
        stopFlag.store(true, ordering: .releasing)
        wake()
        // A real wait for the loop thread, whatever clock its timeouts use.
        let system = SystemClock()
        let deadline = system.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while !isFinished.load(ordering: .acquiring), system.monotonicNanoseconds() < deadline {
            finished.wait(timeoutMilliseconds: 20)
        }
    }

    public var inLoopThread: Bool {
        let loopThread = threadID.load(ordering: .acquiring)
        return loopThread != 0 && loopThread == ThreadIdentity.current
    }

    // MARK: SerialExecutor

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        pending.withLock { $0.jobs.append(unowned) }
        wake()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func checkIsolated() {
        precondition(inLoopThread, "expected to run on the event loop thread")
    }

    public func isIsolatingCurrentContext() -> Bool? {
        inLoopThread
    }

    /// Runs a closure on the loop thread (from any thread).
    public func execute(_ work: @escaping @Sendable () -> Void) {
        pending.withLock { $0.closures.append(work) }
        wake()
    }

    /// Runs `action` on the loop thread after every pass of the loop (the readiness events of
    /// one wait, then the queued jobs), and once more when the loop stops. Work that
    /// the many requests of one pass produce (waking the stdout writer, appending to the event
    /// log) is then done once per pass instead of once per request.
    public func addEndOfPassAction(_ action: @escaping @Sendable () -> Void) {
        execute { [self] in endOfPassActions.append(action) }
    }

    /// Runs `turn` on the loop thread in the next pass, after that pass's readiness events
    /// (loop thread only). A handler with more work than one turn's worth does a share of it
    /// and hands the rest here, so every other descriptor that is ready meanwhile is served in
    /// between; the next wait does not block while turns are waiting.
    public func runNextPass(_ turn: @escaping () -> Void) {
        nextPassTurns.append(turn)
    }

    // MARK: Registration (loop thread only)

    /// With `first`, this descriptor's events are handled before the others of the same round
    /// (one descriptor at most: the state dir watch, so a change is seen before requests that
    /// follow it).
    public func register(fd: Int32, handler: any EventLoopHandler, readable: Bool = true, writable: Bool = false,
                         first: Bool = false) throws(SocketError)
    {
        handlers[fd] = handler
        if first { firstFD = fd }
        do { try readiness.add(fd: fd, readable: readable, writable: writable) } catch {
            handlers[fd] = nil
            if first { firstFD = -1 }
            throw error
        }
    }

    public func modify(fd: Int32, readable: Bool, writable: Bool) {
        readiness.modify(fd: fd, readable: readable, writable: writable)
    }

    /// Stops watching `fd`. With `closing`, the caller closes it next (the epoll backend then
    /// leaves the removal to `close`).
    public func unregister(fd: Int32, closing: Bool = false) {
        handlers[fd] = nil
        if fd == firstFD { firstFD = -1 }
        if closing { readiness.removeBeforeClose(fd: fd) } else { readiness.remove(fd: fd) }
    }

    // MARK: Loop

    private func wake() {
        wakeup.signal()
    }

    private func run() {
        threadID.store(ThreadIdentity.current, ordering: .releasing)
        lastTick = clock.monotonicNanoseconds()
        passEnded = lastTick
        while !stopFlag.load(ordering: .acquiring) {
            waitForReadiness()
            round &+= 1
            // This pass runs the turns handed over before it; those handed over during it wait.
            if !nextPassTurns.isEmpty { swap(&nextPassTurns, &runningTurns) }
            if !ready.isEmpty {
                let first = firstFD
                if first >= 0 {
                    for index in ready.indices where ready[index].fd == first { dispatch(ready[index]) }
                }
                for index in ready.indices where ready[index].fd != first { dispatch(ready[index]) }
            }
            if !runningTurns.isEmpty { runTurns() }
            runPending()
            let now = clock.monotonicNanoseconds()
            let interval = UInt64(EventLoop.tickIntervalMilliseconds) * 1_000_000
            let resumed = ready.isEmpty && now &- passEnded > interval + 1_000_000_000
            passEnded = now
            // After a suspension, bytes that arrived meanwhile are read in the next pass first:
            // a request sent while the process was stopped is not the client's delay.
            // Before the end-of-pass actions: a tick may read a request (input that waited
            // unread), and its answer goes out with this pass's commit, not after the next
            // wait, which with every client waiting for an answer lasts a whole tick.
            if !resumed && nanoseconds(from: lastTick, to: now) >= interval {
                lastTick = now
                for handler in handlers.values { handler.tick(now: now) }
                runPending()
            }
            for action in endOfPassActions { action() }
        }
        for fd in handlers.descriptors {
            unregister(fd: fd, closing: true)
            Platform.close(fd)
        }
        nextPassTurns.removeAll()
        runPending()
        for action in endOfPassActions { action() }
        isFinished.store(true, ordering: .releasing)
        finished.signal()
    }

    /// Fills `ready`. After a pass that found something, it first looks without blocking for
    /// up to `busyPollNanoseconds` (on the loop's clock): a client that answers at once, as a
    /// keep-alive sender does, is then served without the loop going to sleep. A sleep and a
    /// wake-up cost little on bare metal but, on a virtual machine, a halted vCPU is woken by
    /// an interrupt through the hypervisor: measured here, that wake-up was a third of a
    /// one-connection round trip (bench/HISTORY.md). An idle loop sleeps at once.
    ///
    /// Polling stops paying when work comes seldom, and then it costs: the reader of the
    /// notifications just written (Claude Code), woken on the same CPU, waits for the poll to
    /// end unless the scheduler preempts it. With webhooks a millisecond apart and the two
    /// sharing a vCPU, polling after each one made their notifications 14–76 µs later at the
    /// median (bench/HISTORY.md, eighth session). So three polls
    /// in a row that run out their window turn polling off, and a sleep that input ends within
    /// four windows, the sign of a conversation again, turns it back on. One poll in vain is
    /// common in a conversation too (the client was not scheduled in time) and changes nothing.
    private func waitForReadiness() {
        let timeout = nextPassTurns.isEmpty ? EventLoop.tickIntervalMilliseconds : 0
        var found = false
        if timeout != 0 && busyPollNanoseconds > 0 && lastPassFoundWork && pollsInVain < EventLoop.pollsInVain {
            let until = clock.monotonicNanoseconds() &+ busyPollNanoseconds
            repeat {
                readiness.wait(into: &ready, timeoutMilliseconds: 0)
                busyPolls.add(1, ordering: .relaxed)
                found = !ready.isEmpty
            } while !found && clock.monotonicNanoseconds() < until
            pollsInVain = found ? 0 : pollsInVain + 1
        }
        if !found {
            let resumable = pollsInVain >= EventLoop.pollsInVain
            let asleep = resumable ? clock.monotonicNanoseconds() : 0
            readiness.wait(into: &ready, timeoutMilliseconds: timeout)
            if resumable && !ready.isEmpty && clock.monotonicNanoseconds() &- asleep <= 4 &* busyPollNanoseconds {
                pollsInVain = 0
            }
        }
        lastPassFoundWork = !ready.isEmpty
    }

    private func dispatch(_ event: ReadyEvent) {
        let fd = event.fd
        if fd == wakeup.fd {
            wakeup.drain()
            return
        }
        if event.writable, let handler = handlers[fd] {
            handler.writable()
        }
        if event.readable, let handler = handlers[fd] {
            handler.readable()
        }
    }

    private func runTurns() {
        for turn in runningTurns { turn() }
        runningTurns.removeAll(keepingCapacity: true)
    }

    /// Descriptors registered (loop thread only): what tests check is left after a stop.
    var registeredCount: Int { handlers.count }

    /// Whether turns wait for the next pass; with `runWaitingTurns`, how a test drives by hand
    /// a connection on a loop it has not started.
    var hasWaitingTurns: Bool { !nextPassTurns.isEmpty }

    /// Runs the turns waiting for the next pass now, as that pass would.
    func runWaitingTurns() {
        swap(&nextPassTurns, &runningTurns)
        runTurns()
    }

    private func runPending() {
        // Jobs may enqueue more jobs; keep going until the queue is empty, in bounded rounds so
        // sockets are not starved.
        for _ in 0..<64 {
            // The queues are swapped with the emptied pair the last round left, not copied
            // out: a copy left the queue's arrays shared, and emptying them then allocated two
            // new ones a round (six allocations a webhook with a connection a request).
            var jobs = spareJobs, closures = spareClosures
            spareJobs = []
            spareClosures = []
            pending.withLock { state in
                swap(&jobs, &state.jobs)
                swap(&closures, &state.closures)
            }
            if jobs.isEmpty && closures.isEmpty {
                (spareJobs, spareClosures) = (jobs, closures)
                return
            }
            round &+= 1
            for closure in closures { closure() }
            for job in jobs { job.runSynchronously(on: asUnownedSerialExecutor()) }
            jobs.removeAll(keepingCapacity: jobs.capacity <= Self.keptQueueCapacity)
            closures.removeAll(keepingCapacity: closures.capacity <= Self.keptQueueCapacity)
            (spareJobs, spareClosures) = (jobs, closures)
        }
        wake()
    }

    /// The emptied queues `runPending` keeps for its next round (loop thread only).
    private var spareJobs: [UnownedJob] = []
    private var spareClosures: [@Sendable () -> Void] = []
    /// A burst's queue longer than this is let go rather than kept for good.
    private static let keptQueueCapacity = 4096
}
