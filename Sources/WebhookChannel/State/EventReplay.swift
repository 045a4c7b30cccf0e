import Platform
import Socket
import MCP

/// Delivers a logged event again (`webhook-channel replay`, `/control/replay`), marked
/// `replay: "true"`. Reading the line from the log and building the event (a digest parses
/// the payload) take time the loop must not spend, so both run on the file worker; the event
/// comes back to the loop, where the notifier bounds it like a fresh one. It keeps no state
/// between replays; `ChannelState` owns it and calls it on its executor (the loop thread).
struct EventReplay {
    enum Outcome: Equatable, Sendable { case replayed, unknownEvent, notReady, backlog }

    let eventLog: EventLog
    let sources: SourceDirectory
    let notifier: ChannelNotifier
    let loop: EventLoop
    /// The `state-files` worker, which `SourceDirectory` writes `sources.json` on.
    let fileWorker: SerialWorker

    func replay(id: String) -> Pending<Outcome> {
        let outcome = Pending<Outcome>()
        let location = eventLog.location(of: id)
        let directory = sources.store.directory
        let loop = self.loop
        let notifier = self.notifier
        sources.refreshIfChanged()
        let file = sources.file
        fileWorker.async {
            // Read and built here (a digest parses the payload), delivered on the loop.
            let event = EventLog.read(eventID: id, at: location, directory: directory).map { record in
                // A revoked source's events replay in full: there is no mode left to follow.
                let source = file.source(id: record.sourceID)
                return EventNotification.channelEvent(for: record, replay: true, contentMode: source?.contentMode ?? .full,
                                                      scheme: source?.scheme ?? .webhook)
            }
            loop.execute {
                guard let event else { return outcome.fulfil(.unknownEvent) }
                let weight = ChannelNotifier.weight(of: event)
                switch notifier.admit(weight: weight) {
                case .admitted:
                    notifier.deliver(event, weight: weight)
                    outcome.fulfil(.replayed)
                case .notReady: outcome.fulfil(.notReady)
                case .backlog: outcome.fulfil(.backlog)
                }
            }
        }
        return outcome
    }
}
