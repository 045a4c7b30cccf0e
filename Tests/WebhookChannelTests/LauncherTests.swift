import Foundation
import Testing

/// Packaging (SPEC 8): `.mcp.json` runs `scripts/launch`, whose stdout must carry only
/// JSON-RPC, also when it has to build first.
@Suite struct LauncherTests {
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // WebhookChannelTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static var launchScript: URL { repoRoot.appendingPathComponent("scripts/launch") }

    /// A plugin root with `Package.swift` and an empty `Sources/`, both dated 2000-01-01.
    static func makePluginRoot(in dir: TempStateDir) throws -> URL {
        let root = dir.root.appendingPathComponent("plugin", isDirectory: true)
        let sources = root.appendingPathComponent("Sources", isDirectory: true)
        try FileManager.default.createDirectory(at: sources, withIntermediateDirectories: true)
        let manifest = root.appendingPathComponent("Package.swift")
        try Data("// swift-tools-version:6.0\n// not built in this test\n".utf8).write(to: manifest)
        let past = Date(timeIntervalSince1970: 946_684_800)  // touch -d '2000-01-01' (UTC)
        for url in [manifest, sources] {
            try FileManager.default.setAttributes([.modificationDate: past], ofItemAtPath: url.path)
        }
        return root
    }

    /// Writes a script and makes it executable while no child can be spawned: a child forked
    /// while the file is open for writing would keep it open, and running the script would
    /// then fail with ETXTBSY ("Text file busy").
    static func writeExecutable(_ text: String, to url: URL) throws {
        try ChildProcess.spawnLock.withLock {
            try Data(text.utf8).write(to: url)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        }
    }

    static func linkBinary(into root: URL) throws {
        let release = root.appendingPathComponent(".build/release", isDirectory: true)
        try FileManager.default.createDirectory(at: release, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: release.appendingPathComponent("webhook-channel").path,
            withDestinationPath: try ServerProcess.binaryURL().path)
    }

    /// Runs `bash scripts/launch` as Claude Code would, speaks initialize + tools/list, closes
    /// stdin and returns every stdout line and the stderr text.
    static func runLauncher(pluginRoot: URL, dir: TempStateDir, path: String? = nil, pluginData: URL? = nil) async throws -> (stdout: [String], stderr: String, exit: Termination) {
        var environment = launcherEnvironment(pluginRoot: pluginRoot, dir: dir, pluginData: pluginData)
        if let path { environment["PATH"] = path }
        let child = try ChildProcess(executable: URL(fileURLWithPath: "/bin/bash"), arguments: [launchScript.path],
                                     environment: environment)
        defer { child.kill() }
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"launcher-e2e","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        ]
        child.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        _ = try await poll(timeout: .seconds(30), "the tools/list answer (id 2) on the launcher's stdout; stdout:\n\(child.stdout.tail())\nstderr:\n\(child.stderr.tail())\nexit: \(String(describing: child.termination))") {
            if let line = child.stdout.textLines.first(where: { (try? JSON.parse($0))?["id"] == 2 }) { return line }
            if let ended = child.termination, child.stdout.isFinished {
                throw HarnessError("the launcher ended (\(ended)) without answering; stdout:\n\(child.stdout.tail())\nstderr:\n\(child.stderr.tail())")
            }
            return nil
        }
        child.closeStdin()
        let exit = try await child.waitForExit()
        _ = try await poll(timeout: .seconds(10), "the launcher's pipes to close") {
            child.stdout.isFinished && child.stderr.isFinished ? true : nil
        }
        return (child.stdout.textLines, child.stderr.text, exit)
    }

    /// What Claude Code gives the launcher: the plugin root and, when given, the plugin's data dir.
    static func launcherEnvironment(pluginRoot: URL, dir: TempStateDir, pluginData: URL? = nil) -> [String: String] {
        var environment = ServerProcess.childEnvironment(stateDir: dir)
        environment["CLAUDE_PLUGIN_ROOT"] = pluginRoot.path
        environment["CLAUDE_PLUGIN_DATA"] = pluginData?.path
        return environment
    }

    /// A directory with a fake `swift` (answering `--version` as Swift 6.2 does, running `build`
    /// as `body`), to put first on PATH.
    static func makeFakeSwift(in dir: TempStateDir, build body: String) throws -> URL {
        let fakeBin = dir.root.appendingPathComponent("fakebin", isDirectory: true)
        try FileManager.default.createDirectory(at: fakeBin, withIntermediateDirectories: true)
        let script = """
        #!/bin/sh
        if [ "$1" = --version ]; then echo "Swift version 6.2.1 (swift-6.2.1-RELEASE)"; exit 0; fi
        \(body)
        """
        try writeExecutable(script, to: fakeBin.appendingPathComponent("swift"))
        return fakeBin
    }

