#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Synchronization
import Platform
import JSON
import MCP

/// A follower's side of `hub.sock`: attached to the hub, it writes the notification lines the
/// hub sends to its own stdout, as its own channel events (same `event_id`).
///
/// One thread reads the hub. It stops reading while this session's own stdout is backed up
/// (or Claude Code has not initialised yet), so the hub's bound for this follower applies
/// instead of this process's memory growing.
final class HubFollower: @unchecked Sendable {
    struct Welcome: Sendable {
        var hubPID: Int32
        var host: String
        var port: UInt16
    }

    private let fd: Int32
    /// The reader that took the welcome: it may hold the first events already (same read).
    private let firstReader: FrameReader
    private let writing = Mutex(())
    let welcome: Welcome
    private let output: ProtocolOutput
    private let notifier: ChannelNotifier

    /// Connects to the hub of `directory` and says who this session is. Nil when no hub
    /// answers there (none, or a stale socket from a hub that crashed).
    init?(directory: StateDirectory, own: SessionInfo, output: ProtocolOutput, notifier: ChannelNotifier) {
        guard let fd = UnixSocket.connected(to: HubServer.socketPath(for: directory)) else { return nil }
        let hello = JSONWriter.compactString([
            "type": "hello", "pid": .int(Int64(own.pid)), "directory": .string(own.directory),
        ])
        UnixSocket.setReceiveTimeout(fd, seconds: 5)
        var reader = FrameReader(fd: fd, maxLine: HubServer.maxFrameBytes)
        guard writeFully(fd, Array((hello + "\n").utf8)) == 0, case .line(let line) = reader.next(),
              let value = try? JSONParser.parse(line), value["type"]?.stringValue == "welcome",
              let pid = value["hub_pid"]?.intValue, let host = value["host"]?.stringValue,
              let port = value["port"]?.intValue, (1...65535).contains(port)
        else {
            close(fd)
            return nil
        }
        UnixSocket.setReceiveTimeout(fd, seconds: 0)
        self.fd = fd
        firstReader = reader
        self.output = output
        self.notifier = notifier
        welcome = Welcome(hubPID: Int32(truncatingIfNeeded: pid), host: host, port: UInt16(port))
    }

    /// Tells the hub that this session's Claude Code asked for a permission verdict (the
    /// verdict arrives at the hub's port and comes back here).
    func registerPermissionRequest(_ requestID: String) {
        let frame = JSONWriter.compactString(["type": "permission_request", "request_id": .string(requestID)]) + "\n"
        writing.withLock { _ in _ = writeFully(fd, Array(frame.utf8)) }
    }

    /// Reads the hub until it goes away, then calls `onLost` once (on the reader thread).
    func run(onLost: @escaping @Sendable () -> Void) {
        DetachedThread.start(name: "hub-follower") { [self] in
            var reader = firstReader
            reader.maxLine = 4 << 20
            while case .line(let line) = reader.next() {
                // The hub (same user, its own socket) sends whole JSON-RPC lines; they are passed
                // on as they are, not parsed again.
                guard line.first == UInt8(ascii: "{") else { continue }
                waitForRoom()
                output.send(line: line)
            }
            close(fd)
            onLost()
        }
    }

    /// Holds the reader while this session cannot take more (not initialised, or its stdout
    /// backlog at the bound): the hub then buffers, up to its own bound, and past it answers
    /// `503 backlog`. The hub's lines go out with `send`, so they count in what stdout has not
    /// written (`unwrittenBytes`), not in the notifier's event backlog.
    private func waitForRoom() {
        while true {
            let waiting = notifier.waiting
            if notifier.isInitialized, waiting.messages < ChannelNotifier.maxWaitingEvents,
               waiting.bytes + output.unwrittenBytes < ChannelNotifier.maxWaitingBytes { return }
            usleep(10_000)
        }
    }
}
