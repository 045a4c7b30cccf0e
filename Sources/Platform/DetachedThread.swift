#if canImport(Glibc)
import Glibc
import CLinux
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts a named, detached POSIX thread. The process uses FoundationEssentials, which has no
/// `Thread`; a pthread is all the loop, the workers and the hub need, and it keeps the full
/// Foundation (and the ICU it loads) out of the process.
public enum DetachedThread {
    /// Runs `body` on a new thread named `name` (cut to 15 bytes, the kernel's limit) with a
    /// stack of `stackSize` bytes. A thread that cannot be created is a fatal error: the
    /// process is not usable without the thread it asked for.
    public static func start(name: String, stackSize: Int = 512 << 10, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(ThreadBody(name: String(decoding: name.utf8.prefix(15), as: UTF8.self), body: body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, max(stackSize, 64 << 10))
        #if canImport(Glibc)
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { raw in
            DetachedThread.run(raw!)
            return nil
        }, box)
        #else
        var thread: pthread_t? = nil
        let rc = pthread_create(&thread, &attributes, { raw in
            DetachedThread.run(raw)
            return nil
        }, box)
        #endif
        if rc != 0 {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            fatalError("pthread_create(\(name)) failed: \(rc)")
        }
    }

    private static func run(_ raw: UnsafeMutableRawPointer) {
        let body = Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue()
        #if canImport(Glibc)
        _ = pthread_setname_np(pthread_self(), body.name)
        #else
        _ = pthread_setname_np(body.name)
        #endif
        body.body()
    }
}

private final class ThreadBody {
    let name: String
    let body: @Sendable () -> Void
    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}
