import Foundation

/// A harness failure with a reason a person can act on. Thrown errors fail the test with
/// this description, so every bounded wait says what it waited for and what it saw instead.
struct HarnessError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// The timeout every wait uses unless a test says otherwise: how long to wait for something
/// that should come at once (an answer, a notification, an exit). Only a failing test waits
/// this long, so it is generous: on CI's loaded 2-core machine a single test can take a
/// minute and a process can be off the CPU for seconds; 5 s was not enough there. A missing
/// feature still fails, in half a minute rather than hanging.
let defaultTimeout: Duration = .seconds(30)

extension Duration {
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}

/// Polls `probe` every few milliseconds until it returns a value or `timeout` passes.
/// Polling with `Task.sleep` keeps the cooperative thread pool free (a blocking wait on a
/// 2-core machine would starve the other tests running in parallel).
func poll<T>(
    timeout: Duration = defaultTimeout,
    every interval: Duration = .milliseconds(5),
    _ what: @autoclosure () -> String,
    _ probe: () throws -> T?
) async throws -> T {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        if let value = try probe() { return value }
        if clock.now >= deadline {
            throw HarnessError("timed out after \(timeout.seconds) s waiting for \(what())")
        }
        try await Task.sleep(for: interval)
    }
}

/// Runs a blocking operation on a global dispatch queue and awaits it, so blocking socket
/// and pipe calls never occupy a cooperative thread.
func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try work() })
        }
    }
}

/// Current Unix time in whole seconds, as `X-Timestamp` carries it.
func unixNow() -> Int {
    Int(Date().timeIntervalSince1970)
}
