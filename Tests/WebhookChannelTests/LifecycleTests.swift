import Foundation
import Testing

/// Start-up reporting and clean shutdown (SPEC 2 and 3).
@Suite struct LifecycleTests {
    // SPEC 3: "Exit cleanly (code 0, within 0.5 s, HTTP socket closed)". The tests check the
    // clean exit; the 0.5 s is kept by construction (shutdown waits at most 150 ms for the loop
    // and 150 ms for stdout) rather than by a wall-clock bound a loaded machine could break.

    @Test func serverFileAndLogLineNameTheBoundPort() async throws {
        let server = try await ServerProcess.start()
        defer { server.stop() }

        let file = try await poll("server.json") { try? JSON.parse(Data(contentsOf: server.stateDir.serverFile)) }
        #expect(file["pid"] == .number(Double(server.pid)), "\(file)")
        #expect(file["host"] == "127.0.0.1", "\(file)")
        let port = try #require(file["port"]?.intValue, "\(file)")
        #expect(port > 0 && port <= 65_535)
        _ = try await server.stderr.waitForLine("`listening on 127.0.0.1:\(port)` on stderr") {
            $0.contains("listening on 127.0.0.1:\(port)")
        }
        let health = try await RawHTTPClient(port: port).get("/health")
        #expect(health.status == 200, "\(health)")
    }

    @Test func closingStdinExitsWithCodeZeroAndCleansUp() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.server.closeStdin()
        try await expectCleanExit(channel.server)
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func terminationSignalExitsWithCodeZeroAndCleansUp(signal: Int32) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.server.child.send(signal: signal)
        try await expectCleanExit(channel.server)
    }

    @Test func closingStdinBeforeAnyMessageStillExitsCleanly() async throws {
        let server = try await ServerProcess.start()
        defer { server.stop() }

        server.closeStdin()
        try await expectCleanExit(server)
    }

    @Test(arguments: [("WEBHOOK_PORT", "not-a-port"), ("WEBHOOK_PORT", "70000"), ("WEBHOOK_EVENT_LOOP", "kqueue"),
                      ("WEBHOOK_FSYNC", "maybe"), ("WEBHOOK_ALLOW_PRIVATE_CALLBACKS", "sometimes")])
    func badSettingIsAOneLineErrorNamingTheVariableAndExitTwo(variable: String, value: String) async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let child = try ChildProcess(executable: try ServerProcess.binaryURL(), arguments: [],
                                     environment: ServerProcess.childEnvironment(stateDir: dir, overrides: [variable: value]))
        defer { child.kill() }

        let termination = try await child.waitForExit()

        #expect(termination == .exited(2), "\(termination); stderr:\n\(child.stderr.tail())")
        _ = try await poll("stderr to close") { child.stderr.isFinished ? true : nil }
        #expect(child.stderr.textLines.contains { $0.contains(variable) }, "stderr:\n\(child.stderr.text)")
        #expect(child.stdout.count == 0, "stdout must stay clean: \(child.stdout.text)")
    }

    /// Exit code 0, `server.json` gone, the port closed.
    private func expectCleanExit(_ server: ServerProcess) async throws {
        let termination = try await server.child.waitForExit()

        #expect(termination == .exited(0), "stderr:\n\(server.stderr.tail())")
        #expect(!FileManager.default.fileExists(atPath: server.stateDir.serverFile.path), "server.json left behind")
        let refused: Bool
        do {
            let connection = try await HTTPConnection.open(port: server.port, timeout: .seconds(1))
            connection.close()
            refused = false
        } catch {
            refused = true
        }
        #expect(refused, "port \(server.port) still accepts connections after exit")
    }
}
