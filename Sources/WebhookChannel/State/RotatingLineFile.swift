#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Synchronization

/// A file in the state dir that only grows by whole lines, at most `maxBytes` in `<name>` plus
/// one older `<name>.1`: the event log and the duplicate memory's journal.
///
/// Written on the event loop thread, one `write` per loop pass, because an answer that
/// acknowledges an event may only go out once its line is in the file. What could take long
/// is done on `background`: `fdatasync`, closing a rotated descriptor, and unlinking the
/// generation a rotation drops (freeing its blocks took ~10 ms on the loop).
final class RotatingLineFile {
    let name: String
    private let directory: StateDirectory
    private let maxBytes: Int
    private let background: SerialWorker
    private let log: Logger
    private(set) var descriptor: Int32 = -1
    private(set) var size = 0
    /// Counts rotations: a line written in generation `g` is in `<name>` while `generation == g`,
    /// in `<name>.1` while `generation == g + 1`, and gone after that.
    private(set) var generation = 0
    /// The next `<name>`, made ahead on `background` without a name (`prepareNextIfDue`,
    /// `UnnamedFile`): creating a file allocates an inode, and on a machine whose page cache
    /// is trimmed (this VM's memory reclaim) that can mean reading an inode table block from
    /// the disk. Traced, the rotation's `openat` held the loop thread 2–8 ms in such reads;
    /// SPEC 9 keeps waits on the disk off that thread. Unnamed, it leaves nothing behind.
    private let next = PreparedDescriptor()
    private var nextRequested = false
    /// Whether the next file is made and waiting (for tests).
    var nextIsReady: Bool { next.isReady }

    init(name: String, directory: StateDirectory, maxBytes: Int, background: SerialWorker, log: Logger) {
        self.name = name
        self.directory = directory
        self.maxBytes = maxBytes
        self.background = background
        self.log = log
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        next.discard()
    }

    var path: String { directory.path(of: name) }
    var olderPath: String { directory.path(of: name + ".1") }

    /// The file a line of `lineGeneration` is in now, if it is still kept.
    func path(forGeneration lineGeneration: Int) -> String? {
        switch generation - lineGeneration {
        case 0: return path
        case 1: return olderPath
        default: return nil
        }
    }

