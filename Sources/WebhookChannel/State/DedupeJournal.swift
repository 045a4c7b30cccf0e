#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Signing

/// The duplicate memory on disk, apart from the event log: one line per remembered key of an
/// acknowledged event, `<expiry, Unix seconds> <64-bit digest, 16 hex digits>`. Each file
/// holds up to `capacity` lines before it rotates, so `dedupe.log` and `dedupe.log.1` together
/// always hold at least the last `capacity` keys — all the memory keeps — whatever the event
/// log has rotated away (large bodies fill the event log long before 100,000 events).
///
/// Written for each batch of accepted events after their notifications and just before their
/// `200`s (one `write` for the batch's keys), and it alone restores the memory at start-up:
/// the event log's lines are written first, so a key found only there belongs to an event
/// that was neither acknowledged nor (perhaps) notified when the process died; its sender
/// retries, and the retry is delivered. A sender told `200` finds its retry a duplicate.
final class DedupeJournal {
    static let fileName = "dedupe.log"
    /// `1700000000 0123456789abcdef\n`
    static let lineLength = 28

    let file: RotatingLineFile
    private var pending: [UInt8] = []

    init(directory: StateDirectory, capacity: Int, background: SerialWorker, log: Logger) {
        file = RotatingLineFile(name: Self.fileName, directory: directory, maxBytes: capacity * Self.lineLength,
                                background: background, log: log)
    }

    /// At start-up: repairs a torn last line and returns every entry, oldest first. Nil when
    /// neither file exists yet (a state dir from before the journal: the caller rebuilds the
    /// memory from the event log instead).
    func open() -> [(digest: UInt64, expiresAt: Double)]? {
        let existed = access(file.path, F_OK) == 0 || access(file.olderPath, F_OK) == 0
        file.open()
        guard existed else { return nil }
        var entries: [(digest: UInt64, expiresAt: Double)] = []
        for path in [file.olderPath, file.path] {
            guard let bytes = FileManager.default.contents(atPath: path) else { continue }
            for line in bytes.split(separator: 0x0A) {
                if let entry = Self.parse(line) { entries.append(entry) }
            }
        }
        return entries
    }

    /// Adds `SSSSSSSSSS HHHHHHHHHHHHHHHH\n` (expiry seconds, at least ten digits; digest in hex).
    /// The line is built backwards in a local buffer and appended once: this runs per webhook,
    /// and appending byte by byte to the journal's array cost ten times as much.
    func append(digest: UInt64, expiresAt: Double) {
        Self.appendLine(digest: digest, expiresAt: expiresAt, to: &pending)
    }

    static func appendLine(digest: UInt64, expiresAt: Double, to out: inout [UInt8]) {
        var seconds = UInt64(max(0, expiresAt.rounded(.up)))
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 40) { line in
            var at = line.count
            at -= 1; line[at] = 0x0A
            at -= 16; Hex.write(digest, to: line.baseAddress! + at)
            at -= 1; line[at] = UInt8(ascii: " ")
            var written = 0
            while seconds > 0 || written < 10 {
                at -= 1; line[at] = UInt8(ascii: "0") + UInt8(seconds % 10)
                seconds /= 10
                written += 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: line[at...]))
        }
    }

    /// One `write` for everything pending. On failure (a full disk) the lines are kept and
    /// written, in order, before any later ones: false then, and the events whose keys they
    /// are must not be acknowledged yet (their senders would be told of an event a restart
    /// would take for new).
    @discardableResult
    func writePending() -> Bool {
        guard !pending.isEmpty else { return true }
        guard file.append(pending) != nil else { return false }
        pending.removeAll(keepingCapacity: true)
        return true
    }

    /// Keys remembered but not yet in the file (a write failed).
    var isBehind: Bool { !pending.isEmpty }

    static func parse<Line: Collection<UInt8>>(_ line: Line) -> (digest: UInt64, expiresAt: Double)? {
        let parts = line.split(separator: UInt8(ascii: " "))
        guard parts.count == 2, let seconds = Int64(String(decoding: parts[0], as: UTF8.self)),
              parts[1].count == 16, let digest = UInt64(String(decoding: parts[1], as: UTF8.self), radix: 16)
        else { return nil }
        return (digest, Double(seconds))
    }
}
