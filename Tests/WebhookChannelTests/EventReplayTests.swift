import Foundation
import Testing
@testable import Platform
@testable import MCP
@testable import WebhookChannel

/// Replay on its own, without HTTP: a logged event is read back off the loop and delivered
/// again marked `replay`, bounded by the notifier like a fresh one; an id the log does not
/// hold is unknown.
struct EventReplayTests {
    final class Replayer: Sendable {
        let harness: LoopHarness
        let dir: TempStateDir
        let pipe: ProtocolOutputTests.Pipe
        let output: ProtocolOutput
        let notifier: ChannelNotifier
        private let eventLog: LoopConfined<EventLog>
        private let replayer: LoopConfined<EventReplay>

        init(maxWaitingEvents: Int = ChannelNotifier.maxWaitingEvents) throws {
            dir = try TempStateDir()
            try dir.createStateDir()
            harness = try LoopHarness()
            pipe = try ProtocolOutputTests.Pipe()
            output = ProtocolOutput(fd: pipe.writeFD)
            notifier = ChannelNotifier(output: output, maxEvents: maxWaitingEvents)
            let log = Logger(enabled: false)
            let directory = StateDirectory(path: dir.path)
            let fileWorker = SerialWorker(name: "test-state-files")
            let eventLog = EventLog(directory: directory, background: SerialWorker(name: "test-log-sync"), log: log)
            let sources = SourceDirectory(store: SourcesStore(directory: directory, log: log), loop: harness.loop,
                                          fileWorker: fileWorker, log: log)
            self.eventLog = LoopConfined(eventLog)
            replayer = LoopConfined(EventReplay(eventLog: eventLog, sources: sources, notifier: notifier, loop: harness.loop,
                                                fileWorker: fileWorker))
        }

        func stop() {
            harness.stop()
            pipe.close()
            dir.remove()
        }

        /// Opens the log and writes `records` to it, as the end of a loop pass does.
        func log(_ records: [EventRecord]) async -> Bool {
            await harness.run { [eventLog] in
                eventLog.value.open()
                for record in records { eventLog.value.append(record) }
                return eventLog.value.writePending()
            }
        }

        func replay(_ id: String) async -> EventReplay.Outcome {
            await harness.answer { [replayer] in replayer.value.replay(id: id) }
        }

        /// What reached stdout once the client is initialised.
        func delivered() -> String {
            notifier.markInitialized()
            output.flush(timeoutMilliseconds: 10_000)
            return pipe.readAvailable()
        }
    }

    static func record(_ id: String, body: String) -> EventRecord {
        EventRecord(id: id, sourceID: "src_gone", sourceName: "gone", deliveryID: "d-\(id)", type: "push", receivedAt: 1_700_000_000,
                    contentType: "application/json", headers: [:], body: Array(body.utf8), replayKeys: [])
    }

    @Test func aLoggedEventIsDeliveredAgainMarkedAsAReplay() async throws {
        let replayer = try Replayer()
        defer { replayer.stop() }
        #expect(await replayer.log([Self.record("evt_1", body: #"{"n":1}"#)]))

        #expect(await replayer.replay("evt_1") == .replayed)
        let line = replayer.delivered()
        #expect(line.contains(#""replay":"true""#), "\(line)")
        #expect(line.contains(#"{\"n\":1}"#), "a revoked source's event replays in full: \(line)")
    }

    @Test func anEventTheLogDoesNotHoldIsUnknownAndNothingIsDelivered() async throws {
        let replayer = try Replayer()
        defer { replayer.stop() }
        #expect(await replayer.log([Self.record("evt_1", body: "{}")]))

        #expect(await replayer.replay("evt_other") == .unknownEvent)
        #expect(replayer.notifier.waiting.messages == 0)
    }

    @Test func aReplayIsRefusedWhenTheWaitingRoomIsFull() async throws {
        let replayer = try Replayer(maxWaitingEvents: 1)
        defer { replayer.stop() }
        #expect(await replayer.log([Self.record("evt_1", body: "{}"), Self.record("evt_2", body: "{}")]))

        #expect(await replayer.replay("evt_1") == .replayed)
        // Claude Code has not initialised and one event already waits.
        #expect(await replayer.replay("evt_2") == .notReady)
        #expect(replayer.notifier.waiting.messages == 1)
    }
}
