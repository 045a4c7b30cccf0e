import CLinux
import Foundation
import Glibc

/// A file's identity as one stat() sees it: a rename or rewrite by another process changes it.
public struct FileIdentity: Sendable, Equatable {
    public let inode: UInt64
    public let size: Int64
    public let modifiedNanoseconds: Int64
}

/// A failed file operation, with the path and errno's text — a reason a person can act on.
/// Never carries file contents.
public struct StateFileError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let code: Int32

    static func current(_ operation: String, _ path: String) -> StateFileError {
        StateFileError(operation: operation, path: path, code: errno)
    }

    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// The state directory shared by the server and CLI processes: mode 0700, files 0600, writes
/// under an advisory lock, atomically (temp file, fsync, rename, fsync of the directory).
public struct StateDirectory: Sendable {
    public let path: String
    static let lockName = ".lock"

    public init(path: String) { self.path = path }

    func filePath(_ name: String) -> String { path + "/" + name }

    /// Creates the directory (and parents) with 0700; tightens a looser existing one.
    public func ensureExists() throws(StateFileError) {
        var info = stat()
        if stat(path, &info) == 0 {
            if info.st_mode & 0o077 != 0 { _ = chmod(path, 0o700) }
            return
        }
        var built = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            built += "/" + component
            if mkdir(built, 0o700) != 0 && errno != EEXIST {
                throw StateFileError.current("mkdir", built)
            }
        }
        _ = chmod(path, 0o700)
    }

    /// Runs `body` holding an exclusive flock on `<dir>/.lock`. The lock is per open file, so
    /// it excludes other processes and other threads alike, and it is released if we die.
    public func withExclusiveLock<T>(_ body: () throws -> T) throws -> T {
        let lockPath = filePath(StateDirectory.lockName)
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateFileError.current("open", lockPath) }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw StateFileError.current("flock", lockPath) }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// The file's bytes, or `nil` when it does not exist.
    public func readFile(_ name: String) throws(StateFileError) -> [UInt8]? {
        let full = filePath(name)
        let fd = open(full, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw StateFileError.current("open", full)
        }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StateFileError.current("read", full)
            }
            if n == 0 { return result }
            result.append(contentsOf: chunk[0..<n])
        }
    }

    public func fileIdentity(_ name: String) -> FileIdentity? {
        var info = stat()
        guard stat(filePath(name), &info) == 0 else { return nil }
        return FileIdentity(inode: UInt64(info.st_ino), size: Int64(info.st_size),
                            modifiedNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    /// Readers see the old file or the new one, never a mix, and a crash leaves one of them.
    public func writeFileAtomically(_ name: String, _ bytes: [UInt8]) throws(StateFileError) {
        let target = filePath(name)
        let temporary = filePath(".\(name).tmp-\(getpid())-\(SecureRandom.hex(4))")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateFileError.current("create", temporary) }
        var failure: StateFileError? = nil
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = .current("write", temporary)
                    return
                }
                offset += n
            }
        }
        // The mode given to open() is filtered by the umask; make it exactly 0600.
        if failure == nil, fchmod(fd, 0o600) != 0 { failure = .current("chmod", temporary) }
        if failure == nil, fsync(fd) != 0 { failure = .current("fsync", temporary) }
        close(fd)
        if failure == nil, rename(temporary, target) != 0 { failure = .current("rename", target) }
        if let failure {
            unlink(temporary)
            throw failure
        }
        let directoryFD = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// Renames a file that cannot be read to `<name>.corrupt-<time>` and returns the new name.
    public func moveAside(_ name: String, now: Date) throws(StateFileError) -> String {
        let stamp = ISOTime.compact(now.timeIntervalSince1970)
        var candidate = "\(name).corrupt-\(stamp)"
        var counter = 1
        while access(filePath(candidate), F_OK) == 0 {
            counter += 1
            candidate = "\(name).corrupt-\(stamp)-\(counter)"
        }
        guard rename(filePath(name), filePath(candidate)) == 0 else { throw StateFileError.current("rename", filePath(name)) }
        return candidate
    }
}
