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
    /// `after`: the last event this session was passed by a hub it followed before; the new
    /// hub sends what its log holds after it first.
    init?(directory: StateDirectory, own: SessionInfo, after: String? = nil, output: ProtocolOutput, notifier: ChannelNotifier) {
        guard let fd = UnixSocket.connected(to: HubServer.socketPath(for: directory)) else { return nil }
        var helloObject: JSONObject = [
            "type": "hello", "pid": .int(Int64(own.pid)), "directory": .string(own.directory), "reports_passed": true,
        ]
        if let after { helloObject["after"] = .string(after) }
        let hello = JSONWriter.compactString(.object(helloObject))
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
        send(["type": "permission_request", "request_id": .string(requestID)])
    }

    /// Tells the hub how many events this session has passed on since it attached: the hub
    /// keeps the log generations holding the rest (`FollowerHold`).
    private func reportPassed(_ count: Int) {
        send(["type": "passed", "count": .int(Int64(count))])
    }

    /// One frame to the hub (the reader thread and the MCP side both send).
    private func send(_ frame: JSONObject) {
        let line = JSONWriter.compactString(.object(frame)) + "\n"
        writing.withLock { _ in _ = writeFully(fd, Array(line.utf8)) }
    }

    /// Reads the hub until it goes away, then calls `onLost` once (on the reader thread).
    /// `onEvent` gets the `event_id` of each channel event passed on.
    func run(onEvent: @escaping @Sendable (String) -> Void = { _ in }, onLost: @escaping @Sendable () -> Void) {
        DetachedThread.start(name: "hub-follower") { [self] in
            var reader = firstReader
            reader.maxLine = 4 << 20
            var reports = PassedReports()
            let clock = SystemClock()
            let reportIfChanged = {
                // The lines of this read, queued below, go out now with one `write` from this
                // thread (the rest, if stdout is full, from the writer thread).
                self.output.writeQueued()
                let fd = self.fd
                guard let count = reports.due(now: clock.monotonicNanoseconds(), moreArrives: { wait in
                    Self.moreArrives(on: fd, withinNanoseconds: wait)
                }) else { return }
                self.reportPassed(count)
                reports.sent(count, at: clock.monotonicNanoseconds())
            }
            while case .line(let line) = reader.next(beforeReading: reportIfChanged) {
                // The hub (same user, its own socket) sends whole JSON-RPC lines; they are passed
                // on as they are, not parsed again.
                guard line.first == UInt8(ascii: "{") else { continue }
                // A hub that leaves while this session is not reading must still be noticed:
                // this process may have to take the port over. What it had sent and was not
                // read yet is in the log (`ChannelState.catchUp`).
                guard waitForRoom() else { break }
                output.enqueue(line: line)
                if let id = Self.eventID(in: line) {
                    onEvent(id)
                    reports.passedOne()
                }
            }
            // Lines queued since the last read (the hub sent one too long, or left while this
            // session was not reading) go out before whatever follows the hub's leaving.
            output.writeQueued()
            close(fd)
            onLost()
        }
    }

    /// Whether the hub sends more (or hangs up) within the time: the follower would not
    /// block on its next read.
    private static func moreArrives(on fd: Int32, withinNanoseconds wait: UInt64) -> Bool {
        var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: (wait + 999_999) / 1_000_000)
        while true {
            let found = poll(&ready, 1, milliseconds)
            if found < 0 && errno == EINTR { continue }
            return found > 0
        }
    }

    private static let eventIDKey = Array(#""event_id":""#.utf8)

    /// The `event_id` meta value of a channel notification line (the hub writes it unescaped:
    /// `evt_` and hex), nil for other lines. The meta comes after the content, whose every
    /// escaped quote is a candidate: each is looked at with one byte compare before the whole
    /// key is, where a generic slice compare ran at every quote of the content.
    static func eventID(in line: [UInt8]) -> String? {
        line.withUnsafeBytes { bytes in
            eventIDKey.withUnsafeBytes { key in
                guard let base = bytes.baseAddress, bytes.count > key.count else { return nil }
                let last = bytes.count - key.count  // the key must leave a byte after it
                var at = 0
                while true {
                    at = ByteWords.firstIndex(of: UInt8(ascii: "\""), in: bytes, from: at, to: last)
                    guard at < last else { return nil }
                    if bytes[at + 1] == UInt8(ascii: "e") && memcmp(base + at, key.baseAddress!, key.count) == 0 { break }
                    at += 1
                }
                let valueStart = at + key.count
                guard let end = bytes[valueStart...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<end]), as: UTF8.self)
            }
        }
    }

    /// Holds the reader while this session cannot take more (not initialised, or its stdout
    /// backlog at the bound): the hub then buffers, up to its own bound, and past it answers
    /// `503 backlog`. The hub's lines go out with `send`, so they count in what stdout has not
    /// written (`unwrittenBytes`), not in the notifier's event backlog.
    /// False when the hub went away meanwhile.
    private func waitForRoom() -> Bool {
        while true {
            let waiting = notifier.waiting
            if notifier.isInitialized, waiting.messages < ChannelNotifier.maxWaitingEvents,
               waiting.bytes + output.unwrittenBytes < ChannelNotifier.maxWaitingBytes { return true }
            if PeerHangUp.detected(on: fd) { return false }
            usleep(10_000)
        }
    }
}
