import Foundation
import Testing
@testable import WebhookChannel

/// Another process holding the state dir's lock for good (a CLI command stopped with Ctrl-Z
/// mid-change) costs pairing requests a `503 state_busy` with `Retry-After: 1` once the
/// server's wait for the lock is over, never a connection that hears nothing back; it changes
/// nothing, so a retry once the lock is free succeeds; `/health` and webhooks, which never
/// take the lock, are answered throughout. The real binary, with its wait shortened from
/// 5 s by `WEBHOOK_LOCK_WAIT`.
@Suite struct PairingWhileStateLockedTests {
    static let shortWait = ["WEBHOOK_LOCK_WAIT": "0.3"]

    @Test func theServerWaitsFiveSecondsForTheLockUnlessWebhookLockWaitSaysOtherwise() throws {
        #expect(try ServerConfig.fromEnvironment(["HOME": "/nonexistent"]).stateLockWait == 5)
        #expect(try ServerConfig.fromEnvironment(["HOME": "/nonexistent", "WEBHOOK_LOCK_WAIT": "0.3"]).stateLockWait == 0.3)
        for bad in ["-1", "abc", "nan", "3601", ""] {
            #expect(throws: ServerConfig.Invalid.self, "WEBHOOK_LOCK_WAIT=\(bad)") {
                try ServerConfig.fromEnvironment(["HOME": "/nonexistent", "WEBHOOK_LOCK_WAIT": bad])
            }
        }
    }

    static func isBusyLine(_ line: String) -> Bool {
        line.contains("state_busy") && line.contains("held by another process")
    }

    @Test func pairAnswers503StateBusyWhileTheLockIsHeldAndAPairingCodeOnceItIsFree() async throws {
        let channel = try await TestChannel.start(environment: Self.shortWait)
        defer { channel.stop() }
        let lock = try HeldStateLock(channel.stateDir)
        defer { lock.release() }

        let refused = try await channel.http.postJSON("/pair", ["name": "held"])
        expectJSONError(refused, status: 503, error: "state_busy")
        #expect(refused.header("Retry-After") == "1", "\(refused)")
        let health = try await channel.http.get("/health")
        #expect(health.status == 200, "\(health)")
        #expect(try health.json()["pending"] == 0, "the refused request left a pending pairing: \(health)")
        _ = try await channel.server.stderr.waitForLine("a line saying the lock is held", where: Self.isBusyLine)
        #expect(channel.server.stderr.textLines.filter(Self.isBusyLine).count == 1, "\(channel.server.stderr.tail())")

        lock.release()
        let ticket = try await channel.http.requestPairing(name: "held")
        #expect(ticket.code.count == 6, "\(ticket.response)")
        #expect(try await channel.http.get("/health").json()["pending"] == 1)
    }

    @Test func aPendingPairingOutlivesCompletionAndCollectionRefusedWhileTheLockIsHeld() async throws {
        let channel = try await TestChannel.start(environment: Self.shortWait)
        defer { channel.stop() }
        let sender = try await channel.http.pairSource(name: "sender")
        let ticket = try await channel.http.requestPairing(name: "device")
        let bearer = [("Authorization", "Bearer \(ticket.pollToken)")]
        let lock = try HeldStateLock(channel.stateDir)
        defer { lock.release() }

        let refused = try await channel.http.postJSON("/pair/complete", ["code": .string(ticket.code)])
        expectJSONError(refused, status: 503, error: "state_busy")
        #expect(refused.header("Retry-After") == "1", "\(refused)")
        // Neither of these takes the lock.
        let webhook = try await channel.http.postWebhook(#"{"event":"while-locked"}"#, as: sender)
        #expect(webhook.status == 200, "\(webhook)")
        #expect(try await channel.http.get("/pair/status?code=\(ticket.code)", headers: bearer).json()["status"] == "pending")

        lock.release()
        let credentials = try await channel.http.completePairing(code: ticket.code)

        let heldAgain = try HeldStateLock(channel.stateDir)
        defer { heldAgain.release() }
        let refusedPoll = try await channel.http.get("/pair/status?code=\(ticket.code)", headers: bearer)
        expectJSONError(refusedPoll, status: 503, error: "state_busy")
        #expect(refusedPoll.header("Retry-After") == "1", "\(refusedPoll)")

        heldAgain.release()
        let collected = try await channel.http.get("/pair/status?code=\(ticket.code)", headers: bearer).json()
        #expect(collected["status"] == "paired")
        #expect(collected["source_id"]?.stringValue == credentials.sourceID, "the refused poll claimed the credentials")
        #expect(collected["hmac_secret"]?.stringValue == credentials.secret)
    }

    /// A corrupt `sources.json` is moved aside under the lock; with the lock held elsewhere,
    /// the loop must not wait for it (it used to, and every socket stopped with it): the
    /// server keeps serving the sources it read before, says once that it could not set the
    /// file aside, and the next change made under the lock sets it aside and keeps them.
    @Test func aCorruptSourcesFileWhileTheLockIsHeldElsewhereStopsNothing() async throws {
        let channel = try await TestChannel.start(environment: Self.shortWait)
        defer { channel.stop() }
        let sender = try await channel.http.pairSource(name: "sender")
        let lock = try HeldStateLock(channel.stateDir)
        defer { lock.release() }

        try channel.stateDir.writeSourcesFile("{not json")
        let kept = try await channel.http.postWebhook(#"{"event":"after-corruption"}"#, as: sender)
        #expect(kept.status == 200, "the sources read before the corruption are kept: \(kept)")
        let health = try await channel.http.get("/health")
        #expect(health.status == 200, "\(health)")
        #expect(try health.json()["sources"] == 1, "\(health)")
        _ = try await channel.server.stderr.waitForLine("a warning that it could not be moved aside") {
            $0.contains("corrupt") && $0.contains("could not be moved aside")
        }
        #expect(!channel.stateDir.entries().contains { $0.hasPrefix("sources.json.corrupt-") }, "moved aside without the lock")

        lock.release()
        let credentials = try await channel.http.pairSource(name: "fresh")
        #expect(channel.stateDir.entries().contains { $0.hasPrefix("sources.json.corrupt-") }, "\(channel.stateDir.entries())")
        for (name, source) in [("fresh", credentials), ("sender", sender)] {
            let accepted = try await channel.http.postWebhook(#"{"event":"after"}"#, as: source)
            #expect(accepted.status == 200, "\(name): \(accepted)")
        }
    }

}
