import Foundation

/// Holds `<state dir>/.lock` as a CLI command in progress would. The descriptor is
/// close-on-exec: the suite runs in parallel in this process, and a child another test
/// spawns meanwhile (a server, a CLI command) would otherwise inherit it and keep the lock
/// held after `release()` until that child exits.
final class HeldStateLock: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var fd: Int32

    convenience init(_ dir: TempStateDir) throws {
        try self.init(path: dir.url.appendingPathComponent(".lock").path)
    }

    /// Blocks until it holds the lock on `path` (created if missing).
    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HarnessError("open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX) == 0 else {
            close(fd)
            throw HarnessError("flock \(path): \(String(cString: strerror(errno)))")
        }
    }

    deinit { release() }

    /// True once `release()` has closed the descriptor: whoever takes the lock next sees it.
    var isReleased: Bool { lock.withLock { fd < 0 } }

    /// Idempotent.
    func release() {
        lock.withLock {
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// The answer the server owed while the lock was held; when it does not come, the error
    /// says which other processes still have the lock file open, and what the server logged.
    func expectAnswer(on socket: RawSocket, from channel: TestChannel) async throws -> WireResponse {
        do {
            return try await socket.readResponse(timeout: .seconds(30))
        } catch {
            let holders = processesWithOpen(path, except: channel.server.pid)
            throw HarnessError("\(error); other processes with \(path) open: \(holders.isEmpty ? "none" : holders.joined(separator: "; ")); \(await channel.serverState())")
        }
    }
}

extension TestChannel {
    /// Whether the server still runs (or how it ended), and the end of its stderr: for
    /// failure messages. Gives a server that is going down a moment to be reaped.
    func serverState() async -> String {
        _ = try? await server.child.waitForExit(timeout: .seconds(2))
        let ended = server.child.termination.map { "the server ended (\($0))" } ?? "the server still runs"
        return "\(ended); its stderr:\n\(server.stderr.tail())"
    }
}

/// `pid: command line` of each process (but `except`) with a descriptor open on `path`.
func processesWithOpen(_ path: String, except: Int32) -> [String] {
    let files = FileManager.default
    return ((try? files.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
        guard let pid = Int32(entry), pid != except else { return nil }
        let descriptors = (try? files.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        guard descriptors.contains(where: { (try? files.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == path })
        else { return nil }
        let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "?"
        return "\(pid): \(command.split(separator: "\0").joined(separator: " "))"
    }
}
