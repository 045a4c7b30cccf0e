import Foundation

/// Writes every byte to a blocking descriptor: short writes continue where they stopped and a
/// write interrupted by a signal (`EINTR`) is tried again, and on a descriptor someone made
/// non-blocking (a parent may, for a pipe) `EAGAIN` waits until it can take more. Returns 0,
/// or the `errno` of the failure. The one write loop for files, pipes and stderr.
@discardableResult
public func writeFully(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
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
    }
    return 0
}

@discardableResult
public func writeFully(_ descriptor: Int32, _ bytes: [UInt8]) -> Int32 {
    bytes.withUnsafeBytes { writeFully(descriptor, $0) }
}
