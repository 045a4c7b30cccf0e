import Signing

/// One paired source as `sources.json` says now, shared by reference: what a webhook is judged
/// against (`WebhookIntake.judge`) and what its event is built from. Made when the sources are
/// read (`SourceDirectory`), never changed; a change to the file makes new ones.
///
/// Why a box, and why the fields a webhook reads are taken out of the record once: a
/// `SourceRecord` is a dozen strings, and the compiler copies the whole struct (retaining each
/// string, then releasing it) to call a method on it or to hand it along, some forty atomic
/// operations a webhook; `route` was also a dictionary lookup in `extra` each time it was read.
/// Here each is one load.
final class PairedSource {
    let record: SourceRecord
    /// What it has received, shared with `SourceDirectory`'s table (loop only).
    let counter: SourceCounter
    let id: String
    let name: String
    let scheme: SignatureScheme
    let contentMode: ContentMode
    let route: String?
    let isApprover: Bool
    private let eventFilter: EventFilter?
    /// The accepted secrets when none was rotated out (then they do not depend on the time).
    private let currentSecretsAlone: [String]?

    init(_ record: SourceRecord, counter: SourceCounter = SourceCounter(SourceStats())) {
        self.record = record
        self.counter = counter
        id = record.id
        name = record.name
        scheme = record.scheme
        contentMode = record.contentMode
        route = record.route
        isApprover = record.isApprover
        eventFilter = record.eventFilter
        currentSecretsAlone = record.previousSecret == nil && record.earlierSecrets.isEmpty ? [record.hmacSecret] : nil
    }

    /// `SourceRecord.acceptedSecrets`.
    func acceptedSecrets(now: Double) -> [String] {
        currentSecretsAlone ?? record.acceptedSecrets(now: now)
    }

    /// `SourceRecord.notifies`.
    func notifies(eventType: String?) -> Bool {
        eventFilter?.passes(eventType) ?? true
    }
}

/// One source's counters, by reference: `SourceDirectory` keeps them by id and each
/// `PairedSource` holds its own, so an event is counted without hashing its source id (a
/// dictionary update cost some 700 instructions a webhook). Loop only.
final class SourceCounter {
    var stats: SourceStats

    init(_ stats: SourceStats) {
        self.stats = stats
    }
}
