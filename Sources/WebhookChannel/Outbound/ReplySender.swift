#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization
import Platform
import JSON
import Signing
import MCP

/// Sends Claude's replies to a source's callback URL: signed like the seed's receivers expect,
/// retried on network errors, 5xx and 429 (after 1 s, 5 s, 30 s, or `Retry-After` up to a cap),
/// never on other answers. The first attempt's outcome is returned; later ones are recorded.
public final class ReplySender: Sendable {
    public static let retryDelays: [Double] = [1, 5, 30]
    public static let maxRetryAfter: Double = 120
    static let maxRecords = 200

    public enum State: String, Sendable { case delivered, retrying, failed }

    public struct Record: Sendable {
        public let deliveryID: String
        public let sourceID: String
        public let eventID: String?
        public let createdAt: Double
        public var state: State
        public var attempts: [String]
    }

    private let policy: CallbackURLPolicy
    private let clock: any Clock
    private let log: Logger
    private let timeout: Double
    private let delays: [Double]
    private let records = Mutex<[Record]>([])
    private let executor: (any TaskExecutor)?

    /// `executor` is where the sends started in the background run (retry loops, permission
    /// prompts): the server passes the MCP side's, so no task falls to Swift's global
    /// executor; nil (tests) is the global executor.
    public init(policy: CallbackURLPolicy, clock: any Clock, log: Logger, timeout: Double = 10,
                delays: [Double] = ReplySender.retryDelays, executor: (any TaskExecutor)? = nil)
    {
        self.policy = policy
        self.clock = clock
        self.log = log
        self.timeout = timeout
        self.delays = delays
        self.executor = executor
    }

    /// Runs `work` as a task of its own on the sender's executor. (`Task {}` would not do:
    /// an unstructured task does not inherit its creator's executor preference.)
    func inBackground(_ work: @escaping @Sendable () async -> Void) {
        Task.detached(executorPreference: executor) { await work() }
    }

    public func recentRecords(limit: Int) -> [Record] {
        records.withLock { Array($0.suffix(limit).reversed()) }
    }

    /// `pool` is where its POSTs wait for a thread: replies share `CallbackClient.pool`;
    /// permission prompts, which a person waits on, have a pool of their own
    /// (`CallbackClient.promptPool`), so replies stalled on a slow receiver never queue them.
    public func send(source: SourceRecord, payload: JSONValue, eventID: String?,
                     pool: WorkerPool = CallbackClient.pool) async -> MCPToolResult {
        guard let url = source.callbackURL else {
            return .error("Source \(source.id) has no callback URL, so there is nowhere to reply.")
        }
        let body = JSONWriter.compact(payload)
        let deliveryID = "msg_" + SecureRandom.hex(12)
        record(Record(deliveryID: deliveryID, sourceID: source.id, eventID: eventID, createdAt: clock.now(),
                      state: .retrying, attempts: []))
        let first = await attempt(number: 1, deliveryID: deliveryID, source: source, url: url, body: body, eventID: eventID,
                                  pool: pool)
        switch first {
        case .delivered(let status):
            return MCPToolResult(text: "Delivered to \(source.name) (\(source.id)): HTTP \(status) on attempt 1. Delivery id \(deliveryID).")
        case .final(let reason):
            return .error("Reply to \(source.name) (\(source.id)) failed: \(reason). Not retried. Delivery id \(deliveryID).")
        case .retry(let reason, let after):
            let wait = after ?? delays[0]
            inBackground { [self] in
                await self.retryLoop(deliveryID: deliveryID, source: source, url: url, body: body, eventID: eventID,
                                     firstWait: wait, pool: pool)
            }
            return MCPToolResult(text: "First attempt to \(source.name) (\(source.id)) did not succeed (\(reason)); "
                + "retrying in \(Self.seconds(wait)) s, up to \(delays.count) more attempts. Delivery id \(deliveryID); "
                + "webhook_deliveries shows the outcome.")
        }
    }

    private enum Outcome {
        case delivered(Int)
        case retry(String, after: Double?)
        case final(String)
    }

    private func retryLoop(deliveryID: String, source: SourceRecord, url: String, body: [UInt8], eventID: String?,
                           firstWait: Double, pool: WorkerPool) async {
        var wait = firstWait
        for (index, _) in delays.enumerated() {
            await clock.sleep(nanoseconds: UInt64(wait * 1e9))
            let number = index + 2
            switch await attempt(number: number, deliveryID: deliveryID, source: source, url: url, body: body, eventID: eventID,
                                 pool: pool) {
            case .delivered, .final:
                return
            case .retry(_, let after):
                guard index + 1 < delays.count else {
                    update(deliveryID) { $0.state = .failed }
                    log.info("reply \(deliveryID) to \(source.id) failed after \(number) attempts")
                    return
                }
                wait = after ?? delays[index + 1]
            }
        }
    }

    private func attempt(number: Int, deliveryID: String, source: SourceRecord, url: String, body: [UInt8], eventID: String?,
                         pool: WorkerPool) async -> Outcome {
        let timestamp = Int64(clock.now())
        var headers: [(String, String)] = [("Content-Type", "application/json"), ("X-Source-Id", source.id)]
        headers += SignatureScheme.signingHeaders(scheme: .webhook, secret: source.hmacSecret, body: body,
                                                  timestamp: timestamp, deliveryID: deliveryID)
        if let eventID { headers.append(("X-Event-Id", eventID)) }
        var policy = self.policy
        if source.allowsPrivateCallback { policy.allowPrivate = true }
        let result = await CallbackClient.post(url: url, headers: headers, body: body, policy: policy, timeout: timeout,
                                              clock: clock, pool: pool)
        let outcome: Outcome
        switch result {
        case .success(let response) where (200...299).contains(response.status):
            outcome = .delivered(response.status)
        case .success(let response) where response.status == 429 || response.status >= 500:
            outcome = .retry("HTTP \(response.status)", after: response.retryAfter.map { min(max($0, 0), ReplySender.maxRetryAfter) })
        case .success(let response):
            let note = (300...399).contains(response.status) ? " (redirects are not followed)" : ""
            outcome = .final("the receiver answered HTTP \(response.status)\(note)")
        case .failure(let failure):
            outcome = failure.retryable ? .retry(failure.reason, after: nil) : .final(failure.reason)
        }
        let line: String
        switch outcome {
        case .delivered(let status): line = "attempt \(number): HTTP \(status), delivered"
        case .retry(let reason, _): line = "attempt \(number): \(reason)"
        case .final(let reason): line = "attempt \(number): \(reason), not retried"
        }
        update(deliveryID) { record in
            record.attempts.append(line)
            switch outcome {
            case .delivered: record.state = .delivered
            case .final: record.state = .failed
            case .retry: record.state = .retrying
            }
        }
        log.info("reply \(deliveryID) to \(source.id): \(line)")
        return outcome
    }

    private func record(_ record: Record) {
        records.withLock { records in
            records.append(record)
            if records.count > ReplySender.maxRecords { records.removeFirst(records.count - ReplySender.maxRecords) }
        }
    }

    private func update(_ deliveryID: String, _ change: (inout Record) -> Void) {
        records.withLock { records in
            if let index = records.lastIndex(where: { $0.deliveryID == deliveryID }) { change(&records[index]) }
        }
    }

    /// Whole seconds as "5", shorter waits (test settings, a fractional Retry-After) as "0.2".
    static func seconds(_ value: Double) -> String {
        if value >= 1 && value == value.rounded() { return String(Int(value)) }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
