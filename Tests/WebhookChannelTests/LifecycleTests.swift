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

    /// End of input means Claude Code is gone: the server stops taking webhooks at once and
    /// exits without working through tool calls still queued. Here a hundred `webhook_event`
    /// calls each read and encode a 1 MB event (seconds of work on the one `mcp` thread, behind
    /// which the session would only then have seen the end of input); the process exits first,
    /// so most of them are never answered.
    @Test func closingStdinDoesNotWaitForToolCallsStillQueued() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await channel.http.pairSource(name: "big")
        let body = #"{"event":"big","pad":""# + String(repeating: "x", count: 1_000_000) + #""}"#
        let eventID = try #require(expectProviderAccepted(try await channel.http.postWebhook(body, as: source)))

        let calls = 100
        for index in 0..<calls {
            channel.mcp.send(["jsonrpc": "2.0", "id": .string("read-\(index)"), "method": "tools/call",
                              "params": ["name": "webhook_event", "arguments": ["event_id": .string(eventID)]]])
        }
        // The session has read every call and waits for the next line once the first answer is
        // out; from then on, the end of input reaches it only behind the queued calls.
        _ = try await channel.server.stdout.waitForLine("the first answer", where: { $0.contains(#""id":"read-0""#) })
        channel.server.closeStdin()
        try await expectCleanExit(channel.server)
        // Every byte the process wrote, read to the end of the pipe.
        _ = try await poll(timeout: .seconds(60), "stdout to end") { channel.server.stdout.isFinished ? true : nil }

        let answered = channel.server.stdout.textLines.filter { $0.contains(#""id":"read-"#) }
        // Waiting for the queue answered 79 of them here (in 20 s); not waiting, 4. Half is a
        // bound a machine many times faster would still meet.
        #expect(answered.count < calls / 2, "the exit waited for \(answered.count) of \(calls) queued tool calls")
    }

    /// SIGHUP is a closed terminal: the session is gone, and it ends in order too.
    @Test(arguments: [SIGTERM, SIGINT, SIGHUP])
    func terminationSignalExitsWithCodeZeroAndCleansUp(signal: Int32) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        channel.server.child.send(signal: signal)
        try await expectCleanExit(channel.server)
    }

    /// Started with stderr closed (`2>&-`), the log lines go nowhere, never to stdout: the
    /// descriptor number 2 would otherwise be the protocol's own copy of stdout.
    @Test func withStderrClosedAtStartStdoutCarriesOnlyProtocolLines() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let binary = try ServerProcess.binaryURL()
        let child = try ChildProcess(executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", #"exec 2>&- "$0""#, binary.path],
                                     environment: ServerProcess.childEnvironment(stateDir: dir, overrides: ["WEBHOOK_PORT": "0"]))
        defer { child.kill() }
        child.write(Data((#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"# + "\n").utf8))
        child.write(Data("this is not json\n".utf8))
        child.write(Data(#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#.utf8 + Data("\n".utf8)))
        _ = try await child.stdout.waitForLine("the ping's answer") { $0.contains(#""id":2"#) }
        child.closeStdin()
        _ = try await child.waitForExit()
        _ = try await poll("stdout to end") { child.stdout.isFinished ? true : nil }

        let lines = child.stdout.textLines
        #expect(lines.count == 3, "\(lines)")
        for line in lines {
            let message = try? JSON.parse(Data(line.utf8))
            #expect(message?["jsonrpc"] == "2.0", "not a protocol line on stdout: \(line)")
        }
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
