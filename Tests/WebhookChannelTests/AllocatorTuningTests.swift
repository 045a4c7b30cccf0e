import Foundation
import Testing
@testable import Platform

/// The server re-executes itself once to start with a larger per-thread cache in glibc's
/// allocator (`AllocatorTuning`): the same process, serving as before, with the setting in
/// its environment; a person's own setting is kept, and `WEBHOOK_ALLOCATOR_TUNING=0` skips it.
@Suite struct AllocatorTuningTests {
    @Test func theCacheSizeIsAddedToWhateverTunablesArePresent() {
        #expect(AllocatorTuning.tunables(to: nil) == "glibc.malloc.tcache_count=64")
        #expect(AllocatorTuning.tunables(to: "") == "glibc.malloc.tcache_count=64")
        #expect(AllocatorTuning.tunables(to: "glibc.malloc.arena_max=2")
            == "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=64")
        #expect(AllocatorTuning.tunables(to: "glibc.malloc.tcache_count=7") == nil)
        #expect(AllocatorTuning.tunables(to: "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=64") == nil)
    }

    static let hasProc = FileManager.default.fileExists(atPath: "/proc/self/environ")

    /// The environment a running process has now (after any re-execution).
    static func environment(of pid: Int32) throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
        var result: [String: String] = [:]
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else { continue }
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return result
    }

    @Test(.enabled(if: hasProc))
    func theServerRunsWithTheSettingAsTheProcessItWasStartedAs() async throws {
        let server = try await ServerProcess.start()
        defer { server.stop() }
        // The pid the test spawned is the one serving: re-executing kept it.
        let tunables = try Self.environment(of: server.pid)["GLIBC_TUNABLES"]
        #expect(tunables?.contains("glibc.malloc.tcache_count=") == true, "\(tunables ?? "none")")
        #expect(try await RawHTTPClient(port: server.port).get("/health").status == 200)
        let file = try await poll("server.json") { try? JSON.parse(Data(contentsOf: server.stateDir.serverFile)) }
        #expect(file["pid"] == .number(Double(server.pid)), "\(file)")
    }

    @Test(.enabled(if: hasProc))
    func aPersonsOwnSettingIsKeptAndTheOptOutIsHonoured() async throws {
        let own = try await ServerProcess.start(environment: ["GLIBC_TUNABLES": "glibc.malloc.tcache_count=7"])
        defer { own.stop() }
        #expect(try Self.environment(of: own.pid)["GLIBC_TUNABLES"] == "glibc.malloc.tcache_count=7")
        let off = try await ServerProcess.start(environment: ["WEBHOOK_ALLOCATOR_TUNING": "0", "GLIBC_TUNABLES": ""])
        defer { off.stop() }
        #expect(try Self.environment(of: off.pid)["GLIBC_TUNABLES"] == "")
        #expect(try await RawHTTPClient(port: off.port).get("/health").status == 200)
    }
}
