import Platform
import JSON
import Synchronization

/// What a JSON-RPC session dispatches to. The session knows framing and error rules; the
/// handler knows methods.
public protocol JSONRPCHandler: Sendable {
    /// Answers a request; throw a `JSONRPCError` to answer with an error.
    func handleRequest(method: String, params: JSONValue?) async throws(JSONRPCError) -> JSONValue
    /// Whether a request is answered inline, before the next line is read (for `initialize`,
    /// whose effects the following lines rely on), or concurrently.
    func isOrdered(method: String) -> Bool
    /// Whether a request's answer may be large (a tool that reads the event log): such answers
    /// are built one at a time, and only while the output has room (`JSONRPCSession`).
    func isLarge(method: String, params: JSONValue?) -> Bool
    func handleNotification(method: String, params: JSONValue?) async
}

extension JSONRPCHandler {
    public func isLarge(method: String, params: JSONValue?) -> Bool { false }
}

/// Runs newline-delimited JSON-RPC 2.0 over a line source and the protocol output.
/// One bad line never ends the session: it is answered (or, as a notification, ignored) and the
/// loop goes on.
public final class JSONRPCSession: Sendable {
    private let output: ProtocolOutput
    private let handler: any JSONRPCHandler
    private let log: Logger
    /// Where requests answered concurrently run (nil: Swift's global executor).
    private let executor: (any TaskExecutor)?
    /// Requests being answered concurrently.
    private let inFlight = Atomic<Int>(0)
    /// Large answers are built one at a time, each once the output has room: requests read
    /// while the client was not reading (they are small) would otherwise all be answered
    /// into memory at once (120 answers of 1 MB: 190 MiB).
    private let largeAnswers = AsyncGate()

    /// Past this much unwritten output (a client that stopped reading stdout), no further
    /// message is taken until it drains: the reader then stops reading stdin, and the client's
    /// writes wait in its own pipe. Channel events have their own, lower bound (SPEC §9).
    public static let maxUnwrittenBytes = 8 << 20
    /// At most this many requests are answered at once; the next waits for one to finish.
    /// With `maxUnwrittenBytes`, this bounds what replies can hold in memory. Generous: a
    /// reply waiting on a slow receiver (up to 10 s) holds its place, and a handful of those
    /// must not keep a `ping` waiting. Results that take memory (log reads) are built on the
    /// `mcp` thread one at a time and then count as unwritten output.
    public static let maxRequestsInFlight = 256
    /// How often a session held back re-checks for room (only while it is held back).
    static let roomPollMilliseconds = 5

    public init(output: ProtocolOutput, handler: any JSONRPCHandler, log: Logger, executor: (any TaskExecutor)? = nil) {
        self.output = output
        self.handler = handler
        self.log = log
        self.executor = executor
    }

    /// Returns as soon as the input ends, without waiting for tool calls still running: the
    /// process exits promptly on EOF even while a reply waits on a slow receiver.
    public func run<Events: AsyncSequence<LineReader.Event, Never>>(_ events: Events) async {
        for await event in events {
            switch event {
            case .endOfInput:
                return
            case .oversized:
                await waitForRoom()
                log.info("mcp: discarded a line over \(LineReader.defaultMaxLineBytes) bytes")
                output.send(line: JSONRPCMessage.encodeError(
                    id: .null, error: .invalidRequest("message exceeds the 1 MiB line limit")))
            case .line(let bytes):
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                await waitForRoom()
                await handleLine(bytes)
            }
        }
    }

    private func handleLine(_ bytes: [UInt8]) async {
        switch JSONRPCMessage.decode(bytes) {
        case .invalid(let id, let error):
            log.info("mcp: answered error \(error.code) to a malformed message (\(bytes.count) bytes)")
            output.send(line: JSONRPCMessage.encodeError(id: id, error: error))
        case .response:
            log.info("mcp: ignored a response to a request we never sent")
        case .notification(let method, let params):
            await handler.handleNotification(method: method, params: params)
        case .request(let id, let method, let params):
            if handler.isOrdered(method: method) {
                await answer(id: id, method: method, params: params)
            } else {
                inFlight.add(1, ordering: .relaxed)
                let large = handler.isLarge(method: method, params: params)
                Task(executorPreference: executor) {
                    if large {
                        await self.largeAnswers.enter()
                        await self.waitForOutputRoom()
                    }
                    await self.answer(id: id, method: method, params: params)
                    if large { self.largeAnswers.leave() }
                    self.inFlight.subtract(1, ordering: .relaxed)
                }
            }
        }
    }

    /// Holds the session back while the client is not taking what it was sent, or while
    /// enough requests are being answered.
    private func waitForRoom() async {
        while output.unwrittenBytes >= Self.maxUnwrittenBytes
            || inFlight.load(ordering: .relaxed) >= Self.maxRequestsInFlight
        {
            // The process's own timer, not `Task.sleep` (whose timers are libdispatch's threads).
            await TimerThread.shared.sleep(nanoseconds: UInt64(Self.roomPollMilliseconds) * 1_000_000)
        }
    }

    private func waitForOutputRoom() async {
        while output.unwrittenBytes >= Self.maxUnwrittenBytes {
            await TimerThread.shared.sleep(nanoseconds: UInt64(Self.roomPollMilliseconds) * 1_000_000)
        }
    }

    private func answer(id: JSONValue, method: String, params: JSONValue?) async {
        do {
            let result = try await handler.handleRequest(method: method, params: params)
            output.send(line: JSONRPCMessage.encodeResult(id: id, result: result))
        } catch {
            output.send(line: JSONRPCMessage.encodeError(id: id, error: error))
        }
    }
}

/// One task at a time past `enter` until it calls `leave`; the others wait, in order, without
/// a thread (their continuations resume on their own executor). No actor: an actor's jobs
/// would run on Swift's global executor.
final class AsyncGate: Sendable {
    private let state = Mutex<(busy: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func enter() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if !state.busy {
                    state.busy = true
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func leave() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.busy = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
