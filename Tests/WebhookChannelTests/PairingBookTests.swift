import Testing
@testable import WebhookChannel

struct PairingBookTests {
    private var counter = 0
    private func request(_ file: inout SourcesFile, now: Double, code: String) throws(PairingBook.Failure) -> PendingPairing {
        try PairingBook.request(&file, name: "ci", callbackURL: nil, now: now, generateCode: { code }, pollToken: "tok")
    }

    @Test func approvedCodeBecomesASourceAndCanBeCollectedOnce() throws {
        var file = SourcesFile()
        _ = try request(&file, now: 1000, code: "ABCDEF")
        let source = try PairingBook.approve(&file, code: "abcdef", now: 1010, sourceID: "src_1", secret: "whsec_1")
        #expect(source.name == "ci")
        #expect(file.pending.isEmpty)
        #expect(file.sources.map(\.id) == ["src_1"])
        #expect(PairingBook.status(file, code: "ABCDEF", now: 1011) == .paired(sourceID: "src_1", claimable: true))
    }

    @Test func codeExpiresAfterFiveMinutes() throws {
        var file = SourcesFile()
        _ = try request(&file, now: 1000, code: "ABCDEF")
        #expect(PairingBook.status(file, code: "ABCDEF", now: 1299) == .pending)
        #expect(PairingBook.status(file, code: "ABCDEF", now: 1300) == .expired)
        #expect(throws: PairingBook.Failure.expiredCode) {
            try PairingBook.approve(&file, code: "ABCDEF", now: 1300, sourceID: "s", secret: "w")
        }
        #expect(file.pending.isEmpty)
    }

    @Test func seventeenthPendingCodeIsRefused() throws {
        var file = SourcesFile()
        for n in 0..<16 { _ = try request(&file, now: 1000, code: "CODE\(n)") }
        #expect(throws: PairingBook.Failure.tooManyPending) { try request(&file, now: 1000, code: "LAST99") }
        // Expired codes do not count against the cap.
        #expect(throws: Never.self) { try request(&file, now: 1400, code: "LATER1") }
    }

    @Test func unknownCodeIsReported() {
        var file = SourcesFile()
        #expect(throws: PairingBook.Failure.unknownCode) {
            try PairingBook.approve(&file, code: "ZZZZZZ", now: 0, sourceID: "s", secret: "w")
        }
        #expect(PairingBook.status(file, code: "ZZZZZZ", now: 0) == .unknown)
    }
}
