import Foundation
import Glibc
import CLinux
import Synchronization

/// Something the event loop tells about readiness on a descriptor. Called on the loop thread.
public protocol EventLoopHandler: AnyObject {
    func readable()
    func writable()
    /// Called about every `tickInterval` so handlers can enforce timeouts without one timer each.
    func tick(now: UInt64)
}

/// One thread running epoll. It is also a Swift `SerialExecutor`: the state actor runs its jobs
/// here, so the HTTP side (already on this thread) reaches the actor synchronously, with no
/// hop and no allocation per request, while the MCP side reaches it with an ordinary `await`.
public final class EventLoop: SerialExecutor, @unchecked Sendable {
    public static let tickIntervalMilliseconds: Int32 = 250

    private let epollFD: Int32
    private let wakeFD: Int32
    private let pending = Mutex<(jobs: [UnownedJob], closures: [@Sendable () -> Void])>(([], []))
    private let stopFlag = Atomic<Bool>(false)
    private var threadID: pthread_t?
    /// Only touched on the loop thread.
    private var handlers: [Int32: any EventLoopHandler] = [:]
    private var lastTick: UInt64 = 0
    /// Counts rounds: each return of `epoll_wait`, and each batch of queued jobs taken, starts
    /// one, so what a round handles was received before it began (or during its own few
    /// microseconds). Read on the loop thread only.
    public private(set) var round: UInt64 = 0
    /// The descriptor handled first in each round (see `register(first:)`), or -1.
    private var firstFD: Int32 = -1
    /// Only touched on the loop thread.
    private var endOfPassActions: [() -> Void] = []
    private let finished = ConditionSignal()
    private let isFinished = Atomic<Bool>(false)

    public init() throws(SocketError) {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw SocketError.system("epoll_create1") }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else { throw SocketError.system("eventfd") }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeFD
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event) == 0 else { throw SocketError.system("epoll_ctl") }
    }

    /// Starts the loop on its own thread.
    public func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "event-loop"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Asks the loop to stop and waits (bounded) until it has.
    public func stop(timeoutMilliseconds: Int = 300) {
        stopFlag.store(true, ordering: .releasing)
        wake()
        let deadline = MonotonicClock.nowNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while !isFinished.load(ordering: .acquiring), MonotonicClock.nowNanoseconds() < deadline {
            finished.wait(timeoutMilliseconds: 20)
        }
    }

    public var inLoopThread: Bool {
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
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
    /// one `epoll_wait`, then the queued jobs), and once more when the loop stops. Work that
    /// the many requests of one pass produce (waking the stdout writer, appending to the event
    /// log) is then done once per pass instead of once per request.
    public func addEndOfPassAction(_ action: @escaping @Sendable () -> Void) {
        execute { [self] in endOfPassActions.append(action) }
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
        var event = epoll_event()
        event.events = mask(readable: readable, writable: writable)
        event.data.fd = fd
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
            handlers[fd] = nil
            throw SocketError.system("epoll_ctl(ADD)")
        }
    }

    public func modify(fd: Int32, readable: Bool, writable: Bool) {
        var event = epoll_event()
        event.events = mask(readable: readable, writable: writable)
        event.data.fd = fd
        _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
    }

    public func unregister(fd: Int32) {
        handlers[fd] = nil
        if fd == firstFD { firstFD = -1 }
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
    }

    private func mask(readable: Bool, writable: Bool) -> UInt32 {
        var bits: UInt32 = EPOLLRDHUP.rawValue
        if readable { bits |= EPOLLIN.rawValue }
        if writable { bits |= EPOLLOUT.rawValue }
        return bits
    }

    // MARK: Loop

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    private func run() {
        threadID = pthread_self()
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        lastTick = MonotonicClock.nowNanoseconds()
        while !stopFlag.load(ordering: .acquiring) {
            let count = events.withUnsafeMutableBufferPointer {
                epoll_wait(epollFD, $0.baseAddress, Int32($0.count), EventLoop.tickIntervalMilliseconds)
            }
            round &+= 1
            if count > 0 {
                let first = firstFD
                if first >= 0 {
                    for index in 0..<Int(count) where events[index].data.fd == first { dispatch(events[index]) }
                }
                for index in 0..<Int(count) where events[index].data.fd != first { dispatch(events[index]) }
            }
            runPending()
            for action in endOfPassActions { action() }
            let now = MonotonicClock.nowNanoseconds()
            if now - lastTick >= UInt64(EventLoop.tickIntervalMilliseconds) * 1_000_000 {
                lastTick = now
                for handler in handlers.values { handler.tick(now: now) }
            }
        }
        for fd in Array(handlers.keys) {
            unregister(fd: fd)
            close(fd)
        }
        runPending()
        for action in endOfPassActions { action() }
        isFinished.store(true, ordering: .releasing)
        finished.signal()
    }

    private func dispatch(_ event: epoll_event) {
        let fd = event.data.fd
        if fd == wakeFD {
            var value: UInt64 = 0
            _ = read(wakeFD, &value, 8)
            return
        }
        let bits = event.events
        if bits & (EPOLLOUT.rawValue | EPOLLERR.rawValue) != 0, let handler = handlers[fd] {
            handler.writable()
        }
        if bits & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue | EPOLLERR.rawValue) != 0,
           let handler = handlers[fd]
        {
            handler.readable()
        }
    }

    private func runPending() {
        // Jobs may enqueue more jobs; keep going until the queue is empty, in bounded rounds so
        // sockets are not starved.
        for _ in 0..<64 {
            let (jobs, closures) = pending.withLock { state in
                let taken = (state.jobs, state.closures)
                state.jobs.removeAll(keepingCapacity: true)
                state.closures.removeAll(keepingCapacity: true)
                return taken
            }
            if jobs.isEmpty && closures.isEmpty { return }
            round &+= 1
            for closure in closures { closure() }
            for job in jobs { job.runSynchronously(on: asUnownedSerialExecutor()) }
        }
        wake()
    }
}
