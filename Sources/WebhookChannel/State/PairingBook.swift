#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import JSON

/// The pairing rules, as pure functions over `SourcesFile`, shared by the server and the CLI so
/// both approve codes the same way under the same lock.
public enum PairingBook {
    /// Codes live five minutes, as in the seed.
    public static let codeLifetime: Double = 300
    /// Bounded so an unauthenticated `/pair` flood cannot grow the file.
    public static let maxPending = 16
    /// Expired codes still answer "expired" for this long before they are forgotten.
    public static let expiredRetention: Double = 900
    /// How long a poll-token holder has to collect approved credentials.
    public static let approvedRetention: Double = 600

    public enum Failure: Error, Equatable {
        case tooManyPending
        case unknownCode
        case expiredCode
    }

    public enum Status: Equatable, Sendable {
        case pending
        case paired(sourceID: String, claimable: Bool)
        case expired
        case unknown
    }

    public static func isExpired(_ pairing: PendingPairing, now: Double) -> Bool {
        guard let created = ISOTime.parse(pairing.createdAt) else { return true }
        return now - created >= codeLifetime
    }

    public static func livePending(_ file: SourcesFile, now: Double) -> [PendingPairing] {
        file.pending.filter { !isExpired($0, now: now) }
    }

    /// Forgets long-expired codes and collected or stale approvals. Returns whether anything changed.
    @discardableResult
    public static func prune(_ file: inout SourcesFile, now: Double) -> Bool {
        let before = (file.pending.count, file.approved.count)
        file.pending.removeAll { pairing in
            guard let created = ISOTime.parse(pairing.createdAt) else { return true }
            return now - created >= codeLifetime + expiredRetention
        }
        file.approved.removeAll { approval in
            guard let approved = ISOTime.parse(approval.approvedAt) else { return true }
            return now - approved >= approvedRetention
        }
        return before != (file.pending.count, file.approved.count)
    }

    /// Registers a new code; `generateCode` is retried on the (rare) collision.
    public static func request(_ file: inout SourcesFile, name: String, callbackURL: String?, now: Double,
                               generateCode: () -> String, pollToken: String) throws(Failure) -> PendingPairing
    {
        prune(&file, now: now)
        guard livePending(file, now: now).count < maxPending else { throw .tooManyPending }
        var code = generateCode()
        while file.pending.contains(where: { $0.code == code }) || file.approved.contains(where: { $0.code == code }) {
            code = generateCode()
        }
        let pairing = PendingPairing(code: code, name: name, callbackURL: callbackURL,
                                     createdAt: ISOTime.format(now), pollToken: pollToken, extra: JSONObject())
        file.pending.append(pairing)
        return pairing
    }

    /// Turns a live code into a source. An expired code is removed and reported as expired.
    public static func approve(_ file: inout SourcesFile, code rawCode: String, now: Double,
                               sourceID: String, secret: String) throws(Failure) -> SourceRecord
    {
        let code = canonicalCode(rawCode)
        guard let index = file.pending.firstIndex(where: { $0.code == code }) else { throw .unknownCode }
        let pairing = file.pending[index]
        if isExpired(pairing, now: now) {
            file.pending.remove(at: index)
            throw .expiredCode
        }
        file.pending.remove(at: index)
        let source = SourceRecord(id: sourceID, name: pairing.name, hmacSecret: secret,
                                  callbackURL: pairing.callbackURL, pairedAt: ISOTime.format(now))
        file.sources.append(source)
        file.approved.append(ApprovedPairing(code: code, sourceID: sourceID, approvedAt: ISOTime.format(now),
                                             pollToken: pairing.pollToken, claimed: false))
        return source
    }

    /// A code as a person typed it, as stored: surrounding whitespace dropped, letters
    /// uppercased (codes match case-insensitively).
    public static func canonicalCode(_ typed: String) -> String {
        typed.trimmingWhitespace().uppercased()
    }

    public static func status(_ file: SourcesFile, code rawCode: String, now: Double) -> Status {
        let code = canonicalCode(rawCode)
        if let approval = file.approved.first(where: { $0.code == code }) {
            return .paired(sourceID: approval.sourceID, claimable: !approval.claimed)
        }
        if let pairing = file.pending.first(where: { $0.code == code }) {
            return isExpired(pairing, now: now) ? .expired : .pending
        }
        return .unknown
    }
}
