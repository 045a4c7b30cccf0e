import Foundation
import Testing
@testable import Platform
@testable import HTTP
@testable import MCP
@testable import Signing
@testable import WebhookChannel

/// At the end of a loop pass the accepted events go to the log, then their notifications to
/// stdout, and only then are they answered: Claude hears of an event no later than its sender
/// hears back. Checked on the state itself, without sockets: when the answer is released, the
/// notification line must already be in the stdout pipe.
struct NotificationOrderTests {
    @Test func anAcceptedWebhooksNotificationIsOnStdoutWhenItsAnswerIsReleased() async throws {
        let dir = try TempStateDir()
        try dir.createStateDir()
        let secret = "whsec_" + String(repeating: "cd", count: 32)
        let source = SourceRecord(id: "src_order", name: "order", hmacSecret: secret, callbackURL: nil,
                                  pairedAt: "2026-01-02T03:04:05.678Z")
        try SourceDirectoryTests.writeSources([source], to: dir)
        let onPipe = try StateOnStdoutPipe(stateDir: dir)
        defer { onPipe.stop(); dir.remove() }
        let (harness, pipe, state) = (onPipe.harness, onPipe.pipe, onPipe.state)
        await harness.run { state.assumeIsolated { $0.openLogs() } }

        let body = Array(#"{"type":"order.check","n":1}"#.utf8)
        let headers = HTTPHeaders(
            [("Content-Type", "application/json"), ("X-Source-Id", source.id)]
                + SignatureScheme.signingHeaders(scheme: .webhook, secret: secret, body: body,
                                                 timestamp: Int64(Date().timeIntervalSince1970), deliveryID: "order-1"))
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
}
