import Foundation
import Testing
@testable import HTTP
@testable import MCP
@testable import Platform
@testable import Socket
@testable import WebhookChannel

/// Binding runs on the event loop, and on a loaded machine the job (which opens the event log)
/// can outlast the caller's wait. The caller then reports a timeout and retries; the server
/// bound after all must not stay registered on the loop with no owner (it crashed the loop at
/// its first connection), and the retry must bind a working one.
@Suite struct HTTPBindWaitTests {
    @Test func aBindTheCallerGaveUpOnIsStoppedWhenItCompletesAndTheRetryServes() async throws {
        let dir = try TempStateDir()
        let harness = try LoopHarness()
        defer { harness.stop(); dir.remove() }
        let log = Logger(enabled: false)
        let notifier = ChannelNotifier(output: ProtocolOutput(fd: -1))
        let state = ChannelState(loop: harness.loop, store: SourcesStore(directory: StateDirectory(path: dir.path), log: log),
                                 clock: SystemClock(), notifier: notifier, log: log)
        var config = ServerConfig(stateDirectory: dir.path)
        config.port = 0
        let bind = ServeCommand.httpBinder(config: config, loop: harness.loop, state: state, policy: CallbackURLPolicy(),
                                           log: log, sessions: { 1 }, waitSeconds: 1)
        let before = await harness.run { harness.loop.registeredCount }

        // The loop is busy past the caller's one-second wait.
        let release = ConditionSignal()
        harness.loop.execute { release.wait(timeoutMilliseconds: 30_000) }
        let first = await Self.onThread { bind(0) }
        release.signal()
        guard case .failure(let error) = first else {
            Issue.record("the bind was waited for past its deadline: \(first)")
            return
        }
        #expect(error.call.contains("timed out"), "\(error)")
        // The job has run by now (this one is queued behind it): nothing of it stays registered.
        #expect(await harness.run { harness.loop.registeredCount } == before, "an abandoned server is still on the loop")

        // The retry binds, and serves.
        let second = await Self.onThread { bind(0) }
        let server = try second.get()
        let http = RawHTTPClient(port: Int(server.address.port))
        #expect(try await http.get("/health").status == 200)
        await harness.run { server.stop() }
    }

    static func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DetachedThread.start(name: "test-bind") { continuation.resume(returning: work()) }
        }
    }
}
