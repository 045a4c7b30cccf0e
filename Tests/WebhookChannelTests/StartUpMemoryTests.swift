import Foundation
import Testing
@testable import WebhookChannel

/// Start-up reads the whole event log (counters, the index, a session's catch-up). Those
/// records are freed afterwards, and the pages go back to the system: a server that then sits
/// idle does not keep a full log's worth of heap resident.
struct StartUpMemoryTests {
    @Test func aServerStartedOnAFullEventLogGivesTheReadRecordsMemoryBack() async throws {
        let stateDir = try TempStateDir()
        defer { stateDir.remove() }
        try stateDir.createStateDir()
        var bytes: [UInt8] = []
        let padding = String(repeating: "x", count: 40)
        for n in 0..<40_000 {
            let record = EventRecord(id: "evt_\(n)", sourceID: "src_a", sourceName: "a", deliveryID: "d-\(n)", type: "push",
                                     receivedAt: 1_700_000_000, contentType: "application/json",
                                     headers: ["Content-Type": "application/json", "X-Source-Id": "src_a", "X-Webhook-Id": "d-\(n)"],
                                     body: Array(#"{"n":\#(n),"pad":"\#(padding)"}"#.utf8), replayKeys: [])
            EventLog.appendLine(record, into: &bytes)
        }
        try Data(bytes).write(to: stateDir.url.appendingPathComponent("events.log"))

        let server = try await ServerProcess.start(stateDir: stateDir)
        defer { server.stop() }
        _ = try await RawHTTPClient(port: server.port).get("/health")
        let heap = try Durability.anonymousResidentBytes(of: server.pid)
        // About 7 MiB of heap with the pages handed back; 23 MiB when they were kept.
        #expect(heap < 14 << 20, "RssAnon \(heap >> 20) MiB after reading \(bytes.count >> 20) MiB of log")
    }
}
