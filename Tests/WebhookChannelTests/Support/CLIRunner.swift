import Foundation

/// What one run of the operator CLI (`webhook-channel <subcommand> …`) produced.
struct CLIResult: CustomStringConvertible {
    let termination: Termination
    let stdout: String
    let stderr: String

    var exitCode: Int32? {
        if case .exited(let code) = termination { return code }
        return nil
    }

    var description: String {
        "\(termination)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
    }
}

/// Runs the real binary as the operator CLI against a state directory (usually the one a
/// running `ServerProcess` uses), with `stdin` fed and then closed. Bounded: a run still
/// going after `timeout` is killed and reported as a failure. The bound is for a hung
/// command, not a measure of speed: a CLI start on CI's loaded machine can take seconds.
func runCLI(
    _ arguments: [String],
    stateDir: TempStateDir,
    stdin: Data = Data(),
    environment: [String: String] = [:],
    timeout: Duration = .seconds(60)
) async throws -> CLIResult {
    let child = try ChildProcess(
        executable: try ServerProcess.binaryURL(), arguments: arguments,
        environment: ServerProcess.childEnvironment(stateDir: stateDir, overrides: environment))
    defer { child.kill() }
    if !stdin.isEmpty { child.write(stdin) }
    child.closeStdin()
    let termination = try await child.waitForExit(timeout: timeout)
    // The readers finish right after the exit; wait for them so no output is lost.
    _ = try await poll(timeout: .seconds(10), "the CLI's output pipes to close") {
        child.stdout.isFinished && child.stderr.isFinished ? true : nil
    }
    return CLIResult(termination: termination, stdout: child.stdout.text, stderr: child.stderr.text)
}
