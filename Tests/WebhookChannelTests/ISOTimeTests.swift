import Testing
@testable import WebhookChannel

struct ISOTimeTests {
    @Test func parsesWhatJavaScriptAndPeopleWrite() {
        #expect(ISOTime.parse("2026-03-01T10:00:00.000Z") == 1_772_359_200)
        #expect(ISOTime.parse("2026-03-01T10:00:00Z") == 1_772_359_200)
        #expect(ISOTime.parse("2026-03-01T12:00:00+02:00") == 1_772_359_200)
        #expect(ISOTime.parse("2026-03-01T10:00:00.250Z") == 1_772_359_200.25)
    }

    @Test(arguments: ["", "2026-03-01", "2026-13-01T10:00:00Z", "2026-03-01T10:00:00", "2026-03-01T10:00:00.Z", "x026-03-01T10:00:00Z"])
    func refusesMalformedTimestamps(_ text: String) {
        #expect(ISOTime.parse(text) == nil)
    }

    @Test func formatAndParseRoundTripToTheMillisecond() {
        let now = 1_795_000_000.123
        #expect(ISOTime.format(ISOTime.parse(ISOTime.format(now))!) == ISOTime.format(now))
    }

    /// The date part is kept for the last second formatted: seconds, minutes, days and years
    /// that follow one another, and a second formatted again after another, each read right.
    @Test func consecutiveTimesAcrossEveryBoundaryFormatAsTheirOwnSecond() {
        let cases: [(Double, String)] = [
            (0, "1970-01-01T00:00:00.000Z"),
            (0.5, "1970-01-01T00:00:00.500Z"),
            (59.999, "1970-01-01T00:00:59.999Z"),
            (60, "1970-01-01T00:01:00.000Z"),
            (86_399.25, "1970-01-01T23:59:59.250Z"),
            (86_400, "1970-01-02T00:00:00.000Z"),
            (1_798_761_599.999, "2026-12-31T23:59:59.999Z"),
            (1_798_761_600.001, "2027-01-01T00:00:00.001Z"),
            (1_772_359_200.25, "2026-03-01T10:00:00.250Z"),
            (1_772_359_200.75, "2026-03-01T10:00:00.750Z"),
            (0.5, "1970-01-01T00:00:00.500Z"),
            (1_772_359_200.125, "2026-03-01T10:00:00.125Z"),
        ]
        for (seconds, text) in cases {
            #expect(ISOTime.format(seconds) == text, "\(seconds)")
        }
    }

    /// Threads format at once (the loop, tools, the CLI): each gets its own second.
    @Test func threadsFormattingDifferentSecondsAtOnceEachGetTheirOwn() async {
        await withTaskGroup(of: Bool.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    let base = 1_772_359_200.0 + Double(worker * 3600)
                    let expected = ISOTime.format(base).prefix(13)  // the hour differs per worker
                    for step in 0..<2_000 {
                        let text = ISOTime.format(base + Double(step % 7) + 0.5)
                        if text.prefix(13) != expected || ISOTime.parse(text) != base + Double(step % 7) + 0.5 { return false }
                    }
                    return true
                }
            }
            for await ok in group { #expect(ok) }
        }
    }
}
