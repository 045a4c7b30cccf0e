#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import JSON

/// `webhook-channel status`: is a server running, where, and what it holds.
enum StatusCommand {
    static let help = """
    Usage: webhook-channel status [--json]

    Say whether a server is running for this state dir (WEBHOOK_STATE_DIR), on which port, and how
    many sources and pending pairing codes there are. Exit code 1 when no server runs.
    """

    static func run(_ arguments: [String], console: inout Console) -> Int32 {
        let start = CommandStart.begin("status", arguments, help: help, flags: ["--json"], positionals: [0],
                                       expected: "takes no arguments", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let store = operatorStore()
        let file: SourcesFile
        do { (file, _) = try store.load() } catch {
            console.err("webhook-channel status: \(error)")
            return 1
        }
        let pending = PairingBook.livePending(file, now: SystemClock().now()).count
        let server = ServerFile(directory: store.directory).read()
        let sessions = ServerFile(directory: store.directory).sessions()
        if parsed.flags.contains("--json") {
            var object: JSONObject = ["running": .bool(server != nil), "sources": .int(Int64(file.sources.count)),
                                      "pending": .int(Int64(pending)), "state_dir": .string(store.directory.path)]
            if let server {
                object["host"] = .string(server.host)
                object["port"] = .int(Int64(server.port))
                object["sessions"] = .array(sessions.map(\.json))
            }
            console.out(JSONWriter.compactString(.object(object)))
        } else {
            if let server {
                console.out("Server running on \(server.host):\(server.port) (port \(server.port))")
                for session in sessions {
                    console.out("  \(session.role.rawValue)  pid \(session.pid)  \(session.directory)")
                }
            } else {
                console.out("No server is running for \(store.directory.path)")
            }
            console.out("Sources: \(file.sources.count)\nPending pairings: \(pending)\nState dir: \(store.directory.path)")
        }
        return server == nil ? 1 : 0
    }
}
