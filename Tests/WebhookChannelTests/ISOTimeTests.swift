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
}