    /// Opens `<name>` for appending. A last line without its newline is what a crash in the
    /// middle of a write leaves: it is cut off (with one warning), so the next line starts on
    /// a line of its own instead of being glued to the torn one and lost with it.
    @discardableResult
    func open() -> Bool {
        guard descriptor < 0 else { return true }
        let fd = Platform.open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            log.error("cannot open \(name): \(String(cString: strerror(errno)))")
            return false
        }
        fchmod(fd, 0o600)
        var info = stat()
        fstat(fd, &info)
        size = Int(info.st_size)
        if size > 0, let keep = Self.lengthOfWholeLines(fd: fd, size: size), keep < size {
            if ftruncate(fd, off_t(keep)) == 0 {
                log.warning("\(name) ended with a torn line of \(size - keep) bytes (a crash while writing); "
                    + "cut it back to the last complete line")
                size = keep
            } else {
                log.error("cannot repair the torn last line of \(name): \(String(cString: strerror(errno)))")
            }
        }
        descriptor = fd
        return true
    }

    /// The length of the file up to and including its last newline (0 if it has none).
    private static func lengthOfWholeLines(fd: Int32, size: Int) -> Int? {
        var end = size
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while end > 0 {
            let start = max(0, end - chunk.count)
            let count = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, end - start, off_t(start)) }
            guard count == end - start else { return nil }
            if let newline = chunk[0..<count].lastIndex(of: 0x0A) { return start + newline + 1 }
            end = start
        }
        return 0
    }

    /// Whether appending `count` bytes would rotate first.
    func wouldRotate(appending count: Int) -> Bool {
        count > 0 && size > 0 && size + count > maxBytes
    }

    /// Appends whole lines with one `write` and makes sure they are in a file the directory
    /// still names (`write`, then `confirm`). Returns the generation and offset where they
    /// begin, or nil when they could not be written; then nothing of them stays in the file
    /// (a partial write is cut back), so the caller can refuse what they acknowledge.
    func append(_ lines: [UInt8]) -> (generation: Int, offset: Int)? {
        guard let placed = write(lines) else { return nil }
        return confirm(lines, placedAt: placed)
    }

    /// The first half of `append`: one `write`, without asking whether the file is still
    /// named. The event log calls `confirm` later, after the notifications and before the
    /// answers: the `fstat` that asks then costs the notification nothing.
    func write(_ lines: [UInt8]) -> (generation: Int, offset: Int)? {
        guard !lines.isEmpty else { return (generation, size) }
        if descriptor < 0 { open() }
        if wouldRotate(appending: lines.count) { rotate() }
        guard descriptor >= 0 else { return nil }
        let code = writeFully(descriptor, lines)
        guard code == 0 else {
            log.error("cannot append to \(name): \(String(cString: strerror(code)))")
            _ = ftruncate(descriptor, off_t(size))
            return nil
        }
        defer {
            size += lines.count
            prepareNextIfDue()
        }
        return (generation, size)
    }

    /// Once the file is three quarters full, `background` creates the file the rotation will
    /// name in its place (empty, mode 0600). A rotation that finds none ready (not made yet,
    /// or a platform without unnamed files) opens one itself.
    private func prepareNextIfDue() {
        guard !nextRequested, size >= maxBytes / 4 * 3 else { return }
        nextRequested = true
        let path = directory.path, slot = next
        background.async {
            guard let fd = UnnamedFile.create(in: path, mode: 0o600) else { return }
            slot.store(fd)
        }
    }

    /// The second half of `append`, for `lines` just written where `placed` says. If someone
    /// removed the file under us (or the state dir with it), the lines went to an inode no
    /// path names, lost at the next start: a new `<name>` is opened and they are written to
    /// it. Returns where they are now, or nil when that write failed. Asked after the write,
    /// so a removal up to the moment the lines went in is seen (one `fstat`).
    func confirm(_ lines: [UInt8], placedAt placed: (generation: Int, offset: Int)) -> (generation: Int, offset: Int)? {
        guard !lines.isEmpty, descriptorWasUnlinked() else { return placed }
        startAfresh()
        return write(lines)
    }

    /// Whether someone removed the file under us: its link count is 0.
    private func descriptorWasUnlinked() -> Bool {
        guard descriptor >= 0 else { return false }
        var info = stat()
        return fstat(descriptor, &info) == 0 && info.st_nlink == 0
    }

    /// Opens a new `<name>` in place of one that was removed. The generation moves on by two,
    /// so lines indexed in the removed file are neither this file's nor `<name>.1`'s.
    private func startAfresh() {
        log.warning("\(name) was removed while in use; starting a new one")
        let old = descriptor
        descriptor = -1
        generation += 2
        size = 0
        background.async { close(old) }
        open()
    }

    /// `<name>` becomes `<name>.1`; the old `<name>.1` is renamed out of the way first and
    /// unlinked on the background thread (two renames are cheap; freeing blocks is not).
    private func rotate() {
        let discarded = directory.path(of: ".\(name).discarded-\(getpid())")
        let hadOlder = rename(olderPath, discarded) == 0
        rename(path, olderPath)
        let old = descriptor
        descriptor = -1
        generation += 1
        size = 0
        background.async {
            if old >= 0 { close(old) }
            if hadOlder { unlink(discarded) }
        }
        nextRequested = false
        if let prepared = next.take() {
            // Empty, and written by no one: named, it serves as it is.
            if UnnamedFile.link(prepared, to: path) {
                descriptor = prepared
                return
            }
            background.async { close(prepared) }
        }
        open()
    }
}

/// A descriptor one thread makes and another takes (`RotatingLineFile.next`).
private final class PreparedDescriptor: Sendable {
    private let slot = Mutex<Int32>(-1)

    /// Keeps `fd`, closing one kept before.
    func store(_ fd: Int32) {
        let previous = slot.withLock { kept -> Int32 in
            defer { kept = fd }
            return kept
        }
        if previous >= 0 { close(previous) }
    }

    /// The kept descriptor, now the caller's.
    func take() -> Int32? {
        let fd = slot.withLock { kept -> Int32 in
            defer { kept = -1 }
            return kept
        }
        return fd >= 0 ? fd : nil
    }

    var isReady: Bool { slot.withLock { $0 >= 0 } }

    func discard() {
        if let fd = take() { close(fd) }
    }
}
