import Synchronization
import Platform
import JSON
import MCP

/// Claude Code's tool-approval prompts, relayed to approver sources and answered by them
/// (README "Permission relay").
///
/// A prompt arrives on stdin as `notifications/claude/channel/permission_request`; it is
/// POSTed to every approver's callback by the same `ReplySender` as `webhook_reply` (one
/// signer, one retry policy) and its id is remembered as open. A verdict is a `v1=`-signed
/// `POST /webhook` from an approver; the first one for an open id is passed on to Claude Code
/// as `notifications/claude/channel/permission` and closes the id, so a second verdict, a
/// replayed delivery or an id never sent approves nothing. Verdicts are not channel events
/// and are not written to the event log.
public final class PermissionRelay: Sendable {
    public enum Behavior: String, Sendable { case allow, deny }

    public enum VerdictOutcome: Equatable, Sendable {
        /// Passed on to Claude Code.
        case answered(Behavior)
        /// Never sent, already answered, or forgotten (older than the newest `maxOpenRequests`).
        case unknownRequest
        /// The request id or behavior is malformed; the text says which.
        case invalid(String)
    }

    /// The body `type` that marks a verdict.
    static let verdictType = "permission_verdict"
    /// Claude Code asks rarely and each prompt waits for a person; older ids than these are
    /// long answered at the terminal (which Claude Code does not tell channels).
    static let maxOpenRequests = 256

    /// Where a verdict goes: this session's Claude Code, or (on the hub) the follower session
    /// whose Claude Code asked.
    typealias Answer = @Sendable (Behavior) -> Void

    private struct OpenRequest {
        var id: String
        var answer: Answer?
        /// On the hub, the follower link whose session asked (`forget` when it goes away).
        var owner: ObjectIdentifier? = nil
    }

    private let notifier: ChannelNotifier
    private let log: Logger
    /// Open request ids, oldest first; `answer` nil means this session's own.
    private let open = Mutex<[OpenRequest]>([])
    /// Set while this process follows a hub: verdicts arrive at the hub's port, so each
    /// request id is also registered there (`HubServer`), which sends the verdict back here.
    private let hubRegistration = Mutex<(@Sendable (String) -> Void)?>(nil)

    init(notifier: ChannelNotifier, log: Logger) {
        self.notifier = notifier
        self.log = log
    }

    /// Claude Code's ids: five letters `a`–`z` without `l` (which reads like `1` or `I`).
    public static func isRequestID(_ text: String) -> Bool {
        text.utf8.count == 5 && text.utf8.allSatisfy { (0x61...0x7A).contains($0) && $0 != UInt8(ascii: "l") }
    }

    var openRequestCount: Int { open.withLock { $0.count } }

    /// Set when this process follows a hub (nil when it is the hub). A hub met after a
    /// hand-over knows none of this session's open prompts: they are registered with it again,
    /// so their verdicts still reach this session.
    func registerWithHub(_ register: (@Sendable (String) -> Void)?) {
        hubRegistration.withLock { $0 = register }
        guard let register else { return }
        let own = open.withLock { open in open.filter { $0.answer == nil }.map(\.id) }
        for id in own { register(id) }
    }

    /// On the hub: a follower's Claude Code asked; its verdict goes back through `answer`.
    /// `owner` names the follower's link, so its requests can be forgotten when it goes.
    func remember(requestID: String, owner: ObjectIdentifier, answer: @escaping Answer) {
        guard Self.isRequestID(requestID) else { return }
        remember(OpenRequest(id: requestID, answer: answer, owner: owner))
    }

    /// On the hub: a follower went away, and no one is left to take its verdicts, which are
    /// then `404 unknown_request` rather than acknowledged and dropped.
    func forget(owner: ObjectIdentifier) {
        open.withLock { open in open.removeAll { $0.owner == owner } }
    }

    private func remember(_ request: OpenRequest) {
        open.withLock { open in
            open.removeAll { $0.id == request.id }
            open.append(request)
            if open.count > Self.maxOpenRequests { open.removeFirst(open.count - Self.maxOpenRequests) }
        }
    }

    // MARK: Requests (MCP side)

    /// Sends one prompt to every approver and remembers its id. Returns at once; the sends
    /// (first attempt, then the reply retries) run in the background.
    public func relay(request params: JSONValue?, approvers: [SourceRecord], replies: ReplySender) {
        guard let requestID = params?["request_id"]?.stringValue, Self.isRequestID(requestID) else {
            log.info("permission: ignored a request without a valid request_id")
            return
        }
        guard !approvers.isEmpty else {
            log.info("permission: request \(requestID) not relayed: no source is an approver")
            return
        }
        remember(OpenRequest(id: requestID, answer: nil))
        hubRegistration.withLock { $0 }?(requestID)
        var payload: JSONObject = ["type": "permission_request", "request_id": .string(requestID)]
        for key in ["tool_name", "description", "input_preview"] {
            payload[key] = .string(params?[key]?.stringValue ?? "")
        }
        let body = JSONValue.object(payload)
        let log = self.log
        for approver in approvers {
            replies.inBackground {
                let result = await replies.send(source: approver, payload: body, eventID: nil, pool: CallbackClient.promptPool)
                log.info("permission: request \(requestID) to \(approver.id): \(result.isError ? "failed" : "sent") (\(result.text.prefix(200)))")
            }
        }
    }

    // MARK: Verdicts (HTTP side)

    /// A verdict's body fields, from a verified `v1=` delivery of an approver source.
    func answer(requestID: String?, behavior: String?) -> VerdictOutcome {
        guard let requestID, Self.isRequestID(requestID) else {
            return .invalid("\"request_id\" must be five letters a-z without l.")
        }
        guard let behavior = behavior.flatMap(Behavior.init(rawValue:)) else {
            return .invalid("\"behavior\" must be \"allow\" or \"deny\".")
        }
        let request = open.withLock { open -> OpenRequest? in
            guard let index = open.firstIndex(where: { $0.id == requestID }) else { return nil }
            return open.remove(at: index)
        }
        guard let request else { return .unknownRequest }
        if let answer = request.answer {
            answer(behavior)
        } else {
            notifier.sendPermission(requestID: requestID, behavior: behavior.rawValue)
        }
        log.info("permission: request \(requestID) answered \(behavior.rawValue)")
        return .answered(behavior)
    }
}
