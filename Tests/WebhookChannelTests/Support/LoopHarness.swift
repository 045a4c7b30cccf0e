import Foundation
@testable import Platform
@testable import Socket
@testable import MCP
@testable import WebhookChannel

/// A running event loop for unit tests of the types `ChannelState` owns (`SourceDirectory`,
/// `PairingDesk`, `EventReplay`). Those are used only on the loop thread, as the actor uses
/// them; a test reaches them through `run` and `answer`, which do the work there and bring the
/// result back. Each call is a job of its own, so it starts a new loop round.
final class LoopHarness: Sendable {
    let loop: EventLoop

    init(clock: any Clock = SystemClock()) throws {
        loop = try EventLoop(clock: clock)
        loop.start()
    }

    func stop() { loop.stop() }

    /// Runs `body` on the loop thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: body()) }
        }
    }

    /// Starts `body` on the loop thread and returns the value of the `Pending` it gives, once
    /// that is fulfilled (on the loop, after a worker has done its part).
    func answer<T: Sendable>(_ body: @escaping @Sendable () -> Pending<T>) async -> T {
        await withCheckedContinuation { continuation in
            loop.execute { body().whenReady { continuation.resume(returning: $0) } }
        }
    }
}

/// Carries an object that lives on the loop thread between the test and `LoopHarness`'s
/// closures; the object itself is only touched there.
final class LoopConfined<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A `ChannelState` on a `LoopHarness`, with Claude Code's side of stdout a pipe the test reads:
/// the state itself, without sockets or the binary. Its client is initialised.
struct StateOnStdoutPipe {
    let harness: LoopHarness
    let pipe: ProtocolOutputTests.Pipe
    let notifier: ChannelNotifier
    let state: ChannelState

    init(stateDir: TempStateDir, maxWaitingBytes: Int = ChannelNotifier.maxWaitingBytes) throws {
        harness = try LoopHarness()
        pipe = try ProtocolOutputTests.Pipe()
        // The loop writes stdout itself, without blocking, as `serve` sets it up.
        let output = ProtocolOutput(fd: pipe.writeFD, direct: NonBlockingWriter.make(for: pipe.writeFD))
        notifier = ChannelNotifier(output: output, maxBytes: maxWaitingBytes)
        notifier.markInitialized()
        let log = Logger(enabled: false)
        state = ChannelState(loop: harness.loop, store: SourcesStore(directory: StateDirectory(path: stateDir.path), log: log),
                             clock: SystemClock(), notifier: notifier, log: log)
    }

    func stop() {
        harness.stop()
        pipe.close()
    }
}
