import Foundation

/// Bytes read from a child's stdout or stderr on a background thread, split into lines.
/// Thread-safe; a test reads it by index (`lines(from:)`) or greps it (`text`). Every line
/// ever read is kept, so a test can inspect the whole transcript after the fact.
final class LineBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var partial = Data()
    private var storage: [Data] = []
    private var finished = false

    func append(_ chunk: Data) {
        lock.lock()
        defer { lock.unlock() }
        partial.append(chunk)
        while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
            storage.append(Data(partial[partial.startIndex..<newline]))
            partial = Data(partial[partial.index(after: newline)...])
        }
    }

    /// End of stream: a last line without a newline still counts as a line.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if !partial.isEmpty {
            storage.append(partial)
            partial = Data()
        }
        finished = true
    }

    var isFinished: Bool {
        lock.lock()
        defer { lock.unlock() }
        return finished
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return storage.count
    }

    /// Complete lines from `index` on (without their `\n`).
    func lines(from index: Int) -> [Data] {
        lock.lock()
        defer { lock.unlock() }
        guard index < storage.count else { return [] }
        return Array(storage[index...])
    }

    var allLines: [Data] { lines(from: 0) }

    /// All lines decoded as UTF-8 (invalid bytes shown as U+FFFD).
    var textLines: [String] { allLines.map { String(decoding: $0, as: UTF8.self) } }

    var text: String { textLines.joined(separator: "\n") }

    /// The last few lines, for failure messages.
    func tail(_ count: Int = 15) -> String {
        let lines = textLines.suffix(count)
        return lines.isEmpty ? "(nothing)" : lines.joined(separator: "\n")
    }

    /// Waits until some line satisfies `predicate` and returns it.
    func waitForLine(
        timeout: Duration = defaultTimeout,
        _ what: String,
        where predicate: @escaping (String) -> Bool
    ) async throws -> String {
        try await poll(timeout: timeout, "\(what); got:\n\(tail())") {
            textLines.first(where: predicate)
        }
    }
}
