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

        /// `lockWait`: seconds a change waits for another holder of the state dir's lock.
        init(lockWait: Double = ChannelState.defaultLockWait) throws {
            dir = try TempStateDir()
            harness = try LoopHarness(clock: clock)
            let log = Logger(enabled: false)
            let sources = SourceDirectory(store: SourcesStore(directory: StateDirectory(path: dir.path), log: log),
                                          loop: harness.loop, fileWorker: SerialWorker(name: "test-state-files"),
                                          lockWait: lockWait, log: log)
            desk = LoopConfined(PairingDesk(sources: sources, clock: clock, log: log))
        }

        func stop() {
            harness.stop()
            dir.remove()
        }

        func request(name: String) async throws -> PendingPairing {
            try await ask(name: name).get()
        }

        func ask(name: String) async -> Result<PendingPairing, PairingDesk.Failure> {
            await harness.answer { [desk] in desk.value.request(name: name, callbackURL: nil) }
        }

        func complete(_ code: String, from peer: String) async -> Result<PairingDesk.Credentials, PairingDesk.Failure> {
            await harness.answer { [desk] in desk.value.complete(code: code, peer: peer) }
        }

        func status(_ code: String, token: String?) async throws -> (PairingBook.Status, PairingDesk.Credentials?) {
            try await poll(code, token: token).get()
        }

        func poll(_ code: String, token: String?) async -> Result<(PairingBook.Status, PairingDesk.Credentials?), PairingDesk.Failure> {
            await harness.answer { [desk] in desk.value.status(code: code, pollToken: token) }
        }

        /// `times` completions of `code` started in one loop job, before any of them is done
        /// (as guesses sent all at once arrive in one pass), and their answers in order.
        func completeAtOnce(_ code: String, from peer: String, times: Int) async -> [Result<PairingDesk.Credentials, PairingDesk.Failure>] {
            await withCheckedContinuation { continuation in
                harness.loop.execute { [desk] in
                    var answers: [Result<PairingDesk.Credentials, PairingDesk.Failure>?] = Array(repeating: nil, count: times)
                    var left = times
                    for index in 0..<times {
                        desk.value.complete(code: code, peer: peer).whenReady { answer in
                            answers[index] = answer
                            left -= 1
                            if left == 0 { continuation.resume(returning: answers.map { $0! }) }
                        }
                    }
                }
            }
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

    /// The outcome of a completion is known only once the file worker has looked: guesses
    /// sent all at once count against the limit while they wait, so thirty of them from one
    /// peer get at most ten answers about the code and the rest `tooManyFailures`.
    @Test func guessesSentAllAtOnceCountAgainstThePeersLimitWhileTheyWait() async throws {
        let desk = try Desk()
        defer { desk.stop() }
        let ticket = try await desk.request(name: "rushed")
        let wrong = Self.wrongCode(for: ticket.code)

        let answers = await desk.completeAtOnce(wrong, from: "127.0.0.1", times: 30)

        #expect(answers.filter { $0 == .failure(.unknownCode) }.count == 10, "\(answers)")
        #expect(answers.filter { $0 == .failure(.tooManyFailures) }.count == 20, "\(answers)")
        #expect(await desk.complete(ticket.code, from: "127.0.0.1") == .failure(.tooManyFailures))
        #expect(try await desk.complete(ticket.code, from: "127.0.0.2").get().sourceID.hasPrefix("src_"))
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
        #expect(try await desk.status(ticket.code, token: token) == (.pending, nil))

        let credentials = try await desk.complete(ticket.code, from: "127.0.0.1").get()
        let wrongToken = try await desk.status(ticket.code, token: token + "x")
        #expect(wrongToken.0 == .paired(sourceID: credentials.sourceID, claimable: true))
        #expect(wrongToken.1 == nil, "a wrong token collects nothing and claims nothing")

        let first = try await desk.status(ticket.code.lowercased(), token: token)
        #expect(first.0 == .paired(sourceID: credentials.sourceID, claimable: true))
        #expect(first.1 == credentials)
        let second = try await desk.status(ticket.code, token: token)
        #expect(second.0 == .paired(sourceID: credentials.sourceID, claimable: false))
        #expect(second.1 == nil)
    }

    // MARK: Another process holding the state dir's lock

    @Test func aRequestOrCompletionWhileTheLockIsHeldFailsAsBusyAndWorksOnceItIsFree() async throws {
        let desk = try Desk(lockWait: 0.2)
        defer { desk.stop() }
        let ticket = try await desk.request(name: "waiting")
        let holder = try HeldStateLock(desk.dir)
        defer { holder.release() }

        let request = await desk.ask(name: "refused")
        #expect(Self.isBusy(request), "\(request)")
        for _ in 0..<PairingDesk.maxFailedCompletionsPerPeer + 1 {
            let completion = await desk.complete(ticket.code, from: "127.0.0.1")
            #expect(Self.isBusy(completion), "\(completion)")
        }

        holder.release()
        // Not counted as failed attempts (no lock-out), and the pending code was kept.
        let credentials = try await desk.complete(ticket.code, from: "127.0.0.1").get()
        #expect(credentials.sourceID.hasPrefix("src_"))
        #expect(await desk.pendingCount == 0, "the refused request left a pending pairing")
    }

    @Test func aCollectionWhileTheLockIsHeldFailsAsBusyAndTheNextPollCollects() async throws {
        let desk = try Desk(lockWait: 0.2)
        defer { desk.stop() }
        let ticket = try await desk.request(name: "device")
        let token = try #require(ticket.pollToken)
        let credentials = try await desk.complete(ticket.code, from: "127.0.0.1").get()
        let holder = try HeldStateLock(desk.dir)
        defer { holder.release() }

        let refused = await desk.poll(ticket.code, token: token)
        #expect(Self.isBusy(refused), "\(refused)")

        holder.release()
        let collected = try await desk.status(ticket.code, token: token)
        #expect(collected.0 == .paired(sourceID: credentials.sourceID, claimable: true))
        #expect(collected.1 == credentials, "the refused poll claimed the credentials")
    }

    static func isBusy<T>(_ result: Result<T, PairingDesk.Failure>) -> Bool {
        if case .failure(.stateBusy) = result { return true }
        return false
    }
}
