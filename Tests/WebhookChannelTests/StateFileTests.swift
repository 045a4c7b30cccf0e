import Foundation
import Testing
@testable import Platform
@testable import WebhookChannel

/// `sources.json` and the state directory (SPEC 7): private modes, the seed's schema both
/// ways, edits by another process seen without a restart, corrupt files set aside.
@Suite struct StateFileTests {
    /// An editor or script rewriting `sources.json` in place (truncate, then write) is caught
    /// mid-write: the server keeps the sources it read whole, so a webhook in between is
    /// still verified, and it reads the file again once written.
    @Test func sourcesJSONRewrittenInPlaceKeepsItsSourcesServedMeanwhile() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        let whole = try Data(contentsOf: channel.stateDir.sourcesFile)

        let handle = try FileHandle(forWritingTo: channel.stateDir.sourcesFile)
        try handle.truncate(atOffset: 0)
        let midway = try await channel.http.postWebhook(#"{"event":"midway"}"#, as: credentials)
        try handle.write(contentsOf: whole)
        try handle.close()
        let after = try await channel.http.postWebhook(#"{"event":"after"}"#, as: credentials)

        expectProviderAccepted(midway)
        expectProviderAccepted(after)
        #expect(try await channel.http.get("/health").json()["sources"] == 1)
    }

    /// A `sources.json` left corrupt is set aside after a second, and the sources the server
    /// read whole before are written back in its place: nothing is lost, and the broken file
    /// is kept for whoever made it.
    @Test func aSourcesJSONLeftCorruptIsSetAsideAndTheGoodSourcesWrittenBack() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")

        try channel.stateDir.writeSourcesFile(#"{"sources": {"#)
        expectProviderAccepted(try await channel.http.postWebhook(#"{"event":"kept"}"#, as: credentials))
        _ = try await poll(timeout: .seconds(30), "the corrupt file to be set aside") {
            channel.stateDir.entries().contains { $0.hasPrefix("sources.json.corrupt-") } ? true : nil
        }
        let restored = try await poll(timeout: .seconds(30), "sources.json to be written back") {
            (try? JSON.parse(Data(contentsOf: channel.stateDir.sourcesFile)))?["sources"]?[credentials.sourceID] != nil ? true : nil
        }
        #expect(restored)
        expectProviderAccepted(try await channel.http.postWebhook(#"{"event":"after"}"#, as: credentials))
    }

    /// A CLI command that comes to a corrupt file after the settle time waits on while a
    /// server runs for the state dir (it writes the sources back; a loaded machine may get
    /// there late) and then reads what it wrote; with no server it goes on at once. The
    /// server here is a `server.json` naming this live process, and the write-back a thread.
    @Test func pastTheSettleTimeTheCLIWaitsForARunningServerOnly() throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let store = SourcesStore(directory: StateDirectory(path: dir.path), log: Logger(enabled: false))
        func breakTheFileLongAgo() throws {
            try dir.writeSourcesFile(#"{"sources": {"#)
            var times = [timeval(tv_sec: time(nil) - 60, tv_usec: 0), timeval(tv_sec: time(nil) - 60, tv_usec: 0)]
            #expect(utimes(dir.sourcesFile.path, &times) == 0)
        }

        try breakTheFileLongAgo()
        store.waitWhileFreshlyCorrupt()
        guard case .corrupt = store.snapshot() else {
            Issue.record("with no server the CLI should not have waited for a write-back")
            return
        }

        try dir.writeAtomically(#"{"pid": \#(getpid()), "host": "127.0.0.1", "port": 9}"#, to: dir.serverFile)
        try breakTheFileLongAgo()
        let fixed = #"{"sources": {}, "pending": {}}"#
        let writer = Thread { usleep(500_000); try? dir.writeSourcesFile(fixed) }
        writer.start()
        store.waitWhileFreshlyCorrupt()
        guard case .file = store.snapshot() else {
            Issue.record("with a server running the CLI should have waited for its write-back")
            return
        }
    }

    /// An idle server (no request comes) still notices a corrupt `sources.json`: a CLI
    /// command run right after the file was broken waits, and then reads the sources the
    /// server wrote back; `add` adds to them instead of saving itself alone over them.
    @Test(arguments: ["sources", "add"])
    func aCLICommandRightAfterTheFileBrokeSeesTheSourcesTheServerWroteBack(command: String) async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let first = try await channel.http.pairSource(name: "first")
        let second = try await channel.http.pairSource(name: "second")

        try channel.stateDir.writeSourcesFile(#"{"sources": {"#)
        let run = command == "sources"
            ? try await runCLI(["sources", "--json"], stateDir: channel.stateDir)
            : try await runCLI(["add", "third", "--scheme", "github"], stateDir: channel.stateDir,
                               stdin: Data("a-provider-secret\n".utf8))
        #expect(run.exitCode == 0, "\(run)")
        let file = try JSON.parse(Data(contentsOf: channel.stateDir.sourcesFile))
        for id in [first.sourceID, second.sourceID] {
            #expect(file["sources"]?[id] != nil, "\(id) lost: \(file)")
            #expect(run.stdout.contains(id) || command == "add", "\(command) did not list \(id): \(run)")
        }
        if command == "add" {
            #expect(file["sources"]?.objectValue?.count == 3, "\(file)")
        }
        expectProviderAccepted(try await channel.http.postWebhook(#"{"event":"still-paired"}"#, as: first))
        #expect(channel.stateDir.entries().contains { $0.hasPrefix("sources.json.corrupt-") },
                "the broken file is kept aside: \(channel.stateDir.entries())")
    }

    @Test func pairedSourceIsStoredPrivatelyInTheSeedSchemaAsPrettyJSON() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let callback = "http://127.0.0.1:9/callback"
        let pairing = Date()
        let credentials = try await channel.http.pairSource(name: "ci", callbackURL: callback)
        let dir = channel.stateDir

        #expect(dir.mode(of: dir.path) == 0o700, "state dir mode \(String(dir.mode(of: dir.path) ?? -1, radix: 8))")
        #expect(dir.mode(of: dir.sourcesFile.path) == 0o600,
                "sources.json mode \(String(dir.mode(of: dir.sourcesFile.path) ?? -1, radix: 8))")

        let text = try dir.readSourcesFile()
        let file = try JSON.parse(text)
        let source = try #require(file["sources"]?[credentials.sourceID], "source missing from \(text)")
        #expect(source["name"] == "ci")
        #expect(source["hmac_secret"] == .string(credentials.secret))
        #expect(source["callback_url"] == .string(callback))
        expectRecentUTCTimestamp(source["paired_at"], since: pairing)
        #expect(file["pending_pairings"]?.objectValue?.isEmpty == true, "\(text)")

        // 2-space pretty JSON, as the seed's skill writes it.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "{", "\(text)")
        #expect(!text.contains("\t"))
        #expect(lines.contains { $0.wholeMatch(of: #/  "sources" ?: \{/#) != nil }, "\(text)")
        #expect(lines.contains { $0.wholeMatch(of: #/  "pending_pairings" ?: \{ *\}?,?/#) != nil }, "\(text)")
        #expect(lines.contains { $0.wholeMatch(of: #/    "src_[0-9a-f]{32}" ?: \{/#) != nil }, "\(text)")
        #expect(lines.contains { $0.wholeMatch(of: #/      "hmac_secret" ?: "whsec_[0-9a-f]{64}",?/#) != nil }, "\(text)")
    }

    @Test func everyStateFileIsPrivate() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "ci")
        #expect(try await channel.http.postWebhook(#"{"event":"logged"}"#, as: credentials).status == 200)
        _ = try await channel.mcp.channelEvent()

        let dir = channel.stateDir
        let enumerator = try #require(FileManager.default.enumerator(atPath: dir.path))
        var checked = 0
        while let relative = enumerator.nextObject() as? String {
            let path = dir.url.appendingPathComponent(relative).path
            let isDirectory = (try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType) == .typeDirectory
            let mode = dir.mode(of: path)
            #expect(mode == (isDirectory ? 0o700 : 0o600), "\(relative) has mode \(String(mode ?? -1, radix: 8))")
            checked += 1
        }
        #expect(checked >= 2, "expected at least sources.json and server.json in \(dir.entries())")
    }

    @Test func pendingPairingIsStoredInTheSeedSchema() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let callback = "http://127.0.0.1:9/hook"
        let requested = Date()

        let ticket = try await channel.http.requestPairing(name: "later", callbackURL: callback)

        let file = try await poll("the pending code in sources.json") {
            (try? JSON.parse(channel.stateDir.readSourcesFile())).flatMap { $0["pending_pairings"]?[ticket.code] != nil ? $0 : nil }
        }
        let pending = try #require(file["pending_pairings"]?[ticket.code])
        #expect(pending["name"] == "later")
        #expect(pending["callback_url"] == .string(callback))
        expectRecentUTCTimestamp(pending["created_at"], since: requested)
        #expect(file["sources"]?.objectValue?.isEmpty == true, "\(file)")
    }

    @Test func fileWrittenBySeedSkillLoadsUnchanged() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let legacy = SourceCredentials(sourceID: "src_0123456789abcdef0123456789abcdef",
                                       secret: "whsec_" + String(repeating: "5a", count: 32))
        // Written right before the server is spawned, not before it waits for a server slot:
        // on a loaded CI machine that wait can outlast the code's 5 minutes.
        let channel = try await TestChannel.start(stateDir: dir) { dir in
            try dir.writeSourcesFile(seedFile(
                source: legacy, name: "legacy", pendingCode: "K7M2QX",
                createdAt: nodeISOString(Date().addingTimeInterval(-20))))
        }
        defer { channel.stop() }

        let health = try await channel.http.get("/health").json()
        #expect(health["sources"] == 1, "\(health)")
        #expect(health["pending"] == 1, "\(health)")

        let webhook = try await channel.http.postWebhook(#"{"event":"legacy"}"#, as: legacy, scheme: .seed)
        #expect(webhook.status == 200, "\(webhook)")
        let meta = try await channel.mcp.channelEvent()["meta"]
        #expect(meta?["source_id"] == .string(legacy.sourceID))
        #expect(meta?["source_name"] == "legacy")

        let status = try await channel.http.get("/pair/status?code=K7M2QX").json()
        #expect(status["status"] == "pending", "\(status)")
        let completed = try await channel.http.completePairing(code: "K7M2QX")
        #expect(completed.sourceID.wholeMatch(of: Formats.sourceID) != nil)

        let file = try JSON.parse(dir.readSourcesFile())
        #expect(file["sources"]?[legacy.sourceID]?["hmac_secret"] == .string(legacy.secret), "\(file)")
        #expect(file["sources"]?[legacy.sourceID]?["callback_url"] == .null, "\(file)")
        #expect(file["sources"]?[completed.sourceID]?["name"] == "later", "\(file)")
        #expect(!dir.entries().contains { $0.contains("corrupt") }, "\(dir.entries())")
    }

    @Test func expiredSeedPendingCodeCannotBeCompleted() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let legacy = SourceCredentials(sourceID: "src_fedcba9876543210fedcba9876543210",
                                       secret: "whsec_" + String(repeating: "c3", count: 32))
        try dir.writeSourcesFile(seedFile(
            source: legacy, name: "legacy", pendingCode: "K7M2QX",
            createdAt: nodeISOString(Date().addingTimeInterval(-301))))
        let channel = try await TestChannel.start(stateDir: dir)
        defer { channel.stop() }

        let response = try await channel.http.postJSON("/pair/complete", ["code": "K7M2QX"])

        #expect((400..<500).contains(response.status), "an expired code completed: \(response)")
        #expect(try response.json()["hmac_secret"] == nil)
        let status = try await channel.http.get("/pair/status?code=K7M2QX").json()
        // "expired" per SPEC 4; "unknown" is also truthful once an expired code was pruned.
        #expect(status["status"] == "expired" || status["status"] == "unknown", "\(status)")
        #expect(try await channel.http.get("/health").json()["sources"] == 1)
    }

    @Test func sourceAddedByAnotherProcessIsAcceptedWithoutRestart() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        _ = try await channel.http.pairSource(name: "existing")
        let added = SourceCredentials(sourceID: "src_aaaabbbbccccddddeeeeffff00001111",
                                      secret: "whsec_" + String(repeating: "7e", count: 32))
        #expect(try await channel.http.postWebhook(#"{"event":"early"}"#, as: added).status == 401)

        try await editSourcesFile(channel.stateDir) { sources in
            sources[added.sourceID] = [
                "name": "edited-in", "hmac_secret": .string(added.secret),
                "callback_url": nil, "paired_at": .string(nodeISOString(Date())),
            ]
        }
        let response = try await channel.http.postWebhook(#"{"event":"late"}"#, as: added)

        #expect(response.status == 200, "\(response)")
        let meta = try await channel.mcp.channelEvent()["meta"]
        #expect(meta?["source_name"] == "edited-in")
    }

    @Test func sourceRemovedByAnotherProcessIsRefusedOnTheNextRequest() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let credentials = try await channel.http.pairSource(name: "doomed")
        #expect(try await channel.http.postWebhook(#"{"event":"before"}"#, as: credentials).status == 200)

        try await editSourcesFile(channel.stateDir) { sources in
            sources[credentials.sourceID] = nil
        }
        let response = try await channel.http.postWebhook(#"{"event":"after"}"#, as: credentials)

        #expect(response.status == 401, "\(response)")
    }

    @Test func corruptSourcesFileIsSetAsideAndTheServerKeepsServing() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try dir.createStateDir()
        try dir.writeSourcesFile("{not json")
        let channel = try await TestChannel.start(stateDir: dir)
        defer { channel.stop() }

        let health = try await channel.http.get("/health")
        #expect(health.status == 200, "\(health)")
        #expect(try health.json()["status"] == "ok")
        #expect(try health.json()["sources"] == 0)

        let setAside = try await poll("a sources.json.corrupt-* file in \(dir.entries())") {
            dir.entries().first { $0.hasPrefix("sources.json.corrupt-") }
        }
        let kept = try String(contentsOf: dir.url.appendingPathComponent(setAside), encoding: .utf8)
        #expect(kept == "{not json", "the corrupt content must be kept as it was")
        _ = try await channel.server.stderr.waitForLine("a log line saying `corrupt`") {
            $0.lowercased().contains("corrupt")
        }

        let credentials = try await channel.http.pairSource(name: "fresh")
        let file = try JSON.parse(dir.readSourcesFile())
        #expect(file["sources"]?[credentials.sourceID]?["name"] == "fresh", "\(file)")
    }
}

