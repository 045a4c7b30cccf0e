import Foundation
import Testing
@testable import Platform
@testable import WebhookChannel

/// Pairing on its own, without HTTP: failed completions lock out one peer after ten and every
/// peer after a hundred, only within a minute on the clock, and only failures count; a poll
/// token collects the credentials once. Time is a `ManualClock`.
struct PairingDeskTests {
    final class Desk: Sendable {
        let clock = ManualClock()
        let harness: LoopHarness
        let dir: TempStateDir
        private let desk: LoopConfined<PairingDesk>

        init() throws {
            dir = try TempStateDir()
            harness = try LoopHarness(clock: clock)
            let log = Logger(enabled: false)
            let sources = SourceDirectory(store: SourcesStore(directory: StateDirectory(path: dir.path), log: log),
                                          loop: harness.loop, fileWorker: SerialWorker(name: "test-state-files"), log: log)
            desk = LoopConfined(PairingDesk(sources: sources, clock: clock, log: log))
        }

        func stop() {
            harness.stop()
            dir.remove()
        }

        func request(name: String) async throws -> PendingPairing {
            try await harness.answer { [desk] in desk.value.request(name: name, callbackURL: nil) }.get()
        }

        func complete(_ code: String, from peer: String) async -> Result<PairingDesk.Credentials, PairingDesk.Failure> {
            await harness.answer { [desk] in desk.value.complete(code: code, peer: peer) }
        }

        func status(_ code: String, token: String?) async -> (PairingBook.Status, PairingDesk.Credentials?) {
            await harness.answer { [desk] in desk.value.status(code: code, pollToken: token) }
        }

        var pendingCount: Int {
            get async { await harness.run { [desk] in desk.value.pendingCount } }
        }
    }

    static func wrongCode(for code: String) -> String { code == "AAAAAA" ? "BBBBBB" : "AAAAAA" }

    @Test func tenFailedCompletionsLockOutThatPeerButNotAnother() async throws {
        let desk = try Desk()
        defer { desk.stop() }
        let ticket = try await desk.request(name: "locked-out")
        let wrong = Self.wrongCode(for: ticket.code)

        for guess in 1...10 {
            #expect(await desk.complete(wrong, from: "127.0.0.1") == .failure(.unknownCode), "guess \(guess)")
        }
        // Refused before the file is touched: even the right code, and it stays pending.
        #expect(await desk.complete(ticket.code, from: "127.0.0.1") == .failure(.tooManyFailures))
        #expect(await desk.pendingCount == 1)

        let paired = try await desk.complete(ticket.code, from: "127.0.0.2").get()
        #expect(paired.sourceID.hasPrefix("src_"))
        #expect(await desk.pendingCount == 0)
    }

    @Test func aHundredFailedCompletionsFromAllPeersTogetherLockOutEveryPeer() async throws {
        let desk = try Desk()
        defer { desk.stop() }
        let ticket = try await desk.request(name: "global")
        let wrong = Self.wrongCode(for: ticket.code)

        for peer in 1...10 {
            for _ in 1...10 {
                #expect(await desk.complete(wrong, from: "127.0.0.\(peer)") == .failure(.unknownCode), "127.0.0.\(peer)")
            }
        }
        #expect(await desk.complete(ticket.code, from: "127.0.0.11") == .failure(.tooManyFailures))
        #expect(await desk.pendingCount == 1)
    }

    @Test func failuresStopCountingOnceTheMinuteHasPassed() async throws {
        let desk = try Desk()
        defer { desk.stop() }
        let ticket = try await desk.request(name: "window")
        let wrong = Self.wrongCode(for: ticket.code)
        for _ in 1...10 { _ = await desk.complete(wrong, from: "127.0.0.1") }

        desk.clock.advance(bySeconds: PairingDesk.failedCompletionWindow)
        #expect(await desk.complete(wrong, from: "127.0.0.1") == .failure(.tooManyFailures), "a full minute still counts")

        desk.clock.advance(bySeconds: 1)
        #expect(await desk.complete(wrong, from: "127.0.0.1") == .failure(.unknownCode), "older failures are forgotten")
    }

    @Test func onlyFailedCompletionsCountTowardsTheLockout() async throws {
        let desk = try Desk()
        defer { desk.stop() }
        let first = try await desk.request(name: "first")
        let wrong = Self.wrongCode(for: first.code)
        for _ in 1...9 { _ = await desk.complete(wrong, from: "127.0.0.1") }

        #expect((try? await desk.complete(first.code, from: "127.0.0.1").get()) != nil)
        // The success left the count at nine: one more failure is answered, the next is refused.
        #expect(await desk.complete(wrong, from: "127.0.0.1") == .failure(.unknownCode))
        #expect(await desk.complete(wrong, from: "127.0.0.1") == .failure(.tooManyFailures))
    }

    @Test func anExpiredCodeIsReportedAsExpiredAndCountsAsAFailure() async throws {
        let desk = try Desk()
        defer { desk.stop() }
        let ticket = try await desk.request(name: "late")
        let wrong = Self.wrongCode(for: ticket.code)
        desk.clock.advance(bySeconds: PairingBook.codeLifetime)
        for _ in 1...9 { _ = await desk.complete(wrong, from: "127.0.0.1") }

        #expect(await desk.complete(ticket.code, from: "127.0.0.1") == .failure(.expiredCode))
        #expect(await desk.complete(wrong, from: "127.0.0.1") == .failure(.tooManyFailures))
    }

    @Test func thePollTokenCollectsTheCredentialsOnce() async throws {
        let desk = try Desk()
        defer { desk.stop() }
        let ticket = try await desk.request(name: "device")
        let token = try #require(ticket.pollToken)
        #expect(await desk.status(ticket.code, token: token) == (.pending, nil))

        let credentials = try await desk.complete(ticket.code, from: "127.0.0.1").get()
        let wrongToken = await desk.status(ticket.code, token: token + "x")
        #expect(wrongToken.0 == .paired(sourceID: credentials.sourceID, claimable: true))
        #expect(wrongToken.1 == nil, "a wrong token collects nothing and claims nothing")

        let first = await desk.status(ticket.code.lowercased(), token: token)
        #expect(first.0 == .paired(sourceID: credentials.sourceID, claimable: true))
        #expect(first.1 == credentials)
        let second = await desk.status(ticket.code, token: token)
        #expect(second.0 == .paired(sourceID: credentials.sourceID, claimable: false))
        #expect(second.1 == nil)
    }
}
