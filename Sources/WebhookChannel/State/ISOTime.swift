#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Synchronization

/// ISO 8601 UTC timestamps as JavaScript's `toISOString()` writes them
/// (`2026-11-23T09:00:00.123Z`), which is what the seed stored in `sources.json`.
public enum ISOTime {
    /// Formatting is on the event hot path, so it uses `gmtime_r` rather than a formatter
    /// object, and only once a second: the first 20 bytes (`2026-11-23T09:00:00.`) of the
    /// last second formatted are kept, and every event of the same second adds its
    /// milliseconds to them (the date math and a dozen digits are some 600 instructions).
    public static func format(_ seconds: Double) -> String {
        let whole = time_t(seconds.rounded(.down))
        // The small bias keeps a parsed ".208" (0.20799…) from printing as .207.
        var millis = Int(((seconds - Double(whole)) * 1000 + 1e-3).rounded(.down))
        if millis >= 1000 { millis = 999 }
        if millis < 0 { millis = 0 }
        let head = head(of: whole)
        return String(unsafeUninitializedCapacity: 24) { out in
            withUnsafeBytes(of: head.bytes) { bytes in
                for index in 0..<SecondHead.count { out[index] = bytes[index] }
            }
            out[20] = UInt8(ascii: "0") + UInt8(millis / 100)
            out[21] = UInt8(ascii: "0") + UInt8(millis / 10 % 10)
            out[22] = UInt8(ascii: "0") + UInt8(millis % 10)
            out[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    /// The first 20 bytes of `second`'s text: kept from the last call when it was the same second.
    private static func head(of second: time_t) -> SecondHead {
        if let kept = lastSecond.withLock({ $0.second == Int(second) ? $0.head : nil }) { return kept }
        var whole = second
        var parts = tm()
        gmtime_r(&whole, &parts)
        let made = SecondHead(parts)
        lastSecond.withLock { $0 = (Int(second), made) }
        return made
    }

    /// `YYYY-MM-DDTHH:MM:SS.` of one second, in a value (no allocation to keep or copy it).
    private struct SecondHead: Sendable {
        static let count = 20
        var bytes: (UInt64, UInt64, UInt32) = (0, 0, 0)

        init(_ parts: tm) {
            withUnsafeMutableBytes(of: &bytes) { out in
                var at = 0
                func put(_ value: Int, _ width: Int) {
                    var value = value
                    for offset in stride(from: width - 1, through: 0, by: -1) {
                        out[at + offset] = UInt8(ascii: "0") + UInt8(value % 10)
                        value /= 10
                    }
                    at += width
                }
                func mark(_ ascii: Unicode.Scalar) {
                    out[at] = UInt8(ascii: ascii)
                    at += 1
                }
                put(min(max(Int(parts.tm_year) + 1900, 0), 9999), 4); mark("-"); put(Int(parts.tm_mon) + 1, 2); mark("-")
                put(Int(parts.tm_mday), 2); mark("T"); put(Int(parts.tm_hour), 2); mark(":"); put(Int(parts.tm_min), 2)
                mark(":"); put(Int(parts.tm_sec), 2); mark(".")
            }
        }
    }

    /// The last second formatted (any thread formats: the loop, tools, the CLI).
    private static let lastSecond = Mutex<(second: Int, head: SecondHead)>((Int.min, SecondHead(tm())))

    /// Accepts what people and tools write: `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z`
    /// or `±HH:MM`. Hand-written with `timegm`: Foundation's date formatters load ICU, which
    /// costs several megabytes of resident memory for a few timestamps.
    public static func parse(_ text: String) -> Double? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var value = 0
            for byte in b[from..<(from + count)] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20,
              b[13] == 0x3A, b[16] == 0x3A,
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var fraction = 0.0
        if b[index] == 0x2E {
            index += 1
            var scale = 0.1
            let start = index
            while index < b.count, (0x30...0x39).contains(b[index]) {
                fraction += Double(b[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        guard index < b.count else { return nil }
        var offset = 0
        switch b[index] {
        case 0x5A, 0x7A:
            guard index + 1 == b.count else { return nil }
        case 0x2B, 0x2D:
            guard index + 6 == b.count, b[index + 3] == 0x3A, let hours = number(index + 1, 2), let minutes = number(index + 4, 2)
            else { return nil }
            offset = (hours * 60 + minutes) * 60 * (b[index] == 0x2B ? 1 : -1)
        default:
            return nil
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        return Double(timegm(&parts) - offset) + fraction
    }
}
