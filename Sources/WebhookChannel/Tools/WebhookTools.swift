import JSON
import Signing
import MCP

/// The tools Claude gets. None of them pairs, approves, revokes or shows a secret: those stay
/// with the person at the terminal.
public enum WebhookTools {
    /// `session` says what this server is for its state dir (hub, follower) and where webhooks arrive.
    static func all(state: ChannelState, replies: ReplySender, session: @escaping @Sendable () -> SessionCoordinator.Status)
        -> [MCPTool]
    {
        [reply(state: state, replies: replies), sources(state: state), events(state: state), event(state: state),
         deliveries(replies: replies), status(state: state, session: session)]
    }

    /// `webhook_event` returns a body of up to 1 MiB (more once JSON-escaped); Claude Code
    /// would otherwise cut a tool result far shorter.
    static let minimumEventResultChars = 1_500_000

    static func jsonText(_ value: JSONValue) -> String { String(decoding: JSONWriter.pretty(value), as: UTF8.self) }

    static func reply(state: ChannelState, replies: ReplySender) -> MCPTool {
        MCPTool(
            name: "webhook_reply",
            description: "Send a JSON payload back to a webhook source's callback URL, signed with its secret. "
                + "Use the source_id from the <channel> tag. Answers with the HTTP status, or says it is retrying.",
            inputSchema: [
                "type": "object",
                "properties": [
                    "source_id": ["type": "string", "description": "The source_id attribute of the channel tag (src_…)."],
                    "payload": ["description": "Any JSON value; it is sent as the request body."],
                    "event_id": ["type": "string", "description": "Optional: the event this answers (evt_…)."],
                ],
                "required": ["source_id", "payload"],
            ],
            annotations: ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true]
        ) { object throws(JSONRPCError) in
            let arguments = ToolArguments(object: object)
            let sourceID = try arguments.requiredString("source_id")
            guard let payload = object["payload"] else { throw .invalidParams("missing required argument \"payload\"") }
            let eventID = try arguments.optionalString("event_id")
            guard let source = await state.source(id: sourceID) else {
                return .error("No paired source has id \(sourceID.prefix(80)). webhook_sources lists them.")
            }
            return await replies.send(source: source, payload: payload, eventID: eventID)
        }
    }

    static func sources(state: ChannelState) -> MCPTool {
        MCPTool(
            name: "webhook_sources",
            description: "List the paired webhook sources: id, name, scheme, content mode, callback URL, when paired, "
                + "whether it is a permission approver, its event filter, events received. Never shows secrets.",
            inputSchema: MCPTool.noArguments,
            annotations: MCPTool.readOnly
        ) { _ throws(JSONRPCError) in
            let sources = await state.allSources()
            guard !sources.isEmpty else { return MCPToolResult(text: "No sources are paired.") }
            let list: [JSONValue] = sources.map { source, stats in
                var entry = source.listing
                entry["event_count"] = .int(Int64(stats.eventCount))
                entry["last_event_at"] = .optionalString(stats.lastEventAt.map(ISOTime.format))
                return .object(entry)
            }
            return MCPToolResult(text: jsonText(.array(list)))
        }
    }

    static func events(state: ChannelState) -> MCPTool {
        MCPTool(
            name: "webhook_events",
            description: "List recent webhook events (metadata only, newest first), optionally for one source. "
                + "\"filtered\": true marks an event the source's filter kept from the channel.",
            inputSchema: [
                "type": "object",
                "properties": [
                    "source_id": ["type": "string", "description": "Only events from this source."],
                    "limit": ["type": "integer", "minimum": 1, "maximum": 500, "description": "How many (default 20)."],
                ],
            ],
            annotations: MCPTool.readOnly
        ) { object throws(JSONRPCError) in
            let arguments = ToolArguments(object: object)
            let sourceID = try arguments.optionalString("source_id")
            let limit = try arguments.optionalInt("limit", range: 1...500) ?? 20
            let records = await state.recentEvents(sourceID: sourceID, limit: Int(limit))
                ?? Array(EventLog.readAll(directory: state.stateDirectory).reversed()
                    .filter { sourceID == nil || $0.sourceID == sourceID }.prefix(Int(limit)))
            guard !records.isEmpty else {
                // A source revoked since keeps its logged events; an id that is neither paired
                // nor in the log is most likely mistyped, and saying so beats an empty list.
                if let sourceID, await state.source(id: sourceID) == nil {
                    return .error("No source has id \(sourceID.prefix(80)), and no logged event came from one.")
                }
                return MCPToolResult(text: "No events logged.")
            }
            return MCPToolResult(text: jsonText(.array(records.map(EventLog.summary))))
        }
    }

    static func event(state: ChannelState) -> MCPTool {
        MCPTool(
            name: "webhook_event",
            description: "Show one webhook event in full (its whole body, also when the notification was truncated).",
            inputSchema: [
                "type": "object",
                "properties": ["event_id": ["type": "string", "description": "The event_id attribute (evt_…)."]],
                "required": ["event_id"],
            ],
            annotations: MCPTool.readOnly
        ) { object throws(JSONRPCError) in
            let eventID = try ToolArguments(object: object).requiredString("event_id")
            guard let record = await state.event(id: eventID) else {
                return .error("No logged event has id \(eventID.prefix(80)).")
            }
            guard case .object(var summary) = EventLog.summary(record) else { return .error("unreadable event") }
            summary["headers"] = .object(JSONObject(record.headers.map { ($0.name, .string($0.value)) }))
            if let text = String(validating: record.body, as: UTF8.self) {
                summary["body"] = .string(text)
            } else {
                summary["body_base64"] = .string(Base64.encode(record.body))
            }
            let text = jsonText(.object(summary))
            return MCPToolResult(text: text, meta: [
                "anthropic/maxResultSizeChars": .int(Int64(max(Self.minimumEventResultChars, text.utf8.count))),
            ])
        }
    }

    static func deliveries(replies: ReplySender) -> MCPTool {
        MCPTool(
            name: "webhook_deliveries",
            description: "Show recent webhook_reply deliveries, newest first, with each attempt's outcome.",
            inputSchema: [
                "type": "object",
                "properties": [
                    "limit": ["type": "integer", "minimum": 1, "maximum": 200, "description": "How many (default 20)."],
                ],
            ],
            annotations: MCPTool.readOnly
        ) { object throws(JSONRPCError) in
            let limit = try ToolArguments(object: object).optionalInt("limit", range: 1...200) ?? 20
            let records = replies.recentRecords(limit: Int(limit))
            guard !records.isEmpty else { return MCPToolResult(text: "No replies have been sent.") }
            let list: [JSONValue] = records.map { record in
                [
                    "delivery_id": .string(record.deliveryID), "source_id": .string(record.sourceID),
                    "event_id": .optionalString(record.eventID), "state": .string(record.state.rawValue),
                    "created_at": .string(ISOTime.format(record.createdAt)),
                    "attempts": .array(record.attempts.map { .string($0) }),
                ]
            }
            return MCPToolResult(text: jsonText(.array(list)))
        }
    }

    static func status(state: ChannelState, session: @escaping @Sendable () -> SessionCoordinator.Status) -> MCPTool {
        MCPTool(
            name: "webhook_status",
            description: "Show this channel's state: hub or follower, the address it takes webhooks on (or why it does not), "
                + "sources, approvers, pending pairing codes, connected sessions, notifications waiting to be written.",
            inputSchema: MCPTool.noArguments,
            annotations: MCPTool.readOnly
        ) { _ throws(JSONRPCError) in
            let sources = await state.allSources().map(\.0)
            let pending = await state.pendingCount
            let connected = await state.isClientConnected
            let waiting = state.notifier.waiting
            let session = session()
            let status: JSONObject = [
                "role": .string(session.role.rawValue),
                "listening": .optionalString(session.role == .hub ? session.address : nil),
                "hub": .optionalString(session.role == .follower ? session.address : nil),
                "hub_pid": session.hubPID.map { .int(Int64($0)) } ?? .null,
                "not_listening_reason": .optionalString(session.reason),
                "sources": .int(Int64(sources.count)),
                "approvers": .int(Int64(sources.count(where: \.isApprover))),
                "pending_pairings": .int(Int64(pending)),
                "sessions": .int(Int64(session.sessions.count)),
                "session_list": .array(session.sessions.map(\.json)),
                "mcp": .string(connected ? "connected" : "waiting"),
                "notifications_waiting": .int(Int64(waiting.messages)),
                "notification_bytes_waiting": .int(Int64(waiting.bytes)),
                "open_permission_requests": .int(Int64(state.permissionRelay.openRequestCount)),
            ]
            return MCPToolResult(text: jsonText(.object(status)))
        }
    }
}
