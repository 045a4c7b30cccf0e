#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import JSON

/// `events` and `replay`: the event log from the terminal.
enum EventCommands {
    static let eventsHelp = """
    Usage: webhook-channel events [--source SOURCE_ID] [--limit N] [--json]

    List logged events, newest first (default 20).
    """

    static let replayHelp = """
    Usage: webhook-channel replay EVENT_ID

    Deliver a logged event to the running session again, marked replay="true".
    """

    static func events(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("events", arguments, help: eventsHelp, flags: ["--json"], options: ["--source", "--limit"], positionals: [0],
                                       expected: "takes no positional arguments", console: console)
        guard case .run(let parsed) = start else { return start.status }
        var limit = 20
        if let text = parsed.options["--limit"] {
            guard let value = Int(text), value > 0 else { return usage("events", "--limit must be a positive number", eventsHelp, console) }
            limit = value
        }
        let source = parsed.options["--source"]
        let all: [EventRecord]
        do { all = try EventLog.readAllChecked(directory: operatorStore().directory) } catch {
            console.err("webhook-channel events: \(error)")
            return 1
        }
        // An id that is neither paired nor in the log is a mistake (exit 1, as `revoke` and `send`
        // say); a revoked source's id still lists what it sent.
        if let source, !all.contains(where: { $0.sourceID == source }) {
            let paired: Bool
            do { paired = try operatorStore().load().0.source(id: source) != nil } catch {
                console.err("webhook-channel events: \(error)")
                return 1
            }
            if !paired {
                console.err("No source has id \(source.prefix(80)).")
                return 1
            }
        }
        let records = all.reversed().filter { source == nil || $0.sourceID == source }.prefix(limit)
        if parsed.flags.contains("--json") {
            console.out(JSONWriter.compactString(["events": .array(records.map(EventLog.summary))]))
            return 0
        }
        guard !records.isEmpty else { console.out("No events logged."); return 0 }
        for record in records {
            console.out("\(record.id)  \(ISOTime.format(record.receivedAt))  \(record.sourceID) (\(record.sourceName))  "
                + "type=\(record.type ?? "-")  delivery=\(record.deliveryID ?? "-")  \(record.size) bytes")
        }
        return 0
    }

    static func replay(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("replay", arguments, help: replayHelp, positionals: [1],
                                       expected: "expected exactly one EVENT_ID", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let eventID = parsed.positionals[0]
        let directory = operatorStore().directory
        guard let server = ServerFile(directory: directory).read(), let token = ControlToken.read(directory: directory) else {
            console.err("No server is running for \(directory.path).")
            return 1
        }
        let body = JSONWriter.compact(["event_id": .string(eventID)])
        let headers = [("Content-Type", "application/json"), ("Authorization", "Bearer \(token)")]
        switch CallbackClient.postBlocking(url: "http://\(server.host):\(server.port)/control/replay", headers: headers, body: body,
                                           policy: CallbackURLPolicy(), timeout: 10) {
        case .success(let response) where response.status == 200:
            console.out("Replayed \(eventID).")
            return 0
        case .success(let response):
            console.err("Replay refused: HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self))")
            return 1
        case .failure(let failure):
            console.err("webhook-channel replay: \(failure.reason)")
            return 1
        }
    }
}
