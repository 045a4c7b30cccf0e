#if canImport(Glibc)
import CLinux
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Making and accepting TCP sockets that are non-blocking and close-on-exec: in the creating
/// call on Linux (`SOCK_NONBLOCK`, `accept4`), with `fcntl` afterwards elsewhere (and on
/// Linux with the poll backend, to test that path).
public enum StreamSocket {
    /// `SOCK_STREAM` as the `Int32` that `socket` and `addrinfo` take.
    public static var type: Int32 {
        #if canImport(Glibc)
        return Int32(SOCK_STREAM.rawValue)
        #else
        return SOCK_STREAM
        #endif
    }

    /// A new TCP socket, or -1 with `errno` set.
    public static func make(family: Int32, linuxFlags: Bool = true) -> Int32 {
        #if canImport(Glibc)
        if linuxFlags {
            return socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        #endif
        let fd = socket(family, type, 0)
        if fd >= 0 { prepare(fd) }
        return fd
    }

    /// Accepts one connection, or -1 with `errno` set.
    public static func accept(_ listener: Int32, _ address: UnsafeMutablePointer<sockaddr>, _ length: inout socklen_t,
                       linuxFlags: Bool = true) -> Int32
    {
        #if canImport(Glibc)
        if linuxFlags {
            return accept4(listener, address, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        }
        #endif
        let fd = systemAccept(listener, address, &length)
        if fd >= 0 { prepare(fd) }
        return fd
    }

    private static func prepare(_ fd: Int32) {
        DescriptorFlags.makeNonBlockingAndCloseOnExec(fd)
        NoSignalSend.prepare(fd)
    }
}

#if canImport(Glibc)
private let systemAccept = Glibc.accept
#else
private let systemAccept = Darwin.accept
#endif

/// Sending on a socket whose peer is gone must fail with EPIPE, never raise SIGPIPE: per call
/// on Linux (`MSG_NOSIGNAL`), per socket on macOS (`SO_NOSIGPIPE`).
public enum NoSignalSend {
    /// Called once on every new socket.
    static func prepare(_ fd: Int32) {
        #if canImport(Darwin)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    public static func send(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.send(fd, bytes, count, Int32(MSG_NOSIGNAL))
        #else
        return Darwin.send(fd, bytes, count, 0)
        #endif
    }
}
