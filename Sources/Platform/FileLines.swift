#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file's lines a chunk at a time, so that reading a log of many megabytes holds one
/// chunk (and the longest line) in memory, not the whole file.
public enum FileLines {
    /// Why a file could not be read (a missing file is not a failure: it has no lines).
    public struct Unreadable: Error {
        public let errno: Int32
    }

    /// Hands each line of the file at `path` to `visit`, without its newline, with its offset
    /// and its length (newline included), until `visit` returns false. A last line without a
    /// newline (a torn write) is handed over too. A missing file has no lines.
    public static func forEach(
        path: String, chunkBytes: Int = 1 << 20,
        _ visit: (_ line: UnsafeBufferPointer<UInt8>, _ offset: Int, _ length: Int) -> Bool
    ) throws(Unreadable) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return }
            throw Unreadable(errno: errno)
        }
        defer { close(fd) }
        var chunk = [UInt8](repeating: 0, count: chunkBytes)
        // The start of a line the last chunk ended inside, carried over to the next.
        var partial: [UInt8] = []
        var offset = 0
        while true {
            let count = readSome(fd, into: &chunk)
            if count < 0 { throw Unreadable(errno: errno) }
            if count == 0 { break }
            let going = chunk.withUnsafeBufferPointer { read -> Bool in
                var start = 0
                while let newline = read[start..<count].firstIndex(of: 0x0A) {
                    let keepGoing: Bool
                    if partial.isEmpty {
                        keepGoing = visit(UnsafeBufferPointer(rebasing: read[start..<newline]), offset, newline - start + 1)
                        offset += newline - start + 1
                    } else {
                        partial.append(contentsOf: read[start..<newline])
                        keepGoing = partial.withUnsafeBufferPointer { visit($0, offset, $0.count + 1) }
                        offset += partial.count + 1
                        partial.removeAll(keepingCapacity: partial.capacity <= chunkBytes)
                    }
                    if !keepGoing { return false }
                    start = newline + 1
                }
                partial.append(contentsOf: read[start..<count])
                return true
            }
            if !going { return }
        }
        if !partial.isEmpty {
            _ = partial.withUnsafeBufferPointer { visit($0, offset, $0.count) }
        }
    }
}
