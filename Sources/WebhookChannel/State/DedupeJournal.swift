#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Signing

/// The duplicate memory on disk, apart from the event log: one line per remembered key,
/// `<expiry, Unix seconds> <64-bit digest, 16 hex digits>`. Each file holds up to `capacity`
/// lines before it rotates, so `dedupe.log` and `dedupe.log.1` together always hold at least
/// the last `capacity` keys — all the memory keeps — whatever the event log has rotated
/// away (large bodies fill the event log long before 100,000 events). Written at most once a
/// second (and at every rotation of the event log), one `write` for all keys since: the
/// event log's lines carry the same keys, and start-up reads both.
final class DedupeJournal {
    static let fileName = "dedupe.log"
    /// `1700000000 0123456789abcdef\n`
    static let lineLength = 28

    let file: RotatingLineFile
    private var pending: [UInt8] = []
    private var lastWrite: UInt64 = 0
    static let writeIntervalNanoseconds: UInt64 = 1_000_000_000

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

    func append(digest: UInt64, expiresAt: Double) {
        let seconds = String(Int64(expiresAt.rounded(.up)))
        pending.append(contentsOf: String(repeating: "0", count: max(0, 10 - seconds.utf8.count)).utf8)
        pending.append(contentsOf: seconds.utf8)
        pending.append(UInt8(ascii: " "))
        for shift in stride(from: 60, through: 0, by: -4) {
            pending.append(Hex.digit(UInt8((digest >> UInt64(shift)) & 0xF)))
        }
        pending.append(0x0A)
    }

    /// Writes what is pending when a second has passed since the last write, or when `force`.
    func writeIfDue(now: UInt64, force: Bool) {
        guard !pending.isEmpty, force || now &- lastWrite >= Self.writeIntervalNanoseconds else { return }
        lastWrite = now
        writePending()
    }

    /// One `write` for everything pending. A failure is logged by the file and costs only
    /// duplicate detection after a restart; the events themselves are in the event log.
    func writePending() {
        defer { pending.removeAll(keepingCapacity: true) }
        _ = file.append(pending)
    }

    static func parse<Line: Collection<UInt8>>(_ line: Line) -> (digest: UInt64, expiresAt: Double)? {
        let parts = line.split(separator: UInt8(ascii: " "))
        guard parts.count == 2, let seconds = Int64(String(decoding: parts[0], as: UTF8.self)),
              parts[1].count == 16, let digest = UInt64(String(decoding: parts[1], as: UTF8.self), radix: 16)
        else { return nil }
        return (digest, Double(seconds))
    }
}
