#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// Reads newline-delimited messages from a file descriptor on a dedicated thread, so a slow
/// or silent client never occupies a Swift concurrency thread.
///
/// Lines longer than `maxLineBytes` are not buffered: the reader reports `.oversized` once and
/// throws bytes away up to the next newline, so a hostile client cannot make it allocate
/// without bound.
public final class LineReader: Sendable {
    public enum Event: Sendable {
        case line([UInt8])
        case oversized
        case endOfInput
    }

    public static let defaultMaxLineBytes = 1 << 20

    private let fd: Int32
    private let maxLineBytes: Int

    public init(fd: Int32, maxLineBytes: Int = LineReader.defaultMaxLineBytes) {
        self.fd = fd
        self.maxLineBytes = maxLineBytes
    }

    /// Starts the reader thread; events arrive in order on the returned stream. `atEnd` runs
    /// on the reader thread the moment input ends, before the stream's consumer (which may be
    /// busy with earlier lines) gets there.
    public func start(atEnd: @escaping @Sendable () -> Void = {}) -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let fd = self.fd
        let limit = maxLineBytes
        DetachedThread.start(name: "stdin-reader") {
            var splitter = LineSplitter(maxLineBytes: limit)
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = readSome(fd, into: &chunk)
                if n <= 0 { break }
                splitter.feed(chunk[0..<n]) { continuation.yield($0) }
            }
            if let last = splitter.finish() { continuation.yield(last) }
            atEnd()
            continuation.yield(.endOfInput)
            continuation.finish()
        }
        return stream
    }
}

/// Splits a byte stream into lines with a length limit. A pure value, tested on its own.
public struct LineSplitter: Sendable {
    private var pending: [UInt8] = []
    private var discarding = false
    private let maxLineBytes: Int

    public init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    public mutating func feed(_ bytes: ArraySlice<UInt8>, emit: (LineReader.Event) -> Void) {
        var start = bytes.startIndex
        while start < bytes.endIndex {
            guard let newline = bytes[start...].firstIndex(of: 0x0A) else {
                append(bytes[start...], emit: emit)
                return
            }
            append(bytes[start..<newline], emit: emit)
            if discarding {
                discarding = false
            } else {
                emit(.line(stripCR(pending)))
            }
            pending.removeAll(keepingCapacity: pending.count <= 65536)
            start = newline + 1
        }
    }

    /// What is left when the input ends without a final newline.
    public mutating func finish() -> LineReader.Event? {
        defer { pending = [] }
        if discarding || pending.isEmpty { return nil }
        return .line(stripCR(pending))
    }

    private mutating func append(_ bytes: ArraySlice<UInt8>, emit: (LineReader.Event) -> Void) {
        guard !discarding else { return }
        if pending.count + bytes.count > maxLineBytes {
            discarding = true
            pending.removeAll()
            emit(.oversized)
            return
        }
        pending.append(contentsOf: bytes)
    }

    private func stripCR(_ line: [UInt8]) -> [UInt8] {
        line.last == 0x0D ? Array(line.dropLast()) : line
    }
}