    /// Runs the launcher with stdin closed and waits for it to end.
    static func runToExit(arguments: [String] = [], environment: [String: String]) async throws -> (exit: Termination, child: ChildProcess) {
        let child = try ChildProcess(executable: URL(fileURLWithPath: "/bin/bash"), arguments: [launchScript.path] + arguments,
                                     environment: environment)
        child.closeStdin()
        let exit = try await child.waitForExit()
        _ = try await poll(timeout: .seconds(10), "pipes to close") { child.stdout.isFinished && child.stderr.isFinished ? true : nil }
        return (exit, child)
    }

    static func expectOnlyJSONRPC(_ lines: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(lines.count >= 2, "expected the two responses: \(lines)", sourceLocation: sourceLocation)
        for line in lines {
            let message = try? JSON.parse(line)
            #expect(message?.objectValue != nil && message?["jsonrpc"] == "2.0",
                    "a stdout line is not a JSON-RPC object: \(line.prefix(300))", sourceLocation: sourceLocation)
        }
        let tools = lines.compactMap { try? JSON.parse($0) }.first { $0["id"] == 2 }?["result"]?["tools"]?.arrayValue ?? []
        #expect(tools.contains { $0["name"] == "webhook_reply" }, "tools/list through the launcher: \(lines)", sourceLocation: sourceLocation)
    }

    @Test func withABuiltBinaryTheLauncherStdoutCarriesOnlyJSONRPC() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let root = try Self.makePluginRoot(in: dir)
        try Self.linkBinary(into: root)

        let run = try await Self.runLauncher(pluginRoot: root, dir: dir)

        Self.expectOnlyJSONRPC(run.stdout)
        #expect(run.exit == .exited(0), "\(run.exit); stderr:\n\(run.stderr)")
        #expect(!run.stderr.contains("building"), "an up-to-date binary must not be rebuilt: \(run.stderr)")
    }

    @Test func whenItMustBuildTheBuildOutputGoesToStderr() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let root = try Self.makePluginRoot(in: dir)
        let marker = dir.root.appendingPathComponent("swift-was-called")
        let fakeBin = try Self.makeFakeSwift(in: dir, build: """
        echo "Compiling junk"
        echo "[1/2] Compiling webhook-channel main.swift"
        echo "$*" > '\(marker.path)'
        mkdir -p '\(root.path)/.build/release'
        ln -sf '\(try ServerProcess.binaryURL().path)' '\(root.path)/.build/release/webhook-channel'
        echo "Build complete!"
        """)
        let path = fakeBin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")

        let run = try await Self.runLauncher(pluginRoot: root, dir: dir, path: path)

        #expect(FileManager.default.fileExists(atPath: marker.path), "the fake swift was not run; stderr:\n\(run.stderr)")
        let arguments = (try? String(contentsOf: marker, encoding: .utf8)) ?? ""
        #expect(arguments.contains("build"), "swift was run as: \(arguments)")
        Self.expectOnlyJSONRPC(run.stdout)
        #expect(!run.stdout.joined(separator: "\n").contains("Compiling"), "build output reached stdout")
        #expect(run.stderr.contains("Compiling junk"), "the build's output should go to stderr: \(run.stderr)")
        #expect(run.exit == .exited(0), "\(run.exit); stderr:\n\(run.stderr)")
    }

    @Test func aFailedBuildExitsNonZeroWithNothingOnStdout() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let root = try Self.makePluginRoot(in: dir)
        let fakeBin = try Self.makeFakeSwift(in: dir, build: "echo 'error: compile failed'\nexit 1")
        var environment = Self.launcherEnvironment(pluginRoot: root, dir: dir)
        environment["PATH"] = fakeBin.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")

        for arguments in [[], ["setup"]] {
            let (exit, child) = try await Self.runToExit(arguments: arguments, environment: environment)
            defer { child.kill() }

            #expect(exit != .exited(0), "\(arguments): \(exit)")
            #expect(child.stdout.textLines.isEmpty, "\(arguments): stdout: \(child.stdout.text)")
            #expect(child.stderr.text.contains("compile failed"), "\(arguments): \(child.stderr.text)")
        }
    }

    /// A directory of the tools the script uses (links to the real ones), plus executable
    /// scripts standing in for others (`fakes`: name → body), to be the whole PATH: no swift
    /// unless faked.
    static func makeTools(in dir: TempStateDir, fakes: [String: String] = [:]) throws -> URL {
        let tools = dir.root.appendingPathComponent("tools-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: tools, withIntermediateDirectories: true)
        for tool in ["uname", "sed", "head", "grep", "find", "dirname", "pkg-config", "cat", "mkdir"] where fakes[tool] == nil {
            for directory in ["/usr/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(directory)/\(tool)") {
                try? FileManager.default.createSymbolicLink(atPath: tools.appendingPathComponent(tool).path,
                                                            withDestinationPath: "\(directory)/\(tool)")
            }
        }
        for (name, body) in fakes {
            try writeExecutable("#!/bin/sh\n\(body)\n", to: tools.appendingPathComponent(name))
        }
        return tools
    }

    /// A `swift` that answers `--version` as `version` does.
    static func swiftAnswering(_ version: String) -> String {
        #"if [ "$1" = --version ]; then echo "Swift version \#(version) (swift-\#(version)-RELEASE)"; exit 0; fi; exit 1"#
    }

    /// A `uname` for a Mac: `-s` Darwin, `-m` arm64.
    static let darwinUname = #"case "$1" in -m) echo arm64;; *) echo Darwin;; esac"#

    /// Runs the launcher with `tools` as the whole PATH and expects what SPEC 10 asks of a
    /// missing prerequisite: a non-zero exit at once, nothing on stdout, one line on stderr,
    /// which ends with a command bash can parse. Returns that command.
    static func installCommand(tools: URL, dir: TempStateDir, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let root = try makePluginRoot(in: dir)
        var environment = launcherEnvironment(pluginRoot: root, dir: dir)
        environment["PATH"] = tools.path
        let (exit, child) = try await runToExit(environment: environment)
        defer { child.kill() }

        #expect(exit != .exited(0), "\(exit)", sourceLocation: sourceLocation)
        #expect(child.stdout.text.isEmpty, "stdout: \(child.stdout.text)", sourceLocation: sourceLocation)
        let lines = child.stderr.textLines.filter { !$0.isEmpty }
        #expect(lines.count == 1, "one line: \(child.stderr.text)", sourceLocation: sourceLocation)
        let line = try #require(lines.first, sourceLocation: sourceLocation)
        let command = try #require(line.firstMatch(of: #/; install (?:it|them) with: (.+)$/#).map { String($0.output.1) },
                                   "the line should end with `install it with: <command>`: \(line)", sourceLocation: sourceLocation)
        let parse = try ChildProcess(executable: URL(fileURLWithPath: "/bin/bash"), arguments: ["-n", "-c", command],
                                     environment: ["PATH": "/usr/bin:/bin"])
        defer { parse.kill() }
        parse.closeStdin()
        #expect(try await parse.waitForExit(timeout: .seconds(10)) == .exited(0), "not a command bash can run: \(command)",
                sourceLocation: sourceLocation)
        return command
    }

    /// SPEC 10: without Swift the launcher names, in one line, the command that installs it:
    /// on Linux swift.org's swiftly, for this machine's architecture.
    @Test func withoutSwiftOnLinuxTheLineEndsWithTheSwiftlyInstallCommand() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }

        let command = try await Self.installCommand(tools: try Self.makeTools(in: dir), dir: dir)

        let match = command.wholeMatch(of: #/curl -O https://download\.swift\.org/swiftly/linux/swiftly-(\w+)\.tar\.gz && tar zxf swiftly-(\w+)\.tar\.gz && \./swiftly init/#)
        #expect(match != nil, "\(command)")
        #expect(match?.output.1 == match?.output.2, "\(command)")
        #expect(["x86_64", "aarch64"].contains(match.map { String($0.output.1) } ?? ""), "this machine's architecture: \(command)")
    }

    @Test func aSwiftOlderThan6Point2GetsTheSameOneLineInstallCommand() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }

        let command = try await Self.installCommand(tools: try Self.makeTools(in: dir, fakes: ["swift": Self.swiftAnswering("6.1.2")]), dir: dir)

        #expect(command.hasPrefix("curl -O https://download.swift.org/swiftly/linux/swiftly-"), "\(command)")
        #expect(command.hasSuffix("./swiftly init"), "\(command)")
    }

    @Test func withSwiftlyInstalledAnOldSwiftIsUpdatedThroughIt() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let tools = try Self.makeTools(in: dir, fakes: ["swift": Self.swiftAnswering("5.10.1"), "swiftly": "exit 0"])

        #expect(try await Self.installCommand(tools: tools, dir: dir) == "swiftly install --use latest")
    }

    @Test func onAMacWithoutDeveloperToolsTheCommandInstallsThem() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let tools = try Self.makeTools(in: dir, fakes: ["uname": Self.darwinUname, "xcode-select": "exit 2"])

        #expect(try await Self.installCommand(tools: tools, dir: dir) == "xcode-select --install")
    }

    @Test func onAMacWithDeveloperToolsAndNoHomebrewTheCommandIsSwiftlysInstaller() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let tools = try Self.makeTools(in: dir, fakes: ["uname": Self.darwinUname, "xcode-select": "echo /Library/Developer/CommandLineTools",
                                                        "swift": Self.swiftAnswering("6.0.3")])

        #expect(try await Self.installCommand(tools: tools, dir: dir)
            == "curl -O https://download.swift.org/swiftly/darwin/swiftly.pkg && installer -pkg swiftly.pkg -target CurrentUserHomeDirectory && ~/.swiftly/bin/swiftly init")
    }

    @Test func onAMacWithHomebrewTheCommandInstallsSwiftlyThroughIt() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let tools = try Self.makeTools(in: dir, fakes: ["uname": Self.darwinUname, "xcode-select": "exit 0", "brew": "exit 1"])

        #expect(try await Self.installCommand(tools: tools, dir: dir) == "brew install swiftly && swiftly init")
    }

    /// SPEC 10: the OpenSSL 3 headers are checked too, with the same kind of line. (Linux's
    /// `apt-get`/`dnf` lines are not reached on a machine that has the headers, as this one does.)
    @Test func onAMacWithoutOpenSSL3TheCommandIsBrewInstallOpenSSL() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let tools = try Self.makeTools(in: dir, fakes: ["uname": Self.darwinUname, "swift": Self.swiftAnswering("6.2.1"),
                                                        "pkg-config": "exit 1"])

        #expect(try await Self.installCommand(tools: tools, dir: dir) == "brew install openssl@3 pkg-config")
    }

    /// With CLAUDE_PLUGIN_DATA the build goes there (the plugin folder is a replaceable
    /// cache), and `setup` builds without serving.
    @Test func withPluginDataTheBuildGoesThereAndSetupOnlyBuilds() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let root = try Self.makePluginRoot(in: dir)
        let data = dir.root.appendingPathComponent("plugin-data", isDirectory: true)
        let marker = dir.root.appendingPathComponent("swift-arguments")
        let fakeBin = try Self.makeFakeSwift(in: dir, build: """
        echo "$*" > '\(marker.path)'
        echo "Compiling junk"
        mkdir -p '\(data.path)/build/release'
        ln -sf '\(try ServerProcess.binaryURL().path)' '\(data.path)/build/release/webhook-channel'
        """)
        var environment = Self.launcherEnvironment(pluginRoot: root, dir: dir, pluginData: data)
        environment["PATH"] = fakeBin.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")

        let (exit, child) = try await Self.runToExit(arguments: ["setup"], environment: environment)
        defer { child.kill() }

        #expect(exit == .exited(0), "\(exit); stderr:\n\(child.stderr.text)")
        #expect(child.stdout.text.isEmpty, "setup must not serve or print on stdout: \(child.stdout.text)")
        #expect(child.stderr.text.contains("Compiling junk"), "\(child.stderr.text)")
        let arguments = (try? String(contentsOf: marker, encoding: .utf8)) ?? ""
        #expect(arguments.contains("--scratch-path \(data.path)/build"), "swift was run as: \(arguments)")

        // The binary built there is what the launcher then runs, without building again.
        try FileManager.default.removeItem(at: marker)
        let run = try await Self.runLauncher(pluginRoot: root, dir: dir, path: environment["PATH"], pluginData: data)
        Self.expectOnlyJSONRPC(run.stdout)
        #expect(!FileManager.default.fileExists(atPath: marker.path), "an up-to-date binary was rebuilt: \(run.stderr)")
    }

    @Test func mcpJSONRegistersWebhookThroughTheLauncher() throws {
        let json = try JSON.parse(Data(contentsOf: Self.repoRoot.appendingPathComponent(".mcp.json")))
        let servers = try #require(json["mcpServers"]?.objectValue, "\(json)")
        #expect(Array(servers.keys) == ["webhook"], "\(json)")
        let entry = try #require(servers["webhook"])
        let commandLine = ([entry["command"]?.stringValue ?? ""] + (entry["args"]?.arrayValue ?? []).compactMap(\.stringValue))
            .joined(separator: " ")
        #expect(commandLine.contains("scripts/launch"), ".mcp.json should run scripts/launch: \(entry)")
    }

    @Test func pluginManifestNamesThePluginWebhook() throws {
        let manifest = try JSON.parse(Data(contentsOf: Self.repoRoot.appendingPathComponent(".claude-plugin/plugin.json")))
        #expect(manifest["name"] == "webhook", "\(manifest)")
    }

    @Test func serverInfoNameThroughTheLauncherIsWebhook() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let root = try Self.makePluginRoot(in: dir)
        try Self.linkBinary(into: root)

        let run = try await Self.runLauncher(pluginRoot: root, dir: dir)

        let initialize = run.stdout.compactMap { try? JSON.parse($0) }.first { $0["id"] == 1 }
        #expect(initialize?["result"]?["serverInfo"]?["name"] == "webhook", "\(String(describing: initialize))")
        #expect(initialize?["result"]?["capabilities"]?["experimental"]?["claude/channel"] != nil, "\(String(describing: initialize))")
    }
}
