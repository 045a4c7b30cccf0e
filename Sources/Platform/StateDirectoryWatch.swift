#if canImport(Glibc)
import CLinux
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Says whether a file in the state dir may have changed since it was last asked, from
/// inotify events read on the event loop, so `sources.json` is not `stat`ed for every request.
/// Without inotify (the poll backend, macOS) it always says "changed": the caller then
/// `stat`s once per loop round.
///
/// Its descriptor is the loop's first handler of a round (`EventLoop.register(first:)`): the
/// kernel queues the event inside the other process's `rename` or `close`, so a request sent
/// after that change becomes ready in the same round or a later one, and this handler has
/// already marked the change when the request is handled. The event loop is a higher layer
/// (Socket): it is handed in as `register`, and Socket adds the `EventLoopHandler`
/// conformance and the `init(path:loop:)` that callers use.
public final class StateDirectoryWatch {
    private let fd: Int32
    /// Inotify is in use (false: stat per round).
    let isWatching: Bool
    private var changed = true
    /// The watch is gone (the directory was removed or replaced) or events were dropped:
    /// from then on every question is answered "changed", as without a watch.
    private var unreliable = false
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private let changedOnTick: Bool

    /// Nil when inotify is unavailable or the directory cannot be watched. `changedOnTick`
    /// (off only in tests, to see inotify alone) reports a change at every loop tick.
    /// `useInotify` is false on the poll backend; `register` adds the inotify descriptor to
    /// the event loop as its first handler and says whether it could.
    public init?(path: String, useInotify: Bool, changedOnTick: Bool = true,
                 register: (_ fd: Int32, _ watch: StateDirectoryWatch) -> Bool)
    {
        self.changedOnTick = changedOnTick
        #if canImport(Glibc)
        guard useInotify else {
            fd = -1
            isWatching = false
            unreliable = true
            return
        }
        isWatching = true
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        // Not IN_MODIFY: the event log is written continuously and only sources.json matters,
        // which every writer (ours, the CLI's, the seed skill's) finishes with a close or a rename.
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB
            | IN_DELETE_SELF | IN_MOVE_SELF)
        guard inotify_add_watch(fd, path, mask) >= 0 else {
            close(fd)
            return nil
        }
        guard register(fd, self) else {
            close(fd)
            return nil
        }
        #else
        fd = -1
        isWatching = false
        unreliable = true
        #endif
    }

    /// True when something may have changed since the last call that returned true.
    public func takeChange() -> Bool {
        defer { changed = false }
        return changed || unreliable
    }

    public func readable() {
        #if canImport(Glibc)
        changed = true
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            // struct inotify_event: wd, mask, cookie, len (4 bytes each), then `len` name bytes.
            var offset = 0
            while offset + 16 <= count {
                let mask = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self) }
                let nameLength = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self) }
                if mask & UInt32(IN_IGNORED | IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF) != 0 { unreliable = true }
                offset += 16 + Int(nameLength)
            }
        }
        #endif
    }

    public func writable() {}

    /// A safety net for anything inotify cannot see (a file system that does not report
    /// changes made elsewhere): at most one `stat` per tick while idle.
    public func tick(now: UInt64) {
        if changedOnTick { changed = true }
    }
}
