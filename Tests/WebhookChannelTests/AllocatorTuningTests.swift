import Foundation
import Testing
@testable import Platform

/// The server re-executes itself once to start with a larger per-thread cache and fixed
/// mapping and trimming thresholds in glibc's allocator (`AllocatorTuning`): the same process, serving as before, with the setting in
/// its environment; a person's own setting is kept, and `WEBHOOK_ALLOCATOR_TUNING=0` skips it.
@Suite struct AllocatorTuningTests {
    static let all = "glibc.malloc.tcache_count=64:glibc.malloc.mmap_threshold=262144:glibc.malloc.trim_threshold=262144"

    @Test func theSettingsAreAddedToWhateverTunablesArePresent() {
        #expect(AllocatorTuning.tunables(to: nil) == Self.all)
        #expect(AllocatorTuning.tunables(to: "") == Self.all)
        #expect(AllocatorTuning.tunables(to: "glibc.malloc.arena_max=2") == "glibc.malloc.arena_max=2:" + Self.all)
        #expect(AllocatorTuning.tunables(to: "glibc.malloc.arena_max=2:" + Self.all) == nil)
    }

    @Test func aSettingThePersonMadeIsKeptAndOnlyTheOthersAreAdded() {
        #expect(AllocatorTuning.tunables(to: "glibc.malloc.tcache_count=7")
            == "glibc.malloc.tcache_count=7:glibc.malloc.mmap_threshold=262144:glibc.malloc.trim_threshold=262144")
        #expect(AllocatorTuning.tunables(to: "glibc.malloc.trim_threshold=1048576:glibc.malloc.tcache_count=0")
            == "glibc.malloc.trim_threshold=1048576:glibc.malloc.tcache_count=0:glibc.malloc.mmap_threshold=262144")
        // A name that only starts like one of ours is another tunable.
        #expect(AllocatorTuning.tunables(to: "glibc.malloc.tcache_count_extra=1")
            == "glibc.malloc.tcache_count_extra=1:" + Self.all)
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
        // glibc cuts the string it started with after the first tunable (in the process's
        // own copy, which is what /proc shows); the list added is pinned above.
        #expect(tunables?.hasPrefix("glibc.malloc.tcache_count=64") == true, "\(tunables ?? "none")")
        #expect(try await RawHTTPClient(port: server.port).get("/health").status == 200)
        let file = try await poll("server.json") { try? JSON.parse(Data(contentsOf: server.stateDir.serverFile)) }
        #expect(file["pid"] == .number(Double(server.pid)), "\(file)")
    }

    @Test(.enabled(if: hasProc))
    func aPersonsOwnSettingIsKeptAndTheOptOutIsHonoured() async throws {
        let own = try await ServerProcess.start(environment: ["GLIBC_TUNABLES": "glibc.malloc.tcache_count=7"])
        defer { own.stop() }
        #expect(try Self.environment(of: own.pid)["GLIBC_TUNABLES"]?.hasPrefix("glibc.malloc.tcache_count=7") == true)
        #expect(try await RawHTTPClient(port: own.port).get("/health").status == 200)
        let off = try await ServerProcess.start(environment: ["WEBHOOK_ALLOCATOR_TUNING": "0", "GLIBC_TUNABLES": ""])
        defer { off.stop() }
        #expect(try Self.environment(of: off.pid)["GLIBC_TUNABLES"] == "")
        #expect(try await RawHTTPClient(port: off.port).get("/health").status == 200)
    }
}
