#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif

/// Writes every byte to a blocking descriptor: short writes continue where they stopped and a
/// write interrupted by a signal (`EINTR`) is tried again, and on a descriptor someone made
/// non-blocking (a parent may, for a pipe) `EAGAIN` waits until it can take more. Returns 0,
/// or the `errno` of the failure. The one write loop for files, pipes and stderr.
@discardableResult
public func writeFully(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, progress: (() -> Void)? = nil) -> Int32 {
    var offset = 0
    while offset < bytes.count {
        let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 {
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                var ready = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                _ = poll(&ready, 1, -1)
                continue
            }
            return code
        }
        if written == 0 { return EIO }
        offset += written
        progress?()
    }
    return 0
}

@discardableResult
public func writeFully(_ descriptor: Int32, _ bytes: [UInt8], progress: (() -> Void)? = nil) -> Int32 {
    bytes.withUnsafeBytes { writeFully(descriptor, $0, progress: progress) }
}

/// One `read` into `chunk` from a blocking descriptor, tried again when a signal interrupts
/// it: the byte count, 0 at the end, or -1 with `errno` set. The one read loop for stdin,
/// files and Unix sockets.
public func readSome(_ descriptor: Int32, into chunk: inout [UInt8]) -> Int {
    while true {
        let n = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        return n
    }
}

/// Reads a descriptor to its end (the CLI's standard input); a read error ends the input
/// where it stopped.
public func readToEnd(_ descriptor: Int32) -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = readSome(descriptor, into: &chunk)
        if n <= 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<n])
    }
}