extension StateFileTests {
    /// Writes `sources.json` by rename, as the seed's skill (Claude's Write tool) leaves it: 0644.
    /// The seed's file with `source` and one pending code, as its skill leaves it: mode 0644.
    static func writeWorldReadableSeedFile(_ dir: TempStateDir, source: SourceCredentials, name: String) throws {
        try writeWorldReadableSourcesFile(dir, seedFile(source: source, name: name, pendingCode: "K7M2QX",
                                                        createdAt: nodeISOString(Date())))
    }

    static func writeWorldReadableSourcesFile(_ dir: TempStateDir, _ text: String) throws {
        try dir.createStateDir()
        let temp = dir.url.appendingPathComponent(".seed-\(UUID().uuidString).tmp")
        guard FileManager.default.createFile(atPath: temp.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]),
              chmod(temp.path, 0o644) == 0, rename(temp.path, dir.sourcesFile.path) == 0
        else { throw HarnessError("could not write a 0644 sources.json in \(dir.path)") }
    }

    static func octal(_ mode: Int?) -> String { mode.map { String($0, radix: 8) } ?? "none" }

    /// SPEC 7 "every other file 0600". Started while another process holds the state lock: the
    /// chmod needs none, so it is not put off until the lock is free.
    @Test func aSeedWrittenSourcesFileWithMode644IsMade600WhenTheServerStarts() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let legacy = SourceCredentials(sourceID: "src_0123456789abcdef0123456789abcdef", secret: "whsec_" + String(repeating: "4d", count: 32))
        try Self.writeWorldReadableSeedFile(dir, source: legacy, name: "legacy")
        #expect(dir.mode(of: dir.sourcesFile.path) == 0o644, "the test's own precondition")
        let held = try HeldStateLock(dir)
        defer { held.release() }

        let channel = try await TestChannel.start(stateDir: dir)
        defer { channel.stop() }

        #expect(dir.mode(of: dir.sourcesFile.path) == 0o600, "mode \(Self.octal(dir.mode(of: dir.sourcesFile.path)))")
        #expect(!held.isReleased)
        _ = try await channel.server.stderr.waitForLine("a warning naming sources.json and its old mode") {
            $0.contains("sources.json") && $0.contains("644")
        }
        #expect(try await channel.http.postWebhook(#"{"event":"still-served"}"#, as: legacy, scheme: .seed).status == 200)
        #expect(try String(contentsOf: dir.sourcesFile, encoding: .utf8).contains(legacy.secret), "the content is untouched")
    }

    /// The seed's skill may write the file again while the server runs: the server's next
    /// (lock-free) read of it tightens it too.
    @Test func aSourcesFileRewrittenWithMode644WhileTheServerRunsIsMade600() async throws {
        let channel = try await TestChannel.start()
        defer { channel.stop() }
        let dir = channel.stateDir
        let legacy = SourceCredentials(sourceID: "src_fedcba9876543210fedcba9876543210", secret: "whsec_" + String(repeating: "e1", count: 32))

        try Self.writeWorldReadableSeedFile(dir, source: legacy, name: "late")
        #expect(try await channel.http.postWebhook(#"{"event":"after-rewrite"}"#, as: legacy, scheme: .seed).status == 200)

        #expect(dir.mode(of: dir.sourcesFile.path) == 0o600, "mode \(Self.octal(dir.mode(of: dir.sourcesFile.path)))")
    }

    @Test func aCorruptSourcesFileSetAsideIsMode600() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        try Self.writeWorldReadableSourcesFile(dir, "{not json")
        let channel = try await TestChannel.start(stateDir: dir)
        defer { channel.stop() }

        let setAside = try await poll("a sources.json.corrupt-* file in \(dir.entries())") {
            dir.entries().first { $0.hasPrefix("sources.json.corrupt-") }
        }

        let mode = dir.mode(of: dir.url.appendingPathComponent(setAside).path)
        #expect(mode == 0o600, "\(setAside) has mode \(Self.octal(mode))")
        #expect(try String(contentsOf: dir.url.appendingPathComponent(setAside), encoding: .utf8) == "{not json")
    }

    /// A CLI command reading a seed-written file (here `sources`, which writes nothing) leaves it 0600 as well.
    @Test func aCLICommandLeavesASeedWrittenSourcesFile600() async throws {
        let dir = try TempStateDir()
        defer { dir.remove() }
        let legacy = SourceCredentials(sourceID: "src_0123456789abcdef0123456789abcdef", secret: "whsec_" + String(repeating: "9b", count: 32))
        try Self.writeWorldReadableSeedFile(dir, source: legacy, name: "legacy")

        let run = try await runCLI(["sources"], stateDir: dir)

        #expect(run.exitCode == 0, "\(run)")
        #expect(run.stdout.contains(legacy.sourceID), "\(run)")
        #expect(dir.mode(of: dir.sourcesFile.path) == 0o600, "mode \(Self.octal(dir.mode(of: dir.sourcesFile.path)))")
    }
}

