// The C library, re-exported: FoundationEssentials does not re-export it as Foundation did,
// and the few places above this layer that make a system call directly (stdin's read, the
// signal thread's sigwait) get it from here, so no other target imports Glibc or Darwin.
#if canImport(Glibc)
@_exported import Glibc
#elseif canImport(Darwin)
@_exported import Darwin
#endif
