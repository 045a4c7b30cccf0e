import Synchronization

/// Claude Code's tool-approval prompts, relayed to approver sources and answered by them
/// (SPEC 12).
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

    private let notifier: ChannelNotifier
    private let log: Logger
    /// Open request ids, oldest first.
    private let open = Mutex<[String]>([])

    init(notifier: ChannelNotifier, log: Logger) {
        self.notifier = notifier
        self.log = log
    }

    /// Claude Code's ids: five letters `a`–`z` without `l` (which reads like `1` or `I`).
    public static func isRequestID(_ text: String) -> Bool {
        text.utf8.count == 5 && text.utf8.allSatisfy { (0x61...0x7A).contains($0) && $0 != UInt8(ascii: "l") }
    }

    var openRequestCount: Int { open.withLock { $0.count } }

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
        open.withLock { open in
            open.removeAll { $0 == requestID }
            open.append(requestID)
            if open.count > Self.maxOpenRequests { open.removeFirst(open.count - Self.maxOpenRequests) }
        }
        var payload: JSONObject = ["type": "permission_request", "request_id": .string(requestID)]
        for key in ["tool_name", "description", "input_preview"] {
            payload[key] = .string(params?[key]?.stringValue ?? "")
        }
        let body = JSONValue.object(payload)
        let log = self.log
        for approver in approvers {
            Task.detached {
                let result = await replies.send(source: approver, payload: body, eventID: nil)
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
        let wasOpen = open.withLock { open in
            guard let index = open.firstIndex(of: requestID) else { return false }
            open.remove(at: index)
            return true
        }
        guard wasOpen else { return .unknownRequest }
        notifier.sendPermission(requestID: requestID, behavior: behavior.rawValue)
        log.info("permission: request \(requestID) answered \(behavior.rawValue)")
        return .answered(behavior)
    }
}