/// A `sources.json` exactly as the seed's skill writes it (`JSON.stringify(…, null, 2)`).
func seedFile(source: SourceCredentials, name: String, pendingCode: String, createdAt: String) -> String {
    """
    {
      "sources": {
        "\(source.sourceID)": {
          "name": "\(name)",
          "hmac_secret": "\(source.secret)",
          "callback_url": null,
          "paired_at": "2026-01-02T03:04:05.678Z"
        }
      },
      "pending_pairings": {
        "\(pendingCode)": {
          "name": "later",
          "callback_url": null,
          "created_at": "\(createdAt)"
        }
      }
    }
    """
}

/// `new Date().toISOString()`: UTC with milliseconds and `Z`.
func nodeISOString(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
}

/// Rewrites `sources.json` the way another process would: read, change `sources`, write a
/// temp file, rename over.
func editSourcesFile(_ dir: TempStateDir, _ change: (inout [String: JSON]) -> Void) async throws {
    let current = try await poll("sources.json to exist") { try? JSON.parse(dir.readSourcesFile()) }
    guard case .object(var file) = current, case .object(var sources)? = file["sources"] else {
        throw HarnessError("sources.json has no sources object: \(current)")
    }
    change(&sources)
    file["sources"] = .object(sources)
    try dir.writeSourcesFile(JSON.object(file).prettyPrinted() + "\n")
}
