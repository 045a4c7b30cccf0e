import Foundation
import Testing

/// The operator CLI against a running server (SPEC 7, README "CLI reference"): exit codes
/// 0 ok / 1 failed / 2 usage, `--help` everywhere, and what each command prints.
@Suite struct OperatorCLITests {
    static let commands = ["serve", "pair", "sources", "add", "revoke", "rotate", "send", "sign", "events", "replay", "status",
                           "approver", "filter", "content"]

    // MARK: Usage

    @Test(arguments: commands)
    func helpExitsZeroAndUnknownOptionExitsTwo(_ command: String) async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }

        let help = try await runCLI([command, "--help"], stateDir: dir)
        let bogus = try await runCLI([command, "--no-such-option"], stateDir: dir)

        #expect(help.exitCode == 0, "\(help)")
        #expect(help.stdout.contains(command), "--help should name the command: \(help)")
        #expect(help.stdout.lowercased().contains("usage"), "\(help)")
        #expect(bogus.exitCode == 2, "\(bogus)")
        #expect(!bogus.stderr.isEmpty, "a usage error says what is wrong on stderr: \(bogus)")
        #expect(bogus.stdout.isEmpty, "usage errors go to stderr: \(bogus)")
    }

    @Test func anUnknownCommandExitsTwo() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let run = try await runCLI(["frobnicate"], stateDir: dir)
        #expect(run.exitCode == 2, "\(run)")
    }

    @Test func missingArgumentsExitTwo() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let cases: [[String]] = [
            ["add", "--scheme", "github"],           // no NAME
            ["add", "name"],                         // no --scheme
            ["add", "name", "--scheme", "gitlab"],   // unknown scheme
            ["add", "name", "--scheme"],             // option without value
            ["revoke"], ["rotate"], ["send"], ["sign"], ["replay"],
            ["revoke", "src_a", "src_b"],
        ]
        for arguments in cases {
            let run = try await runCLI(arguments, stateDir: dir, stdin: Data("s".utf8))
            #expect(run.exitCode == 2, "\(arguments): \(run)")
        }
        let sources: [String: JSON] = try dir.readSourcesFileIfPresent()?["sources"]?.objectValue ?? [:]
        #expect(sources.isEmpty, "a usage error added a source: \(sources)")
    }

    @Test func unknownIDsExitOne() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let file = channel.stateDir.root.appendingPathComponent("body.json")
        try Data(#"{"event":"x"}"#.utf8).write(to: file)
        let unknown = "src_0000000000000000000000000000abcd"

        for arguments in [["revoke", unknown], ["rotate", unknown], ["send", unknown, file.path], ["sign", unknown, file.path],
                          ["replay", "evt_unknown"], ["pair", "ZZZZZZ"]] {
            let run = try await runCLI(arguments, stateDir: channel.stateDir)
            #expect(run.exitCode == 1, "\(arguments): \(run)")
        }
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty)
    }

    // MARK: sources / add

    @Test func sourcesListsEverySourceWithItsSchemeAndNoSecret() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let paired = try await channel.http.pairSource(name: "paired-ci", callbackURL: "http://127.0.0.1:9/cb")
        let piped = try await ProviderFixtures.add("stripe-live", scheme: .stripe, secret: "whsec_pipedStripeSecretValue", stateDir: channel.stateDir)
        let generated = try await ProviderFixtures.add("gh-gen", scheme: .github, secret: nil, stateDir: channel.stateDir)

        let run = try await runCLI(["sources"], stateDir: channel.stateDir)
        let json = try await runCLI(["sources", "--json"], stateDir: channel.stateDir)

        #expect(run.exitCode == 0, "\(run)")
        for (id, name) in [(paired.sourceID, "paired-ci"), (piped.sourceID, "stripe-live"), (generated.sourceID, "gh-gen")] {
            let line = run.stdout.split(separator: "\n").first { $0.contains(id) }
            #expect(line?.contains(name) == true, "\(id) \(name) not listed: \(run)")
        }
        #expect(run.stdout.split(separator: "\n").first { $0.contains(piped.sourceID) }?.contains("stripe") == true, "\(run)")
        for secret in [paired.secret, piped.secret, generated.secret] {
            #expect(!run.stdout.contains(secret) && !json.stdout.contains(secret), "a secret is shown: \(run) \(json)")
        }
        #expect(!run.stdout.contains("whsec_") && !json.stdout.contains("whsec_"), "\(run)")
        #expect(json.exitCode == 0, "\(json)")
        let listed = try ProviderFixtures.list(from: json.stdout, key: "sources")
        #expect(Set(listed.compactMap { ($0["source_id"] ?? $0["id"])?.stringValue }) == [paired.sourceID, piped.sourceID, generated.sourceID],
                "\(json)")
    }

    @Test func addTellsTheRunningServerWithoutARestart() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let before = try await channel.http.get("/health").json()

        let source = try await ProviderFixtures.add("late", scheme: .github, secret: "late-secret", stateDir: channel.stateDir)

        let after = try await channel.http.get("/health").json()
        #expect(after["sources"]?.intValue == (before["sources"]?.intValue ?? -1) + 1, "\(before) → \(after)")
        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http).response)
        let sources = ProviderFixtures.text(ofToolResult: try #require(
            try await channel.mcp.callTool("webhook_sources", arguments: [:])["result"]))
        #expect(sources.contains(source.sourceID), "\(sources)")
        #expect(sources.contains("github"), "the scheme is listed: \(sources)")
        #expect(!sources.contains("late-secret"), "\(sources)")
    }

    /// A secret piped from a file saved with Windows line ends: the CR goes with the LF ("\r\n"
    /// is one Swift Character, so a character-wise trim kept it).
    @Test(arguments: ["crlf-secret\r\n", "crlf-secret\n", "crlf-secret\r\n\r\n", "crlf-secret\r"])
    func addDropsTrailingCRAndLFFromAPipedSecret(piped: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let source = try await ProviderFixtures.add("crlf", scheme: .github, secret: piped, stateDir: channel.stateDir)

        let stored = try ProviderFixtures.sourcesFile(channel.stateDir)["sources"]?[source.sourceID]?["hmac_secret"]
        #expect(stored == "crlf-secret", "\(String(describing: stored))")
        expectProviderAccepted(try await ProviderFixtures.post(source, on: channel.http, secret: "crlf-secret").response)
    }

    /// SPEC 2: the CLI treats a bad WEBHOOK_PORT as the server does, instead of printing a URL
    /// nothing listens on.
    @Test(arguments: ["abc", "70000", ""])
    func addWithABadWebhookPortIsAOneLineErrorNamingItAndAddsNothing(port: String) async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }

        let run = try await runCLI(["add", "x", "--scheme", "github"], stateDir: dir, environment: ["WEBHOOK_PORT": port])

        #expect(run.exitCode == 2, "\(run)")
        #expect(run.stdout.isEmpty, "\(run)")
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("WEBHOOK_PORT"), "\(run)")
        let sources: [String: JSON] = try dir.readSourcesFileIfPresent()?["sources"]?.objectValue ?? [:]
        #expect(sources.isEmpty, "\(sources)")
    }

    @Test func addWithAnIPv6WebhookHostPrintsItInBrackets() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }

        let run = try await runCLI(["add", "v6", "--scheme", "github"], stateDir: dir,
                                   environment: ["WEBHOOK_HOST": "::1", "WEBHOOK_PORT": "9123"])

        #expect(run.exitCode == 0, "\(run)")
        #expect(run.stdout.firstMatch(of: #/Webhook URL: http://\[::1\]:9123/webhook/src_[0-9a-f]{32}\n/#) != nil, "\(run)")
    }

    /// A state file that is there and cannot be read is a failure (exit 1, the reason on
    /// stderr), never "nothing there" with exit 0; a running server keeps the sources it read.
    @Test func commandsFailWhenTheStateFilesCannotBeReadAndTheServerKeepsItsSources() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "kept")
        _ = try await channel.http.postWebhook(#"{"n":1}"#, as: credentials)
        let dir = channel.stateDir
        // Unreadable even for root, and swapped in with one rename (a missing sources.json
        // would rightly mean no sources): a symbolic link to itself.
        let sources = dir.path + "/sources.json"
        try FileManager.default.createSymbolicLink(atPath: sources + ".loop", withDestinationPath: "sources.json")
        #expect(rename(sources + ".loop", sources) == 0)
        let events = dir.path + "/events.log"
        try FileManager.default.moveItem(atPath: events, toPath: events + ".saved")
        try FileManager.default.createDirectory(atPath: events, withIntermediateDirectories: false)
        for arguments in [["sources"], ["sources", "--json"], ["pair"], ["pair", "--json"], ["status"], ["events"],
                          ["send", credentials.sourceID, "-"]] {
            let run = try await runCLI(arguments, stateDir: dir, stdin: Data("{}".utf8))
            #expect(run.exitCode == 1, "\(arguments): \(run)")
            #expect(!run.stdout.contains("No ") && !run.stdout.contains("[]"), "\(arguments) claimed an empty state: \(run)")
            #expect(run.stderr.contains("sources.json") || run.stderr.contains("events.log"), "names the file: \(arguments): \(run)")
        }
        // A state dir that is a file is no state dir.
        let file = dir.root.appendingPathComponent("not-a-directory")
        try Data("x".utf8).write(to: file)
        for arguments in [["events"], ["sources"], ["status"]] {
            let run = try await runCLI(arguments, stateDir: dir, environment: ["WEBHOOK_STATE_DIR": file.path])
            #expect(run.exitCode == 1, "\(arguments) with a file for a state dir: \(run)")
        }
        // The server read the source before and still verifies its webhooks.
        let answer = try await channel.http.postWebhook(#"{"n":2}"#, as: credentials)
        #expect(answer.status == 200, "\(answer.status) \(answer.bodyText)")
    }

    // MARK: send / sign

    @Test func sendSignsWithEachSchemeAndTheServerDeliversIt() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        var ids: [String] = [try await channel.http.pairSource(name: "paired").sourceID]
        for scheme in ProviderScheme.allCases {
            ids.append(try await ProviderFixtures.add("send-\(scheme)", scheme: scheme, secret: scheme.sampleSecret, stateDir: channel.stateDir).sourceID)
        }

        for (index, id) in ids.enumerated() {
            let text = #"{"type":"cli.test","n":\#(index)}"#
            let file = channel.stateDir.root.appendingPathComponent("body-\(index).json")
            try Data(text.utf8).write(to: file)

            let run = try await runCLI(["send", id, file.path], stateDir: channel.stateDir)

            #expect(run.exitCode == 0, "send to \(id): \(run)")
            #expect(run.stdout.hasPrefix("HTTP 200"), "send prints `HTTP 200 …`: \(run)")
            let event = try await channel.mcp.channelEvent()
            #expect(event["meta"]?["source_id"] == .string(id), "\(event)")
            #expect(event["content"] == .string(text), "\(event)")
            #expect(event["meta"]?["event_type"] == "cli.test", "\(event)")
        }
        #expect(try await channel.mcp.channelEventsUntilQuiet().isEmpty)
    }

    /// Bound to another loopback address (`WEBHOOK_HOST=127.0.0.2`), the server answers
    /// requests addressed to it, so the URL `add` prints and `send` work; other names are
    /// still `421` (Linux: every 127/8 address is local there).
    #if os(Linux)
    @Test func aServerBoundToAnotherLoopbackAddressAnswersTheURLAddPrintsAndSend() async throws {
        let channel = try await TestChannel.start(environment: ["WEBHOOK_HOST": "127.0.0.2"])
        defer { channel.stop() }
        let port = channel.server.port
        let source = try await ProviderFixtures.add("bound", scheme: .standard, secret: ProviderScheme.standard.sampleSecret,
                                                    stateDir: channel.stateDir)
        let text = #"{"type":"bound.test"}"#
        let run = try await runCLI(["send", source.sourceID, "-"], stateDir: channel.stateDir, stdin: Data(text.utf8))
        #expect(run.exitCode == 0 && run.stdout.hasPrefix("HTTP 200"), "\(run)")
        #expect(try await channel.mcp.channelEvent()["content"] == .string(text))

        for (host, status) in [("127.0.0.2:\(port)", 200), ("127.0.0.3:\(port)", 421), ("evil.example:\(port)", 421)] {
            let socket = try await RawSocket.connect(host: "127.0.0.2", port: port)
            defer { socket.close() }
            try await socket.send("GET /health HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            #expect(try await socket.readResponse().status == status, "Host \(host)")
        }
    }
    #endif

    @Test func sendReadsTheBodyFromStdin() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let source = try await ProviderFixtures.add("stdin", scheme: .standard, secret: ProviderScheme.standard.sampleSecret, stateDir: channel.stateDir)
        let text = #"{"type":"from.stdin"}"#

        let run = try await runCLI(["send", source.sourceID, "-"], stateDir: channel.stateDir, stdin: Data(text.utf8))

        #expect(run.exitCode == 0, "\(run)")
        #expect(run.stdout.hasPrefix("HTTP 200"), "\(run)")
        #expect(try await channel.mcp.channelEvent()["content"] == .string(text))
    }

    @Test func sendWithoutARunningServerExitsOne() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let source: AddedSource
        do {
            let channel = try await TestChannel.start(stateDir: dir)
            defer { channel.stop() }
            source = try await ProviderFixtures.add("offline", scheme: .github, secret: "s", stateDir: dir)
            channel.server.closeStdin()
            _ = try await channel.server.child.waitForExit()
        }
        let file = dir.root.appendingPathComponent("b.json")
        try Data("{}".utf8).write(to: file)

        let run = try await runCLI(["send", source.sourceID, file.path], stateDir: dir)

        #expect(run.exitCode == 1, "\(run)")
    }

    @Test func signPrintsHeadersThatARawHTTPClientCanSend() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let paired = try await channel.http.pairSource(name: "paired")
        var targets: [(id: String, path: String, scheme: String)] = [(paired.sourceID, "/webhook", "paired")]
        for scheme in ProviderScheme.allCases {
            let added = try await ProviderFixtures.add("sign-\(scheme)", scheme: scheme, secret: scheme.sampleSecret, stateDir: channel.stateDir)
            targets.append((added.sourceID, added.path, scheme.rawValue))
        }

        for (index, target) in targets.enumerated() {
            let body = Data(#"{"type":"signed.by.cli","i":\#(index)}"#.utf8)
            let file = channel.stateDir.root.appendingPathComponent("sign-\(index).json")
            try body.write(to: file)

            let run = try await runCLI(["sign", target.id, file.path], stateDir: channel.stateDir)

            #expect(run.exitCode == 0, "\(target.scheme): \(run)")
            let lines = run.stdout.split(separator: "\n").map(String.init)
            var headers: [(String, String)] = []
            for line in lines {
                guard let separator = line.range(of: ": ") else {
                    Issue.record("\(target.scheme): not a `Name: value` line: \(line)")
                    continue
                }
                headers.append((String(line[..<separator.lowerBound]), String(line[separator.upperBound...])))
            }
            #expect(headers.allSatisfy { $0.0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } }, "\(headers)")
            let response = try await channel.http.request("POST", target.path, headers: headers, body: body)
            expectProviderAccepted(response)
            let event = try await channel.mcp.channelEvent()
            #expect(event["meta"]?["source_id"] == .string(target.id), "\(target.scheme): \(event)")
        }
    }

    // MARK: status

    @Test func statusPrintsThePortOfTheRunningServer() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let run = try await runCLI(["status"], stateDir: channel.stateDir)

        #expect(run.exitCode == 0, "\(run)")
        let port = String(channel.server.port)
        #expect(run.stdout.firstMatch(of: try Regex("(^|[^0-9])\(port)([^0-9]|$)")) != nil, "status must print port \(port): \(run)")
    }

    @Test func statusWithoutAServerExitsOne() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let never = try await runCLI(["status"], stateDir: dir)
        #expect(never.exitCode == 1, "no server ever ran: \(never)")

        do {
            let channel = try await TestChannel.start(stateDir: dir)
            defer { channel.stop() }
            #expect(try await runCLI(["status"], stateDir: dir).exitCode == 0)
            channel.server.closeStdin()
            _ = try await channel.server.child.waitForExit()
        }
        let after = try await runCLI(["status"], stateDir: dir)
        #expect(after.exitCode == 1, "the server has exited: \(after)")
    }

    @Test func statusWithAStaleServerFileExitsOne() async throws {
        // A server killed with SIGKILL cannot remove server.json; a pid that is not running
        // must not be reported as a running server.
        let dir = try TempStateDir()
        defer { dir.remove() }
        let server = try await ServerProcess.start(stateDir: dir)
        let port = server.port
        // The port may be read from the log line before server.json is written.
        _ = try await poll("server.json to be written") { ServerProcess.portFromServerFile(dir) }
        server.child.send(signal: SIGKILL)
        _ = try await server.child.waitForExit()
        server.stop()
        #expect(FileManager.default.fileExists(atPath: dir.serverFile.path), "precondition: server.json left behind")

        let run = try await runCLI(["status"], stateDir: dir)

        #expect(run.exitCode == 1, "server.json names port \(port) but its pid is dead: \(run)")
    }

    // MARK: Concurrency

    @Test func concurrentPairRequestsAndCLIApprovalsLoseNothing() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }

        let outcomes = try await withThrowingTaskGroup(of: (Int, PairingTicket, CLIResult?).self) { group in
            for index in 0..<10 {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 0...250)))
                    let ticket = try await channel.http.requestPairing(name: "concurrent-\(index)")
                    guard index % 2 == 0 else { return (index, ticket, nil) }
                    // Approve this code at once, while other /pair requests are still arriving.
                    let run = try await runCLI(["pair", ticket.code], stateDir: channel.stateDir)
                    return (index, ticket, run)
                }
            }
            var all: [(Int, PairingTicket, CLIResult?)] = []
            for try await outcome in group { all.append(outcome) }
            return all.sorted { $0.0 < $1.0 }
        }

        var approved: [String: String] = [:]  // source id → name
        var pendingCodes: Set<String> = []
        for (index, ticket, run) in outcomes {
            if let run {
                #expect(run.exitCode == 0, "pair \(ticket.code): \(run)")
                if let id = run.stdout.firstMatch(of: Formats.sourceIDInText) { approved[String(id.output)] = "concurrent-\(index)" }
            } else {
                pendingCodes.insert(ticket.code)
            }
        }
        #expect(approved.count == 5, "\(outcomes.map { $0.2?.description ?? "-" })")
        let file = try ProviderFixtures.sourcesFile(channel.stateDir)
        let sources = file["sources"]?.objectValue ?? [:]
        #expect(Set(sources.keys) == Set(approved.keys), "sources.json lost or gained a source: \(sources.keys) vs \(approved.keys)")
        for (id, name) in approved {
            #expect(sources[id]?["name"] == .string(name), "\(id): \(String(describing: sources[id]))")
        }
        let pending = Set((file["pending_pairings"]?.objectValue ?? [:]).keys.map { $0.uppercased() })
        #expect(pending == pendingCodes, "pending codes lost: file has \(pending), expected \(pendingCodes)")
        let health = try await channel.http.get("/health").json()
        #expect(health["sources"] == 5, "\(health)")
        #expect(health["pending"] == 5, "\(health)")
    }
}
