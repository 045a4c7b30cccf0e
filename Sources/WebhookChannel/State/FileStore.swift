#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Signing

/// The state directory (`WEBHOOK_STATE_DIR`) at the byte level. The server and CLI processes
/// use it at the same time, so every change is made under one advisory lock and lands by an
/// atomic rename: a reader sees the old file or the new one, never half of either.
public struct StateDirectory: Sendable {
    public let path: String

    /// Name of the lock file. It is never deleted: removing it while another process holds
    /// a lock on it would let a third process lock a fresh file and run alongside.
    public static let lockFileName = ".lock"

    public init(path: String) {
        self.path = path
    }

    /// Full path of the file `name` inside the directory.
    public func path(of name: String) -> String {
        path.hasSuffix("/") ? path + name : path + "/" + name
    }

    /// Creates the directory (and missing parents) with mode 0700, and tightens an existing
    /// one to 0700: it holds HMAC secrets that other local users must not read.
    public func ensureExists() throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o700) != 0 {
                // An existing parent may still fail with EACCES or EROFS instead of EEXIST.
                let code = errno
                var existing = stat()
                if code != EEXIST && stat(prefix, &existing) != 0 {
                    throw StateFileError(operation: "create directory", path: prefix, code: code)
                }
            }
            prefix += "/"
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw StateFileError(operation: "inspect directory", path: path, code: errno)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw StateFileError(operation: "use as state directory", path: path, code: ENOTDIR)
        }
        if info.st_mode & 0o7777 != 0o700 && chmod(path, 0o700) != 0 {
            throw StateFileError(operation: "restrict permissions (chmod 700) of", path: path, code: errno)
        }
    }

    /// Runs `body` while holding an exclusive `flock` on `<dir>/.lock`, shared by every process
    /// using this directory. Not reentrant: calling it again from inside `body` deadlocks.
    ///
    /// Without `limit` it waits for the lock as long as another process holds it. With one, it
    /// gives up once `limit` seconds have passed and throws `StateDirectoryBusy` without
    /// running `body`: a process stopped while holding the lock (a CLI command suspended with
    /// Ctrl-Z) must not hold up a server's answers for good.
    public func withExclusiveLock<T>(waitingAtMost limit: Double? = nil, _ body: () throws -> T) throws -> T {
        let lockPath = path(of: Self.lockFileName)
        let descriptor = try retryingEINTR(operation: "open lock file", path: lockPath) {
            open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        }
        // Closing the descriptor releases the lock, also on a throw from `body`.
        defer { close(descriptor) }
        // The mode passed to open() is narrowed by umask only; make it exact as well.
        _ = fchmod(descriptor, 0o600)
        if let limit {
            try lock(descriptor, path: lockPath, waitingAtMost: limit)
        } else {
            _ = try retryingEINTR(operation: "lock", path: lockPath) {
                flock(descriptor, LOCK_EX)
            }
        }
        return try body()
    }

    /// Pause between attempts to take a held lock. flock has no timed wait (interrupting a
    /// blocking one would take a signal aimed at this thread); 10 ms keeps the retries cheap
    /// and the wait after a release short.
    static let lockRetryNanoseconds = 10_000_000

    /// Tries `flock(LOCK_EX | LOCK_NB)` until it succeeds or `limit` seconds have passed on
    /// the monotonic clock; always tries at least once.
    private func lock(_ descriptor: Int32, path lockPath: String, waitingAtMost limit: Double) throws {
        let clock = SystemClock()
        let start = clock.monotonicNanoseconds()
        let allowed = limit > 0 ? UInt64(min(limit, 86_400) * 1e9) : 0
        while true {
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return }
            let code = errno
            if code == EINTR { continue }
            guard code == EWOULDBLOCK else {
                throw StateFileError(operation: "lock", path: lockPath, code: code)
            }
            let waited = clock.monotonicNanoseconds() &- start
            guard waited < allowed else {
                throw StateDirectoryBusy(lockPath: lockPath, limit: limit)
            }
            // An interrupted sleep (EINTR) just means the next attempt comes sooner.
            let pause = min(UInt64(Self.lockRetryNanoseconds), allowed - waited)
            var request = timespec(tv_sec: 0, tv_nsec: Int(pause))
            _ = nanosleep(&request, nil)
        }
    }

    /// The whole content of `name`, or nil when the file does not exist.
    public func readFile(_ name: String) throws -> [UInt8]? {
        let filePath = path(of: name)
        let descriptor = open(filePath, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            let code = errno
            if code == ENOENT { return nil }
            if code == EINTR { return try readFile(name) }
            throw StateFileError(operation: "open", path: filePath, code: code)
        }
        defer { close(descriptor) }

        var info = stat()
        let sizeHint = fstat(descriptor, &info) == 0 ? max(Int(info.st_size), 0) : 0
        var content: [UInt8] = []
        content.reserveCapacity(sizeHint)
        var chunk = [UInt8](repeating: 0, count: max(min(sizeHint + 1, 1 << 20), 4096))
        while true {
            let count = readSome(descriptor, into: &chunk)
            if count < 0 { throw StateFileError(operation: "read", path: filePath, code: errno) }
            if count == 0 { return content }
            content.append(contentsOf: chunk[0..<count])
        }
    }

    /// Cheap change detection: one `stat()`. Any write through `writeFileAtomically` gives
    /// the file a new inode, so a changed identity means "read it again". Nil when the file
    /// does not exist (or cannot be inspected).
    public func fileIdentity(_ name: String) -> FileIdentity? {
        var info = stat()
        guard stat(path(of: name), &info) == 0 else { return nil }
        return FileIdentity(
            device: UInt64(info.st_dev),
            inode: UInt64(info.st_ino),
            size: Int64(info.st_size),
            modificationNanoseconds: info.modificationNanoseconds,
            changeNanoseconds: info.changeNanoseconds)
    }

    /// Replaces `name` with `bytes` so that a crash or a concurrent reader never sees a partial
    /// file: write a temporary file beside it, fsync it, rename it over the target, fsync the
    /// directory (so the rename itself survives a power cut). The result has mode 0600.
    public func writeFileAtomically(_ name: String, _ bytes: [UInt8]) throws {
        let targetPath = path(of: name)
        let temporaryPath = path(of: ".\(name).tmp-\(getpid())-\(SecureRandom.hex(6))")
        let descriptor = try retryingEINTR(operation: "create temporary file", path: temporaryPath) {
            open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        }
        var renamed = false
        defer {
            if !renamed { unlink(temporaryPath) }
        }
        do {
            defer { close(descriptor) }
            // open()'s mode is narrowed by umask; the secrets file must be exactly 0600.
            guard fchmod(descriptor, 0o600) == 0 else {
                throw StateFileError(operation: "set permissions (chmod 600) of", path: temporaryPath, code: errno)
            }
            try writeAll(bytes, to: descriptor, path: temporaryPath)
            _ = try retryingEINTR(operation: "flush (fsync)", path: temporaryPath) { fsync(descriptor) }
        }
        guard rename(temporaryPath, targetPath) == 0 else {
            throw StateFileError(operation: "rename temporary file over", path: targetPath, code: errno)
        }
        renamed = true
        try syncDirectory()
    }

    /// Sets `name` to mode 0600 when it is a regular file with another mode (a `sources.json`
    /// the seed's skill wrote with the umask's 0644). A symbolic link is not followed and
    /// nothing but a regular file is touched. Returns the mode it had when it was changed, nil
    /// when there was nothing to do (no such file, already 0600, not a regular file).
    @discardableResult
    public func restrictToOwner(_ name: String) throws -> UInt32? {
        let filePath = path(of: name)
        // O_NONBLOCK: a FIFO planted under the name must not hang the open.
        let descriptor = open(filePath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        if descriptor < 0 {
            let code = errno
            if code == ENOENT || code == ELOOP { return nil }
            if code == EINTR { return try restrictToOwner(name) }
            throw StateFileError(operation: "open", path: filePath, code: code)
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw StateFileError(operation: "inspect", path: filePath, code: errno) }
        let mode = UInt32(info.st_mode & 0o7777)
        guard info.st_mode & S_IFMT == S_IFREG, mode != 0o600 else { return nil }
        guard fchmod(descriptor, 0o600) == 0 else {
            throw StateFileError(operation: "restrict permissions (chmod 600) of", path: filePath, code: errno)
        }
        return mode
    }

    /// Sets a file that could not be parsed aside as `<name>.corrupt-<YYYYMMDDTHHMMSSZ>` (with
    /// `-1`, `-2`, … when that name is taken) so that nothing is lost and a fresh file can be
    /// started; the copy is made 0600 (it may hold secrets, and a seed-written file was 0644).
    /// Call it under `withExclusiveLock`.
    /// `keepingOriginal`: for a caller that replaces `name` by rename right after — the aside
    /// name is a hard link and `name` stays until then, so that a reader without the lock
    /// never finds the file missing (and takes that for "no sources") in between. Where the
    /// file system has no hard links it is moved, as without.
    /// Returns the new name and whether the original is still in place.
    public func moveAside(_ name: String, now: Date, keepingOriginal: Bool) throws -> (name: String, keptOriginal: Bool) {
        let stamp = Self.compactUTCStamp(now)
        let base = "\(name).corrupt-\(stamp)"
        var candidate = base
        var counter = 0
        var info = stat()
        while lstat(path(of: candidate), &info) == 0 {
            counter += 1
            guard counter < 10_000 else {
                throw StateFileError(operation: "find a free name to set aside", path: path(of: name), code: EEXIST)
            }
            candidate = "\(base)-\(counter)"
        }
        let linked = keepingOriginal && link(path(of: name), path(of: candidate)) == 0
        if !linked {
            guard rename(path(of: name), path(of: candidate)) == 0 else {
                throw StateFileError(operation: "set aside (rename to \(candidate))", path: path(of: name), code: errno)
            }
        }
        try syncDirectory()
        // Best effort: the move is what matters, and it is done (a file this process can
        // rename in its own 0700 directory is, in practice, one it can chmod).
        _ = try? restrictToOwner(candidate)
        return (candidate, linked)
    }

    /// `YYYYMMDDTHHMMSSZ` in UTC: sorts by time and contains no `:` (awkward in file names).
    static func compactUTCStamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return pad(parts.tm_year + 1900, 4) + pad(parts.tm_mon + 1, 2) + pad(parts.tm_mday, 2)
            + "T" + pad(parts.tm_hour, 2) + pad(parts.tm_min, 2) + pad(parts.tm_sec, 2) + "Z"
    }

    private func writeAll(_ bytes: [UInt8], to descriptor: Int32, path filePath: String) throws {
        let code = writeFully(descriptor, bytes)
        if code != 0 { throw StateFileError(operation: "write", path: filePath, code: code) }
    }

    private func syncDirectory() throws {
        let descriptor = try retryingEINTR(operation: "open directory", path: path) {
            open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        defer { close(descriptor) }
        _ = try retryingEINTR(operation: "flush (fsync) directory", path: path) { fsync(descriptor) }
    }

    /// Runs a system call until it is not interrupted by a signal; a result below zero is
    /// thrown as an error naming `operation` and `path`.
    private func retryingEINTR(operation: String, path: String, _ call: () -> Int32) throws -> Int32 {
        while true {
            let result = call()
            if result >= 0 { return result }
            let code = errno
            if code != EINTR {
                throw StateFileError(operation: operation, path: path, code: code)
            }
        }
    }
}

/// What one `stat()` says about a file; equal identities mean the file was not replaced.
public struct FileIdentity: Equatable, Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modificationNanoseconds: Int64
    public var changeNanoseconds: Int64
}

/// Another process held the state directory's lock for longer than the caller would wait.
/// Nothing was changed: the same change can be tried again once the lock is free.
public struct StateDirectoryBusy: Error, CustomStringConvertible, Sendable {
    public var lockPath: String
    /// The wait allowed, in seconds.
    public var limit: Double

    public init(lockPath: String, limit: Double) {
        self.lockPath = lockPath
        self.limit = limit
    }

    public var description: String {
        let seconds = limit == limit.rounded() && limit.magnitude < 1e9 ? String(Int(limit)) : String(limit)
        return "the state directory lock \(lockPath) is held by another process (waited \(seconds) s)"
    }
}

/// A failed file operation, with what was attempted, on which path, and the system's reason.
public struct StateFileError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    /// The `errno` value.
    public var code: Int32

    public init(operation: String, path: String, code: Int32) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String {
        "cannot \(operation) \(path): \(String(cString: strerror(code)))"
    }
}
