#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few Unix-domain socket calls the hub and its followers need, with blocking I/O (each
/// link has threads of its own; nothing here runs on the event loop).
public enum UnixSocket {
    /// Fills a `sockaddr_un` for `path` and runs `body` with it; nil when the path is too long.
    private static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// The longest path `sockaddr_un` takes here, terminator excluded (107 on Linux, 103 on macOS).
    public static var maxPathBytes: Int { MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1 }

    /// A directory only this user may use, made if missing (mode 0700): for sockets whose
    /// natural place has too long a path. Nil when it exists and is a link, not a directory,
    /// another user's, or open to others: a socket there could be replaced by someone else.
    public static func privateDirectory(_ path: String) -> String? {
        _ = mkdir(path, 0o700)
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid(),
              info.st_mode & 0o077 == 0 else { return nil }
        return path
    }

    private static func makeSocket() -> Int32 {
        let fd = socket(AF_UNIX, StreamSocket.type, 0)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return fd
    }

    /// Listens on `path` (mode 0600). The caller has made sure no live hub answers there.
    public static func listening(at path: String) throws(SocketError) -> Int32 {
        let fd = makeSocket()
        guard fd >= 0 else { throw .system("socket(AF_UNIX)") }
        unlink(path)
        // Created 0600 from the start: umask for the bind, then chmod to be sure.
        let previous = umask(0o177)
        let bound = withAddress(path) { bind(fd, $0, $1) } ?? -1
        umask(previous)
        guard bound == 0 else {
            let error = SocketError.system("bind(\(path))")
            close(fd)
            throw error
        }
        chmod(path, 0o600)
        guard listen(fd, 16) == 0 else {
            let error = SocketError.system("listen")
            close(fd)
            throw error
        }
        return fd
    }

    /// Connects to `path`; nil when nothing listens there (no hub, or a stale socket file).
    public static func connected(to path: String) -> Int32? {
        let fd = makeSocket()
        guard fd >= 0 else { return nil }
        let connected = withAddress(path) { connect(fd, $0, $1) } ?? -1
        guard connected == 0 else {
            close(fd)
            return nil
        }
        disableSIGPIPE(fd)
        return fd
    }

    /// The user id of the process at the other end, from the kernel (not from anything it said).
    public static func peerUserID(_ fd: Int32) -> uid_t? {
        #if canImport(Glibc)
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Glibc hides it behind _GNU_SOURCE).
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
        return uid_t(credentials.uid)
        #else
        var uid = uid_t(0)
        var gid = gid_t(0)
        guard getpeereid(fd, &uid, &gid) == 0 else { return nil }
        return uid
        #endif
    }

    /// A peer that went away must not kill this process with SIGPIPE (sends also ignore it).
    public static func disableSIGPIPE(_ fd: Int32) {
        #if canImport(Darwin)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    /// Makes reads give up after `seconds` (a peer that connects and never says hello).
    public static func setReceiveTimeout(_ fd: Int32, seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
}

/// Reads newline-terminated frames from a blocking descriptor, each at most `maxLine` bytes.
public struct FrameReader: Sendable {
    let fd: Int32
    public var maxLine: Int
    private var buffer: [UInt8] = []
    /// Where the unread part of `buffer` begins: lines are taken by moving it, not by
    /// shifting the rest of a 64 KiB read to the front once per line.
    private var start = 0
    /// Up to where the unread part is known to hold no newline.
    private var searched = 0
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)

    public init(fd: Int32, maxLine: Int) {
        self.fd = fd
        self.maxLine = maxLine
    }

    public enum Frame { case line([UInt8]), end, tooLong }

    /// The next line (without its newline), `.end` at EOF or error, `.tooLong` past `maxLine`.
    /// `beforeReading` runs when every line read so far has been handed out and the next
    /// `read` may wait: the moment to tell the writer how far the reader got.
    public mutating func next(beforeReading: () -> Void = {}) -> Frame {
        while true {
            if let newline = firstNewline() {
                let line = Array(buffer[start..<newline])
                start = newline + 1
                searched = start
                return .line(line)
            }
            if start > 0 {
                buffer.removeSubrange(..<start)
                start = 0
            }
            // A long line arrives in many reads: each is searched once.
            searched = buffer.count
            guard buffer.count <= maxLine else { return .tooLong }
            beforeReading()
            let count = readSome(fd, into: &chunk)
            guard count > 0 else { return .end }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }

    /// The first newline from `searched` on, by `memchr` (vector compares): a follower splits
    /// every event line the hub sends (1 KiB and more each), and `firstIndex(of:)` went byte by
    /// byte: about half of the follower's user time per event (`perf`).
    private func firstNewline() -> Int? {
        guard searched < buffer.count else { return nil }
        return buffer.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress, let found = memchr(base + searched, 0x0A, bytes.count - searched) else {
                return nil
            }
            return base.distance(to: UnsafeRawPointer(found))
        }
    }
}
