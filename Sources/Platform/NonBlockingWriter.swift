#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes to stdout from the event loop without ever blocking it, so that protocol lines go
/// out in the same loop pass as the events they announce (no thread hop), while a reader that
/// stops reading only fills a buffer.
///
/// The descriptor is shared with the parent (Claude Code), so `O_NONBLOCK` must not be set on
/// it: that flag belongs to the open file description, which the parent may share. Instead:
/// a socket (libuv gives children socketpairs) takes `MSG_DONTWAIT` per call; a pipe or
/// terminal on Linux is reopened through `/proc/self/fd`, which yields a description of our
/// own that can be non-blocking; a regular file never blocks for long and is written as is.
/// Anything else (a pipe on macOS) has no such writer: the caller keeps using its thread.
public struct NonBlockingWriter: Sendable {
    private enum Kind: Sendable { case socket, ownDescription, regularFile }

    private let fd: Int32
    private let kind: Kind

    public static func make(for fd: Int32) -> NonBlockingWriter? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFSOCK:
            return NonBlockingWriter(fd: fd, kind: .socket)
        case S_IFREG:
            return NonBlockingWriter(fd: fd, kind: .regularFile)
        case S_IFIFO, S_IFCHR:
            #if os(Linux)
            let own = open("/proc/self/fd/\(fd)", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            return own >= 0 ? NonBlockingWriter(fd: own, kind: .ownDescription) : nil
            #else
            return nil
            #endif
        default:
            return nil
        }
    }

    /// How many bytes went out (fewer than given, or 0, when the reader is behind); nil when
    /// the reader is gone or the write failed.
    public func write(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty else { return 0 }
        while true {
            let written: Int
            switch kind {
            case .socket:
                #if canImport(Glibc)
                written = send(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
                #else
                written = send(fd, bytes.baseAddress, bytes.count, MSG_DONTWAIT)
                #endif
            case .ownDescription, .regularFile:
                #if canImport(Glibc)
                written = Glibc.write(fd, bytes.baseAddress, bytes.count)
                #else
                written = Darwin.write(fd, bytes.baseAddress, bytes.count)
                #endif
            }
            if written >= 0 { return written }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: return nil
            }
        }
    }
}
