import Platform
import Signing

/// Pairing as the HTTP routes see it: `/pair` asks for a code, `/pair/complete` turns a code
/// into a source, `/pair/status` lets the requester poll and collect its credentials once.
/// `PairingBook` holds the rules, pure functions shared with the CLI; this adds what only the
/// server needs: fresh credentials, the changes made through `SourceDirectory` (on the file
/// worker), failures as the answers the routes give, and a limit on failed completions per
/// peer and overall, so that the code space cannot be walked. Owned by `ChannelState` and used
/// only on its executor (the loop thread), so its lockout needs no lock.
final class PairingDesk {
    enum Failure: Error, Equatable, Sendable {
        case tooManyPending
        case unknownCode
        case expiredCode
        case tooManyFailures
        /// Another process held the state dir's lock past the wait allowed; nothing changed.
        case stateBusy(String)
        case storage(String)
    }

    struct Credentials: Sendable, Equatable {
        let sourceID: String
        let secret: String
    }

    /// Failed `/pair/complete` attempts allowed per peer address and window before answering
    /// 429, so the 32^6 code space cannot be walked from a loopback process — and one process
    /// guessing does not lock out the person who holds the right code (a terminal's `curl`
    /// from another address, or `webhook-channel pair`). All peers together get ten times as
    /// many, so even many loopback addresses (127/8) cannot walk the space.
    static let maxFailedCompletionsPerPeer = 10
    static let maxFailedCompletions = 100
    static let failedCompletionWindow: Double = 60

    private let sources: SourceDirectory
    private let clock: any Clock
    private let log: Logger
    private var failedCompletions: [(peer: String, at: Double)] = []
    /// Attempts waiting for the file worker, by peer. They count against the limits as if
    /// they had failed: the outcome is known only after the `await`, and guesses sent all at
    /// once would otherwise all pass a check that no failure had been recorded for yet.
    private var completionsInFlight: [String: Int] = [:]

    init(sources: SourceDirectory, clock: any Clock, log: Logger) {
        self.sources = sources
        self.clock = clock
        self.log = log
    }

    /// Codes not yet approved or expired, as the cached file says (the caller refreshes it).
    var pendingCount: Int { PairingBook.livePending(sources.file, now: clock.now()).count }

    func request(name: String, callbackURL: String?) -> Pending<Result<PendingPairing, Failure>> {
        let now = clock.now()
        let pollToken = CredentialGenerator.pollToken()
        return sources.change { file in
            try PairingBook.request(&file, name: name, callbackURL: callbackURL, now: now,
                                    generateCode: CredentialGenerator.pairingCode, pollToken: pollToken)
        }.map { $0.mapError(Self.map) }
    }

    /// `peer` is the address the request came from (failures are limited per peer).
    func complete(code: String, peer: String) -> Pending<Result<Credentials, Failure>> {
        let now = clock.now()
        failedCompletions.removeAll { now - $0.at > Self.failedCompletionWindow }
        let inFlight = completionsInFlight.values.reduce(0, +)
        guard failedCompletions.count + inFlight < Self.maxFailedCompletions,
              failedCompletions.count(where: { $0.peer == peer }) + completionsInFlight[peer, default: 0]
                < Self.maxFailedCompletionsPerPeer
        else {
            let refused = Pending<Result<Credentials, Failure>>()
            refused.fulfil(.failure(.tooManyFailures))
            return refused
        }
        let sourceID = CredentialGenerator.sourceID()
        let secret = CredentialGenerator.hmacSecret()
        completionsInFlight[peer, default: 0] += 1
        return sources.change { file in
            try PairingBook.approve(&file, code: code, now: now, sourceID: sourceID, secret: secret)
        }.map { [log] result in
            self.completionsInFlight[peer, default: 1] -= 1
            if self.completionsInFlight[peer] == 0 { self.completionsInFlight[peer] = nil }
            switch result {
            case .success(let source):
                log.info("paired source \(source.id) (\(source.name.prefix(64)))")
                return .success(Credentials(sourceID: source.id, secret: source.hmacSecret))
            case .failure(let error):
                if error is PairingBook.Failure {
                    self.failedCompletions.append((peer, now))
                }
                return .failure(Self.map(error))
            }
        }
    }

    /// The device-flow poll. With the right poll token, the first `paired` answer carries the
    /// credentials; later ones do not. When the claim cannot be recorded (the lock held
    /// elsewhere, a failed write) the poll fails and the credentials stay unclaimed, so the
    /// next poll gets them: a `paired` answer without them would say they were collected.
    func status(code: String, pollToken: String?) -> Pending<Result<(PairingBook.Status, Credentials?), Failure>> {
        sources.refreshIfChanged()
        let file = sources.file
        let normalized = PairingBook.canonicalCode(code)
        let status = PairingBook.status(file, code: normalized, now: clock.now())
        let answer = Pending<Result<(PairingBook.Status, Credentials?), Failure>>()
        guard case .paired(let sourceID, true) = status, let pollToken,
              let approval = file.approved.first(where: { $0.code == normalized }),
              let expected = approval.pollToken,
              ConstantTime.equals(Array(expected.utf8), Array(pollToken.utf8))
        else {
            answer.fulfil(.success((status, nil)))
            return answer
        }
        return sources.change { file -> SourceRecord? in
            guard let index = file.approved.firstIndex(where: { $0.code == normalized }), !file.approved[index].claimed else {
                return nil
            }
            file.approved[index].claimed = true
            return file.source(id: sourceID)
        }.map { result in
            result.map { source in (status, source.map { Credentials(sourceID: $0.id, secret: $0.hmacSecret) }) }
                .mapError(Self.map)
        }
    }

    private static func map(_ error: any Error) -> Failure {
        switch error as? PairingBook.Failure {
        case .tooManyPending?: return .tooManyPending
        case .unknownCode?: return .unknownCode
        case .expiredCode?: return .expiredCode
        case nil:
            if let busy = error as? StateDirectoryBusy { return .stateBusy(busy.description) }
            return .storage(String(describing: error))
        }
    }
}
