/// HTTP-date (RFC 9110 section 5.6.7) as seconds since 1970: the preferred IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) and the two obsolete forms a recipient must still read,
/// RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`). A pure
/// function of the text; nil for anything else.
public enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    public static func parse(_ text: Substring, now: Double) -> Double? {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" || $0 == "\t" })
        guard tokens.count >= 5 else { return nil }
        let day: Int?, month: Int?, year: Int?, time: Substring
        if let asctimeMonth = monthNumber(tokens[1]) {
            guard tokens.count == 5 else { return nil }
            (month, day, time, year) = (asctimeMonth, number(tokens[2], digits: 1...2), tokens[3], number(tokens[4], digits: 4...4))
        } else {
            guard tokens.count == 6, tokens[5] == "GMT" else { return nil }
            (day, month, time) = (number(tokens[1], digits: 1...2), monthNumber(tokens[2]), tokens[4])
            if let full = number(tokens[3], digits: 4...4) {
                year = full
            } else if let short = number(tokens[3], digits: 2...2) {
                // RFC 9110: a two-digit year more than 50 years ahead is in the past century.
                let currentYear = 1970 + Int(now / 31_556_952)
                var candidate = (currentYear / 100) * 100 + short
                if candidate > currentYear + 50 { candidate -= 100 }
                year = candidate
            } else {
                year = nil
            }
        }
        let clock = time.split(separator: ":", omittingEmptySubsequences: false)
        guard let day, let month, let year, clock.count == 3,
              let hour = number(clock[0], digits: 2...2), let minute = number(clock[1], digits: 2...2),
              let second = number(clock[2], digits: 2...2),
              (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        return Double(days * 86_400 + hour * 3_600 + minute * 60 + second)
    }

    private static func monthNumber(_ token: Substring) -> Int? {
        guard token.utf8.count == 3 else { return nil }
        return months.firstIndex(of: token.lowercased()).map { $0 + 1 }
    }

    private static func number(_ token: Substring, digits: ClosedRange<Int>) -> Int? {
        guard digits.contains(token.utf8.count), token.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else { return nil }
        return Int(token)
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil).
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
