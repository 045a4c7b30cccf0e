import Foundation
import Testing
@testable import Platform
@testable import HTTP
@testable import MCP
@testable import Signing
@testable import WebhookChannel

/// At the end of a loop pass the accepted events' notifications go to stdout, then their lines
/// to the log, and only then are they answered: Claude hears of an event no later than its
/// sender hears back, and the log's `write` does not delay the notification. Checked on the
/// state itself, without sockets: when the answer is released, the notification line must
/// already be in the stdout pipe.
struct NotificationOrderTests {
    @Test func anAcceptedWebhooksNotificationIsOnStdoutWhenItsAnswerIsReleased() async throws {
        let fixture = try await OneSourceOnStdoutPipe(name: "order")
        defer { fixture.stop() }
        let (harness, pipe, state) = (fixture.harness, fixture.pipe, fixture.state)
        let body = Array(#"{"type":"order.check","n":1}"#.utf8)
        let headers = fixture.signedHeaders(body: body, deliveryID: "order-1")
        let seenAtAnswer: String? = await harness.answer {
            state.assumeIsolated { state -> Pending<String?> in
                let seen = Pending<String?>()
                guard case .accepted(let written) = state.receiveWebhook(pathSourceID: nil, headers: headers, body: body)
                else {
                    seen.fulfil(nil)
                    return seen
                }
                written.whenReady { _ in seen.fulfil(pipe.readAvailable()) }
                state.commitAcceptedEvents()  // what the loop does at the end of the pass
                return seen
            }
        }
        let line = try #require(seenAtAnswer, "the webhook was not accepted")
        #expect(line.contains(#""method":"notifications/claude/channel""#), "stdout held \(line.debugDescription)")
        #expect(line.contains("order-1"))
    }

    /// The notification goes out before the log's `write`, so a pass the log refuses (a full
    /// disk; here the log's descriptor made read-only under it) was heard of when its sender
    /// gets the `503`. Until a write works again the log goes first: the retries meanwhile
    /// are refused without being notified again, and the one that finds the disk back is
    /// notified once, logged once and acknowledged.
    @Test func aPassTheLogRefusesWasNotifiedAndItsRetriesAreNotNotifiedUntilTheLogTakesOneAgain() async throws {
        let fixture = try await OneSourceOnStdoutPipe(name: "refused")
        defer { fixture.stop() }
        let (harness, pipe, state, dir) = (fixture.harness, fixture.pipe, fixture.state, fixture.dir)

        /// One delivery through a whole pass: how it was answered, and what stdout got.
        func deliver(_ deliveryID: String) async -> (answer: String, stdout: String) {
            let body = Array(#"{"type":"refused.check"}"#.utf8)
            let headers = fixture.signedHeaders(body: body, deliveryID: deliveryID)
            let answer: String = await harness.answer {
                state.assumeIsolated { state -> Pending<String> in
                    let seen = Pending<String>()
                    guard case .accepted(let written) = state.receiveWebhook(pathSourceID: nil, headers: headers, body: body)
                    else {
                        seen.fulfil("not accepted")
                        return seen
                    }
                    written.whenReady { commit in
                        switch commit {
                        case .acknowledged: seen.fulfil("acknowledged")
                        case .notWritten: seen.fulfil("notWritten")
                        default: seen.fulfil("\(commit)")
                        }
                    }
                    state.commitAcceptedEvents()
                    return seen
                }
            }
            return (answer, pipe.readAvailable())
        }

        let first = await deliver("refused-1")
        #expect(first.answer == "acknowledged")
        #expect(first.stdout.contains("refused-1"))

        // The log's descriptor now refuses writes (EBADF), as a full disk would (ENOSPC).
        let logFD = await harness.run { state.assumeIsolated { $0.eventLog.file.descriptor } }
        let saved = dup(logFD)
        let readOnly = open("/dev/null", O_RDONLY)
        #expect(saved >= 0 && readOnly >= 0)
        defer { close(saved); close(readOnly) }
        #expect(dup2(readOnly, logFD) == logFD)

        let refused = await deliver("refused-2")
        #expect(refused.answer == "notWritten")
        #expect(refused.stdout.contains("refused-2"), "notified before the log's write: \(refused.stdout.debugDescription)")
        for _ in 0..<2 {
            let retry = await deliver("refused-2")
            #expect(retry.answer == "notWritten")
            #expect(retry.stdout.isEmpty, "a retry while the log refuses was notified: \(retry.stdout.debugDescription)")
        }

        #expect(dup2(saved, logFD) == logFD)
        let taken = await deliver("refused-2")
        #expect(taken.answer == "acknowledged")
        #expect(taken.stdout.components(separatedBy: "refused-2").count == 2, "\(taken.stdout.debugDescription)")
        let next = await deliver("refused-3")
        #expect(next.answer == "acknowledged")
        #expect(next.stdout.contains("refused-3"))

        let logged = try String(contentsOfFile: dir.path + "/events.log", encoding: .utf8)
        let lines = logged.split(separator: "\n")
        #expect(lines.count == 3, "the retry's line once: \(logged)")
        #expect(lines.filter { $0.contains("refused-2") }.count == 1, "the retry's line once: \(logged)")
        #expect(logged.contains("refused-1") && logged.contains("refused-3"))
    }
}

/// A state with one paired source and its logs open, writing stdout into a pipe.
private struct OneSourceOnStdoutPipe {
    let dir: TempStateDir
    let source: SourceRecord
    let secret = "whsec_" + String(repeating: "cd", count: 32)
    private let onPipe: StateOnStdoutPipe
    var harness: LoopHarness { onPipe.harness }
    var pipe: ProtocolOutputTests.Pipe { onPipe.pipe }
    var state: ChannelState { onPipe.state }

    init(name: String) async throws {
        dir = try TempStateDir()
        try dir.createStateDir()
        source = SourceRecord(id: "src_" + name, name: name, hmacSecret: secret, callbackURL: nil,
                              pairedAt: "2026-01-02T03:04:05.678Z")
        try SourceDirectoryTests.writeSources([source], to: dir)
        onPipe = try StateOnStdoutPipe(stateDir: dir)
        let state = onPipe.state
        await onPipe.harness.run { state.assumeIsolated { $0.openLogs() } }
    }

    /// The headers of `body` signed with the `webhook` scheme, as a sender would send them.
    func signedHeaders(body: [UInt8], deliveryID: String) -> HTTPHeaders {
        HTTPHeaders(
            [("Content-Type", "application/json"), ("X-Source-Id", source.id)]
                + SignatureScheme.signingHeaders(scheme: .webhook, secret: secret, body: body,
                                                 timestamp: Int64(Date().timeIntervalSince1970), deliveryID: deliveryID))
    }

    func stop() {
        onPipe.stop()
        dir.remove()
    }
}
