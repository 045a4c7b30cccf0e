#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// Where this server takes webhooks, or why it does not: what `webhook_status` reports.
public struct ListenerStatus: Sendable, Equatable {
    /// `HOST:PORT` when the HTTP server is listening.
    public var address: String?
    /// Why it is not listening, in words a person can act on.
    public var problem: String?

    public static func listening(_ address: String) -> ListenerStatus { ListenerStatus(address: address, problem: nil) }

    /// A failed bind. A taken port names the process holding it when `server.json` in the
    /// state dir names a live one (another session's server).
    public static func notListening(host: String, port: UInt16, error: any Error, directory: StateDirectory) -> ListenerStatus {
        guard let socketError = error as? SocketError, socketError.code == EADDRINUSE else {
            return ListenerStatus(address: nil, problem: "the HTTP server did not start (\(error))")
        }
        var problem = "port \(port) on \(host) is taken"
        if let holder = ServerFile(directory: directory).read(), holder.pid != getpid() {
            problem += " by pid \(holder.pid) (the webhook-channel server of another session, listening on \(holder.host):\(holder.port))"
        } else {
            problem += " by another program"
        }
        return ListenerStatus(address: nil, problem: problem)
    }
}
