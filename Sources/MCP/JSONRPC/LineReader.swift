#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Platform
import Synchronization

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

    /// Starts the reader thread; events arrive in order on the returned sequence. `atEnd` runs
    /// on the reader thread the moment input ends, before the sequence's consumer (which may be
    /// busy with earlier lines) gets there.
    ///
    /// The reader stays at most `LineCredits.maxLines` lines (and `maxBytes`) ahead of the
    /// consumer, then stops reading: a client that writes faster than its messages are handled
    /// fills its own pipe and waits, instead of this process's memory.
    public func start(atEnd: @escaping @Sendable () -> Void = {}) -> Lines {
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let credits = LineCredits()
        let fd = self.fd
        let limit = maxLineBytes
        DetachedThread.start(name: "stdin-reader") {
            var splitter = LineSplitter(maxLineBytes: limit)
            var chunk = [UInt8](repeating: 0, count: 65536)
            // Waiting for room, the reader cannot read on to the end of input, so it watches for
            // the writer hanging up instead: then the client is gone, and what it sent before
            // has no one to answer to.
            var hungUp = false
            let hand = { (event: Event) in
                guard !hungUp else { return }
                if credits.acquire(weight: event.weight, unless: { Self.writerHungUp(fd) }) {
                    continuation.yield(event)
                } else {
                    hungUp = true
                }
            }
            while !hungUp {
                let n = readSome(fd, into: &chunk)
                if n <= 0 { break }
                splitter.feed(chunk[0..<n], emit: hand)
            }
            if !hungUp, let last = splitter.finish() { hand(last) }
            atEnd()
            continuation.yield(.endOfInput)
            continuation.finish()
        }
        return Lines(stream: stream, credits: credits)
    }

    /// Whether the client closed its end of stdin, whatever input is still unread.
    static func writerHungUp(_ fd: Int32) -> Bool {
        PeerHangUp.detected(on: fd)
    }

    /// The events of one reader, in order; taking one lets the reader go on.
    public struct Lines: AsyncSequence, Sendable {
        public typealias Element = Event
        fileprivate let stream: AsyncStream<Event>
        fileprivate let credits: LineCredits

        public struct AsyncIterator: AsyncIteratorProtocol {
            fileprivate var base: AsyncStream<Event>.AsyncIterator
            fileprivate let credits: LineCredits

            public mutating func next() async -> Event? {
                let event = await base.next()
                if let event { credits.release(weight: event.weight) }
                return event
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: stream.makeAsyncIterator(), credits: credits)
        }
    }
}

extension LineReader.Event {
    /// What the event holds in memory while it waits for the consumer.
    fileprivate var weight: Int {
        switch self {
        case .line(let bytes): return Swift.max(bytes.count, 1)
        case .oversized, .endOfInput: return 1
        }
    }
}

/// How far the reader may run ahead of the consumer: lines handed over and not yet taken,
/// counted and weighed. The reader waits for room; one line always fits, however long.
final class LineCredits: Sendable {
    static let maxLines = 64
    static let maxBytes = 4 << 20

    private struct Outstanding {
        var lines = 0
        var bytes = 0
    }

    private let outstanding = Mutex(Outstanding())
    private let released = ConditionSignal()

    /// On the reader thread: blocks until `weight` more fits (true), or until `giveUp` says
    /// to, asked every 50 ms while it waits (false).
    func acquire(weight: Int, unless giveUp: () -> Bool) -> Bool {
        while true {
            let fits = outstanding.withLock { state -> Bool in
                guard state.lines == 0 || (state.lines < Self.maxLines && state.bytes + weight <= Self.maxBytes) else {
                    return false
                }
                state.lines += 1
                state.bytes += weight
                return true
            }
            if fits { return true }
            // Signals are not lost (the flag stays set); the timeout is for `giveUp`.
            released.wait(timeoutMilliseconds: 50)
            if giveUp() { return false }
        }
    }

    func release(weight: Int) {
        outstanding.withLock { state in
            state.lines = Swift.max(0, state.lines - 1)
            state.bytes = Swift.max(0, state.bytes - weight)
        }
        released.signal()
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
