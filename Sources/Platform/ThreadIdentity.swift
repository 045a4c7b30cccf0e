#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The calling thread as a number, so a thread's identity can be published in an atomic and
/// compared from any thread (`pthread_t` is an integer on Linux, a pointer on Darwin).
public enum ThreadIdentity {
    public static var current: UInt {
        #if canImport(Glibc)
        return UInt(pthread_self())
        #else
        return UInt(bitPattern: pthread_self())
        #endif
    }
}
