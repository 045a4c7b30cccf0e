import Foundation

/// ISO 8601 UTC timestamps as JavaScript's `toISOString()` writes them
/// (`2026-11-23T09:00:00.123Z`), which is what the seed stored in `sources.json`.
public enum ISOTime {
    /// Formatting is on the event hot path, so it uses `gmtime_r` rather than a formatter object.
    public static func format(_ seconds: Double) -> String {
        var whole = time_t(seconds.rounded(.down))
        // The small bias keeps a parsed ".208" (0.20799…) from printing as .207.
        var millis = Int(((seconds - Double(whole)) * 1000 + 1e-3).rounded(.down))
        if millis >= 1000 { millis = 999 }
        if millis < 0 { millis = 0 }
        var parts = tm()
        gmtime_r(&whole, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }

    /// Accepts what people and tools write: with or without fractions, `Z` or an offset.
    public static func parse(_ text: String) -> Double? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withFraction.date(from: text) { return date.timeIntervalSince1970 }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        return plain.date(from: text)?.timeIntervalSince1970
    }

    /// For file names: `20261123T090000Z`.
    public static func compact(_ seconds: Double) -> String {
        format(seconds).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
            .split(separator: ".").first.map { String($0) + "Z" } ?? "unknown"
    }
}
