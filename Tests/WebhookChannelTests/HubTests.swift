import Foundation
import Synchronization
import Testing

/// Several Claude Code sessions on one state dir share one endpoint: the first server binds
/// the port (the hub), later ones follow it over `hub.sock` and get every event as their own
/// notification; a follower takes the port over when the hub goes away. Serialized: each test
/// holds up to three servers at once, and takes their three slots together (`ServerSlots`).
@Suite(.serialized, .serverSlots(3)) struct HubTests {
    /// Sessions on one state dir and one port, each in its own project directory. The first
    /// session binds a port the kernel picks (`WEBHOOK_PORT=0`); every later one is given
    /// that port. (A port found free beforehand could be taken meanwhile by any of the
    /// connections and listeners the tests running in parallel open.)
    struct Sessions {
        let stateDir: TempStateDir
        private(set) var port = 0
        var channels: [TestChannel] = []

        init(stateDir: TempStateDir? = nil) throws {
            self.stateDir = try stateDir ?? TempStateDir()
        }

        mutating func start(project: String) async throws -> TestChannel {
            let channel = try await TestChannel.start(
                stateDir: stateDir, environment: ["WEBHOOK_PORT": String(port), "CLAUDE_PROJECT_DIR": project])
            channels.append(channel)
            if port == 0 { port = channel.server.port }
            return channel
        }

        /// A later session, started and following the hub.
        mutating func startFollower(project: String) async throws -> TestChannel {
            let channel = try await start(project: project)
            _ = try await channel.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
            return channel
        }

        /// Starts a follower in /work/b whose stdout nobody reads (initialised), then sends
        /// webhooks of about `padding` bytes until one is refused (at most `limit`, 120 s).
        func floodAFollowerThatDoesNotRead(tag: String, padding: Int, limit: Int = 6_000) async throws
            -> (ServerProcess, Acknowledgements)
        {
            let follower = try await ServerProcess.start(
                stateDir: stateDir, environment: ["WEBHOOK_PORT": String(port), "CLAUDE_PROJECT_DIR": "/work/b"],
                holdStdout: true)
            do {
                _ = try await follower.stderr.waitForLine("a line with following", where: { $0.contains("following") })
                let http = RawHTTPClient(port: port)
                try await Durability.initializeWithoutReading(follower)
                let credentials = try await http.pairSource(name: "ci")
                let acks = Acknowledgements()
                let deadline = Date().addingTimeInterval(120)
                let port = self.port
                try await offloaded {
                    acks.sendLoop(port: port, limit: limit, deadline: deadline) { index in
                        Durability.webhookRequest(http, credentials, body: Durability.body(tag: tag, index: index, padding: padding))
                    }
                }
                return (follower, acks)
            } catch {
                follower.stop()
                throw error
            }
        }

        func stop() {
            for channel in channels { channel.stop() }
            stateDir.remove()
        }
    }

    @Test func aFollowerReceivesEveryEventTheHubAcceptsWithTheSameEventID() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        let follower = try await sessions.start(project: "/work/b")
        _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        let http = RawHTTPClient(port: sessions.port)
        let health = try await http.get("/health")
        #expect(try health.json()["sessions"] == 2)

        let credentials = try await http.pairSource(name: "ci")
        let answer = try await http.postWebhook(#"{"event":"deploy"}"#, as: credentials)
        let eventID = try answer.json()["event_id"]?.stringValue
        #expect(answer.status == 200 && eventID != nil)
        let atHub = try await hub.mcp.channelEvent()
        let atFollower = try await follower.mcp.channelEvent()
        #expect(atHub["meta"]?["event_id"]?.stringValue == eventID)
        #expect(atFollower == atHub)

        // A follower's tools answer as the hub's do (it reads the log the hub writes).
        for session in [hub, follower] {
            let result = try #require(try await session.mcp.callTool("webhook_sources", arguments: [:])["result"])
            let listed = try ProviderFixtures.list(from: ProviderFixtures.text(ofToolResult: result), key: "sources")
            #expect(listed.first?["event_count"] == 1, "pid \(session.server.pid): \(listed)")
            let events = try #require(try await session.mcp.callTool("webhook_events", arguments: [:])["result"])
            #expect(ProviderFixtures.text(ofToolResult: events).contains(eventID ?? "none"), "pid \(session.server.pid)")
        }

        let status = try await runCLI(["status"], stateDir: sessions.stateDir)
        #expect(status.stdout.contains("hub  pid \(hub.server.pid)  /work/a"), "\(status)")
        #expect(status.stdout.contains("follower  pid \(follower.server.pid)  /work/b"), "\(status)")
    }

    /// SPEC 9 across sessions: a follower whose Claude Code stops reading stops reading the
    /// hub once its own bound is reached, the hub then answers `503 backlog` instead of
    /// queueing without end (or cutting the follower off), the follower's memory stays
    /// bounded, and once it reads again it gets every acknowledged event, once, in order.
    @Test func aFollowerThatStopsReadingHoldsTheHubBackWith503AndGetsEveryAcknowledgedEventAfter() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        _ = try await sessions.start(project: "/work/a")
        let (follower, acks) = try await sessions.floodAFollowerThatDoesNotRead(tag: "follower", padding: 12_000)
        defer { follower.stop() }
        let acknowledged = acks.acknowledged
        let refusal = try #require(acks.otherAnswers.first, "no 503 after \(acknowledged.count) acknowledged")
        expectJSONError(refusal, status: 503, error: "backlog")
        #expect(acks.connectionFailures.isEmpty, "\(acks.connectionFailures)")
        // The follower's 8 MiB, the hub's 8 MiB for it, and what the pipe and socket hold.
        #expect(acknowledged.count < 3_000, "\(acknowledged.count) acknowledged: nothing held the hub back")
        let peak = try Durability.peakResidentBytes(of: follower.pid)
        #expect(peak < 64 << 20, "follower VmHWM \(peak >> 20) MiB")

        try await Durability.resumeAndExpectNotifiedOnceInOrder(acknowledged, on: follower)
    }

    /// SPEC 11 with SPEC 9: a hub whose own Claude Code stopped reading refuses what would go
    /// to it (`503 backlog`), but an event pinned to a follower's project never goes to the
    /// hub's session, so the hub's backlog has no say in it: it is taken and delivered.
    @Test func aHubSessionThatStoppedReadingDoesNotHoldBackEventsPinnedToAFollower() async throws {
        let stateDir = try TempStateDir()
        defer { stateDir.remove() }
        let hub = try await ServerProcess.start(
            stateDir: stateDir, environment: ["CLAUDE_PROJECT_DIR": "/work/a"], holdStdout: true)
        defer { hub.stop() }
        try await Durability.initializeWithoutReading(hub)
        let follower = try await TestChannel.start(
            stateDir: stateDir, environment: ["WEBHOOK_PORT": String(hub.port), "CLAUDE_PROJECT_DIR": "/work/b"])
        defer { follower.stop() }
        _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        let http = RawHTTPClient(port: hub.port)
        let everywhere = try await http.pairSource(name: "everywhere")
        let pinned = try await http.pairSource(name: "pinned")
        let routed = try await runCLI(["route", pinned.sourceID, "/work/b"], stateDir: stateDir)
        #expect(routed.exitCode == 0, "\(routed)")

        // Events for every session fill the hub's own backlog (the follower reads them).
        let acks = Acknowledgements()
        let deadline = Date().addingTimeInterval(120)
        let port = hub.port
        try await offloaded {
            acks.sendLoop(port: port, limit: 6_000, deadline: deadline) { index in
                Durability.webhookRequest(http, everywhere, body: Durability.body(tag: "everywhere", index: index, padding: 12_000))
            }
        }
        let refusal = try #require(acks.otherAnswers.first, "no 503 after \(acks.acknowledged.count) acknowledged")
        expectJSONError(refusal, status: 503, error: "backlog")

        let body = #"{"event":"for-b-only"}"#
        let answer = try await http.postWebhook(body, as: pinned)
        #expect(answer.status == 200, "\(answer.status) \(answer.bodyText)")
        let delivered = try await follower.mcp.message("the pinned event at the follower") { message in
            message["method"]?.stringValue == MCPTestClient.channelMethod && message["params"]?["content"]?.stringValue == body
        }
        #expect(delivered["params"]?["meta"]?["source_id"]?.stringValue == pinned.sourceID)
        // The hub's own session is still full: what would go to it is still refused.
        let stillRefused = try await http.postWebhook(#"{"event":"everywhere-again"}"#, as: everywhere)
        expectJSONError(stillRefused, status: 503, error: "backlog")
    }

    /// An event a follower received is delivered, whatever the hub's own session did: with
    /// the hub's stdout closed it is still `200` (a `503` would have its retry notified to the
    /// follower a second time), and the retry, after the hand-over, is a duplicate.
    @Test func anEventAFollowerReceivedIsAcknowledgedWhenTheHubsOwnSessionIsGone() async throws {
        let stateDir = try TempStateDir()
        defer { stateDir.remove() }
        let hub = try await ServerProcess.start(
            stateDir: stateDir, environment: ["CLAUDE_PROJECT_DIR": "/work/a"], holdStdout: true)
        defer { hub.stop() }
        try await Durability.initializeWithoutReading(hub)
        let follower = try await TestChannel.start(
            stateDir: stateDir, environment: ["WEBHOOK_PORT": String(hub.port), "CLAUDE_PROJECT_DIR": "/work/b"])
        defer { follower.stop() }
        _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        let http = RawHTTPClient(port: hub.port)
        let credentials = try await http.pairSource(name: "ci")
        try await Durability.closeStdoutOnceInitializeIsAnswered(hub)

        let body = #"{"event":"hub-session-gone"}"#
        let delivery = [("X-Webhook-Id", "dlv-hub-session-gone")]
        let answer = try await http.postWebhook(body, as: credentials, extraHeaders: delivery)
        #expect(answer.status == 200, "\(answer.status) \(answer.bodyText)")
        #expect(try await follower.mcp.channelEvent()["content"]?.stringValue == body)

        // The sender retries anyway; the hub exits (its session is gone) and the follower takes
        // the port over meanwhile.
        var retry: RawHTTPResponse?
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while retry?.status != 200 && ContinuousClock.now < deadline {
            retry = try? await http.postWebhook(body, as: credentials, extraHeaders: delivery)
            if retry?.status != 200 { try await Task.sleep(for: .milliseconds(50)) }
        }
        let answered = try #require(retry, "the retry was never answered")
        #expect(answered.status == 200 && (try? answered.json()["duplicate"]) == true, "\(answered.status) \(answered.bodyText)")
        #expect(try await follower.mcp.channelEventsUntilQuiet().isEmpty, "the follower was notified twice")
    }

    /// A state dir whose `hub.sock` path is too long for a Unix socket (108 bytes on Linux,
    /// 104 on macOS) still lets a second session follow: the socket then lives under a
    /// private directory in /tmp, at a name both compute from the state dir.
    @Test func aSessionFollowsTheHubOfAStateDirWhosePathIsTooLongForASocket() async throws {
        var sessions = try Sessions(stateDir: TempStateDir(stateName: String(repeating: "s", count: 100)))
        defer { sessions.stop() }
        #expect((sessions.stateDir.path + "/hub.sock").utf8.count > 108)
        let hub = try await sessions.start(project: "/work/a")
        // The same state dir written another way (a trailing slash) finds the same socket.
        let follower = try await TestChannel.start(
            stateDir: sessions.stateDir,
            environment: ["WEBHOOK_PORT": String(sessions.port), "CLAUDE_PROJECT_DIR": "/work/b",
                          "WEBHOOK_STATE_DIR": sessions.stateDir.path + "/"])
        defer { follower.stop() }
        _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        #expect(!hub.server.stderr.tail().contains("cannot serve"), "\(hub.server.stderr.tail())")
        let http = RawHTTPClient(port: sessions.port)
        let credentials = try await http.pairSource(name: "long")
        let answer = try await http.postWebhook(#"{"event":"long-state-dir"}"#, as: credentials)
        #expect(answer.status == 200)
        #expect(try await follower.mcp.channelEvent()["content"]?.stringValue == #"{"event":"long-state-dir"}"#)
        #expect(try await hub.mcp.channelEvent()["content"]?.stringValue == #"{"event":"long-state-dir"}"#)
    }

    /// SPEC 9 across a hand-over: the hub queues what a stalled follower cannot take yet, and
    /// an exiting hub drops that queue. The follower, taking the port over, notifies its own
    /// session of every event logged after the last one it was passed: once the session reads
    /// again it has every acknowledged event, once, in order.
    @Test func aFollowerThatWasNotReadingGetsEveryAcknowledgedEventAfterTheHubExits() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        let (follower, acks) = try await sessions.floodAFollowerThatDoesNotRead(tag: "handover", padding: 4_000)
        defer { follower.stop() }
        let acknowledged = acks.acknowledged
        #expect(acks.otherAnswers.first?.status == 503, "the follower never held the hub back")

        hub.server.closeStdin()
        #expect(try await hub.server.child.waitForExit() == .exited(0))
        _ = try await follower.stderr.waitForLine("the follower listening", where: { $0.contains("listening on") })
        try await Durability.resumeAndExpectNotifiedOnceInOrder(acknowledged, on: follower)
    }

    /// SPEC 11 with SPEC 9, a follower far behind: its session stopped reading, so when the
    /// hub is killed it holds 8 MiB for that follower, more events than the hub's index hands
    /// out. Another follower takes the port (the stalled one is stopped meanwhile, so it cannot
    /// take it itself); the stalled one re-attaches and says the last event it was passed, and
    /// the new hub reads what it missed from the log: every acknowledged event, once, in order.
    /// (The new hub used to send the first 4,096 from its index and drop the rest.)
    @Test func aFollowerFarBehindGetsEverythingItMissedFromTheNewHubsLog() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        let next = try await sessions.startFollower(project: "/work/c")
        let (follower, acks) = try await sessions.floodAFollowerThatDoesNotRead(tag: "far", padding: 800, limit: 20_000)
        defer { follower.stop() }
        let acknowledged = acks.acknowledged
        #expect(acks.otherAnswers.first?.status == 503, "the follower never held the hub back")
        #expect(acknowledged.count > 2 * 4_096, "\(acknowledged.count) acknowledged: too few to be far behind")

        follower.child.send(signal: SIGSTOP)
        hub.server.child.kill()
        _ = try await next.server.stderr.waitForLine("the next hub listening", where: { $0.contains("listening on") })
        follower.child.send(signal: SIGCONT)
        // Listed as attached once registered, while its catch-up still waits for it: should
        // this hub go away too, the next one waits for it to re-attach before it rotates the
        // log (a follower listed only once its catch-up was all sent lost events that way).
        let serverFile = sessions.stateDir.serverFile
        _ = try await poll("the new hub's server.json listing the follower still catching up") { () -> Bool? in
            guard let data = try? Data(contentsOf: serverFile), let json = try? JSON.parse(data),
                  json["pid"]?.intValue == Int(next.server.pid),
                  let listed = json["sessions"]?.arrayValue?.compactMap({ $0["pid"]?.intValue })
            else { return nil }
            return listed.contains(Int(follower.pid)) ? true : nil
        }
        // The catch-up goes out as fast as the follower takes it: it is all sent once its
        // session reads again.
        try await Durability.resumeAndExpectNotifiedOnceInOrder(acknowledged, on: follower)
        let caughtUp = try await next.server.stderr.waitForLine("the new hub saying what the follower missed",
                                                                 where: { $0.contains("missed") })
        #expect(caughtUp.contains("pid \(follower.pid)"), "\(caughtUp)")
    }

    /// SPEC 9 with SPEC 11: what the hub sent a follower whose session stopped reading stays in
    /// the log until the follower passed it on. Large bodies fill the log far faster than
    /// their notifications (digests) fill the follower's bounds; rotating the log a second
    /// time would remove what the hub queued for the follower, so webhooks are refused
    /// `503 backlog` instead. After a `kill -9` of the hub the follower, now the hub itself,
    /// notifies its session of every acknowledged event from the log. (The rotations used to
    /// go ahead, and whatever the dead hub had queued was lost.)
    @Test func theLogKeepsWhatAStalledFollowerWasSentUntilItPassedItOn() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        let port = sessions.port
        let follower = try await ServerProcess.start(
            stateDir: sessions.stateDir, environment: ["WEBHOOK_PORT": String(port), "CLAUDE_PROJECT_DIR": "/work/b"],
            holdStdout: true)
        defer { follower.stop() }
        _ = try await follower.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        try await Durability.initializeWithoutReading(follower)
        let http = RawHTTPClient(port: port)
        let credentials = try await http.pairSource(name: "ci")

        // 1,000 bodies of 60 KB are 60 MB of log (two generations hold 16 MiB), and about
        // 2 MB of digests: far from the follower's bounds (8 MiB in its session, 8 in the hub).
        let acks = Acknowledgements()
        try await offloaded {
            acks.sendLoop(port: port, limit: 1_000, deadline: Date().addingTimeInterval(120)) { index in
                Durability.webhookRequest(http, credentials, body: Durability.body(tag: "held", index: index, padding: 60_000))
            }
        }
        let acknowledged = acks.acknowledged
        let refusal = try #require(acks.otherAnswers.first, """
            \(acknowledged.count) acknowledged, none refused: the log rotated away what the follower was sent \
            \(acks.connectionFailures)
            """)
        expectJSONError(refusal, status: 503, error: "backlog")
        #expect(acknowledged.count > 8 << 20 / 61_000, "\(acknowledged.count) acknowledged: refused before the log was full")
        // Waited for: the hub writes it before the refusal, but the harness's stderr reader
        // thread may not have taken it in yet when the refusal is read here.
        _ = try await hub.server.stderr.waitForLine("a warning saying why webhooks are refused", where: {
            $0.contains("cannot rotate yet: follower pid \(follower.pid) has not passed on")
        })

        hub.server.child.kill()
        _ = try await follower.stderr.waitForLine("the follower taking the port", where: { $0.contains("listening on") })
        try await Durability.resumeAndExpectNotifiedOnceInOrder(acknowledged, on: follower)
    }

    /// SPEC 11 with SPEC 9: a follower that takes the port over does not let the log rotate
    /// until the old hub's other followers re-attached, since they read what they missed from
    /// it. Here one of them is stopped through the hand-over while large bodies arrive: the
    /// new hub refuses them (`503 backlog`) once the log is full, instead of rotating away
    /// what the stopped one missed; resumed, it re-attaches and gets every acknowledged event.
    @Test func aNewHubKeepsTheLogForFollowersStillOnTheirWayBack() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        let next = try await sessions.startFollower(project: "/work/b")
        let late = try await sessions.startFollower(project: "/work/c")
        let port = sessions.port
        let http = RawHTTPClient(port: port)
        let credentials = try await http.pairSource(name: "ci")
        let before = Acknowledgements()
        try await offloaded {
            before.sendLoop(port: port, limit: 20, deadline: Date().addingTimeInterval(60)) { index in
                Durability.webhookRequest(http, credentials, body: Durability.body(tag: "before", index: index))
            }
        }
        #expect(before.acknowledged.count == 20, "\(before.otherAnswers)")
        let serverFile = sessions.stateDir.serverFile
        _ = try await poll("server.json listing both followers") {
            (try? String(contentsOf: serverFile, encoding: .utf8))?.contains("\(late.server.pid)") == true ? true : nil
        }

        late.server.child.send(signal: SIGSTOP)
        hub.server.child.kill()
        _ = try await next.server.stderr.waitForLine("the next hub listening", where: { $0.contains("listening on") })
        // 40 bodies of 900 KB would rotate the log four times; the wait for the stopped
        // follower lasts 5 s at most, and 10 of them fill the log.
        let after = Acknowledgements()
        try await offloaded {
            after.sendLoop(port: port, limit: 40, deadline: Date().addingTimeInterval(4)) { index in
                Durability.webhookRequest(http, credentials, body: Durability.body(tag: "after", index: index, padding: 900_000))
            }
        }
        late.server.child.send(signal: SIGCONT)
        let refusal = try #require(after.otherAnswers.first, """
            \(after.acknowledged.count) acknowledged, none refused: the log rotated before the stopped follower was back \
            \(after.connectionFailures)
            """)
        expectJSONError(refusal, status: 503, error: "backlog")
        #expect(next.server.stderr.text.contains("cannot rotate yet: the previous hub's followers are still re-attaching"),
                "no warning says why webhooks are refused")
        #expect(after.acknowledged.count >= 4, "\(after.acknowledged.count) acknowledged: refused before the log was full")
        try await Durability.expectNotifiedOnceInOrder(before.acknowledged + after.acknowledged, by: late.mcp)
    }

    /// SPEC 11, every accepted event to every session, across a hand-over under load: webhooks
    /// keep coming while the hub exits, one follower takes the port over and the other
    /// re-attaches to it. The re-attaching one says the last event it was passed, and the new
    /// hub sends it what the log holds after that first (what the new hub took before it
    /// re-attached included). Both end with every acknowledged event, once, in order.
    @Test func everySessionGetsEveryAcknowledgedEventAcrossAHandOverUnderLoad() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        let first = try await sessions.startFollower(project: "/work/b")
        let second = try await sessions.startFollower(project: "/work/c")
        let http = RawHTTPClient(port: sessions.port)
        let credentials = try await http.pairSource(name: "ci")

        let acknowledged = Mutex<[String]>([])
        let sender = Task {
            var index = 0
            let deadline = ContinuousClock.now.advanced(by: .seconds(60))
            while index < 400 && ContinuousClock.now < deadline {
                let request = Durability.webhookRequest(http, credentials, body: Durability.body(tag: "switch", index: index))
                if let answer = try? await http.send(raw: request, timeout: .seconds(10)), answer.status == 200,
                   let id = try? answer.json()["event_id"]?.stringValue {
                    acknowledged.withLock { $0.append(id) }
                    index += 1
                } else {
                    try? await Task.sleep(for: .milliseconds(5))  // the switch: refused, or 503
                }
            }
        }
        _ = try await poll("some events before the hub exits") { acknowledged.withLock { $0.count } >= 100 ? true : nil }
        hub.server.closeStdin()
        _ = try await hub.server.child.waitForExit()
        await sender.value
        let all = acknowledged.withLock { $0 }
        #expect(all.count == 400, "\(all.count) acknowledged")
        // An event the old hub notified and logged but could not answer before it exited is
        // retried by the sender as a new one: sessions may have it besides, never twice.
        let wanted = Set(all)
        for follower in [first, second] {
            var delivered: [String] = []
            while !wanted.isSubset(of: Set(delivered)) && delivered.count < all.count + 20 {
                delivered.append(try await follower.mcp.channelEvent()["meta"]?["event_id"]?.stringValue ?? "(none)")
            }
            delivered += try await follower.mcp.channelEventsUntilQuiet().map { $0["meta"]?["event_id"]?.stringValue ?? "(none)" }
            #expect(Set(delivered).count == delivered.count, "pid \(follower.server.pid) was notified of an event twice")
            #expect(delivered.filter(wanted.contains) == all, "pid \(follower.server.pid): acknowledged events missing or out of order")
        }
    }

    /// With any free port (`WEBHOOK_PORT=0`) a second server on the same state dir never finds
    /// "the port" taken; it follows the hub already serving the state dir instead of becoming
    /// a second hub writing the same event log.
    @Test func aSecondServerOnAnyFreePortFollowsTheHubOfItsStateDir() async throws {
        let stateDir = try TempStateDir()
        defer { stateDir.remove() }
        let hub = try await TestChannel.start(stateDir: stateDir, environment: ["CLAUDE_PROJECT_DIR": "/work/a"])
        defer { hub.stop() }
        let second = try await ServerProcess.start(stateDir: stateDir, environment: ["CLAUDE_PROJECT_DIR": "/work/b"])
        defer { second.stop() }
        _ = try await second.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        #expect(second.port == hub.server.port, "the second server reports the hub's port")
        #expect(try await RawHTTPClient(port: hub.server.port).get("/health").json()["sessions"] == 2)
    }

    /// One state dir is one endpoint: a session given another port follows the hub already
    /// serving the state dir (two hubs would write one event log and take each other's
    /// `hub.sock`), says its port is not used, and at a hand-over takes the hub's port over.
    @Test func aSessionGivenAnotherPortFollowsTheHubOfItsStateDirAndTakesOverTheHubsPort() async throws {
        let stateDir = try TempStateDir()
        defer { stateDir.remove() }
        let hub = try await TestChannel.start(stateDir: stateDir, environment: ["CLAUDE_PROJECT_DIR": "/work/a"])
        defer { hub.stop() }
        let otherPort = try Self.portFreeNow()
        let second = try await TestChannel.start(
            stateDir: stateDir, environment: ["WEBHOOK_PORT": String(otherPort), "CLAUDE_PROJECT_DIR": "/work/b"])
        defer { second.stop() }
        _ = try await second.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        #expect(second.server.stderr.textLines.contains { $0.contains("WEBHOOK_PORT \(otherPort) is not used") },
                "\(second.server.stderr.textLines)")
        #expect(throws: (any Error).self, "nothing listens on the port the second session was given") {
            try HTTPConnection.openBlocking(port: otherPort)
        }
        let http = RawHTTPClient(port: hub.server.port)
        #expect(try await http.get("/health").json()["sessions"] == 2)
        let credentials = try await http.pairSource(name: "ci")
        _ = try await http.postWebhook(#"{"n":1}"#, as: credentials)
        #expect(try await second.mcp.channelEvent()["content"] == #"{"n":1}"#)

        hub.server.closeStdin()
        _ = try await hub.server.child.waitForExit()
        try await retrying(timeout: defaultTimeout, "the second session serving the hub's port \(hub.server.port)") {
            let health = try await http.get("/health")
            guard health.status == 200 else { throw HarnessError("\(health)") }
        }
        let answer = try await http.postWebhook(#"{"n":2}"#, as: credentials)
        #expect(answer.status == 200, "\(answer)")
        #expect(try await second.mcp.channelEvent()["content"] == #"{"n":2}"#)
    }

    /// A loopback port nothing listens on at this moment.
    static func portFreeNow() throws -> Int {
        let (fd, port) = try bindOnLoopback(listening: nil)
        close(fd)
        return port
    }

    @Test func aRoutedSourceReachesOnlyTheSessionsInItsProject() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        let follower = try await sessions.start(project: "/work/b/app")
        _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        let http = RawHTTPClient(port: sessions.port)
        let credentials = try await http.pairSource(name: "ci")

        let routed = try await runCLI(["route", credentials.sourceID, "/work/b"], stateDir: sessions.stateDir)
        #expect(routed.exitCode == 0, "\(routed)")
        let listing = try await runCLI(["sources"], stateDir: sessions.stateDir)
        #expect(listing.stdout.contains("route=/work/b"), "\(listing)")
        _ = try await http.postWebhook(#"{"event":"pinned"}"#, as: credentials)
        #expect(try await follower.mcp.channelEvent()["content"] == #"{"event":"pinned"}"#)
        #expect(try await hub.mcp.channelEventsUntilQuiet().isEmpty)

        // Pinned to a project no session is in: every session gets it, never none.
        _ = try await runCLI(["route", credentials.sourceID, "/elsewhere"], stateDir: sessions.stateDir)
        _ = try await http.postWebhook(#"{"event":"unmatched"}"#, as: credentials)
        #expect(try await hub.mcp.channelEvent()["content"] == #"{"event":"unmatched"}"#)
        #expect(try await follower.mcp.channelEvent()["content"] == #"{"event":"unmatched"}"#)

        let cleared = try await runCLI(["route", credentials.sourceID, "--clear"], stateDir: sessions.stateDir)
        #expect(cleared.exitCode == 0, "\(cleared)")
        let usage = try await runCLI(["route", credentials.sourceID], stateDir: sessions.stateDir)
        #expect(usage.exitCode == 2, "\(usage)")
    }

    @Test func whenTheHubExitsAFollowerTakesThePortAndTheOthersFollowIt() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        let second = try await sessions.start(project: "/work/b")
        let third = try await sessions.start(project: "/work/c")
        _ = try await second.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        _ = try await third.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        let http = RawHTTPClient(port: sessions.port)
        let credentials = try await http.pairSource(name: "ci")
        let first = try await http.postWebhook(#"{"n":1}"#, as: credentials)
        let firstID = try first.json()["event_id"]?.stringValue

        hub.server.closeStdin()
        _ = try await hub.server.child.waitForExit()
        // One of the followers binds the port and the other re-attaches to it; then the next
        // webhook reaches both.
        try await retrying(timeout: defaultTimeout, "a new hub on port \(sessions.port) with both sessions") {
            let sessionsNow = try await http.get("/health").json()["sessions"]
            guard sessionsNow == 2 else { throw HarnessError("sessions: \(String(describing: sessionsNow))") }
        }
        let answer = try await http.postWebhook(#"{"n":2}"#, as: credentials)
        #expect(answer.status == 200, "\(answer)")
        for follower in [second, third] {
            let events = try await follower.mcp.channelEventsUntilQuiet(grace: .milliseconds(600))
            #expect(events.map { $0["content"]?.stringValue } == [#"{"n":1}"#, #"{"n":2}"#], "pid \(follower.server.pid)")
        }
        // What the old hub acknowledged is still listed by the new one.
        let listed = try await runCLI(["events", "--json"], stateDir: sessions.stateDir)
        #expect(listed.stdout.contains(firstID ?? "none"), "\(listed)")
        // A hand-over is not a fault: the follower that lost the race for the port says nothing
        // of a server that did not start.
        for follower in [second, third] {
            let errors = follower.server.stderr.textLines.filter { $0.contains("not started") }
            #expect(errors.isEmpty, "pid \(follower.server.pid): \(errors)")
        }
    }

    @Test func aStaleHubSocketFromACrashedHubIsReplaced() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        hub.server.child.kill()
        _ = try await hub.server.child.waitForExit()
        #expect(FileManager.default.fileExists(atPath: sessions.stateDir.url.appendingPathComponent("hub.sock").path))
        let next = try await sessions.start(project: "/work/b")
        let follower = try await sessions.start(project: "/work/c")
        _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        let http = RawHTTPClient(port: sessions.port)
        #expect(try await http.get("/health").json()["sessions"] == 2)
        let credentials = try await http.pairSource(name: "ci")
        _ = try await http.postWebhook(#"{"event":"after"}"#, as: credentials)
        #expect(try await next.mcp.channelEvent()["content"] == #"{"event":"after"}"#)
        #expect(try await follower.mcp.channelEvent()["content"] == #"{"event":"after"}"#)
    }

    @Test func aMalformedHelloOnTheHubSocketClosesThatPeerOnly() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/a")
        let follower = try await sessions.start(project: "/work/b")
        _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })

        let path = sessions.stateDir.url.appendingPathComponent("hub.sock").path
        var attributes = stat()
        #expect(stat(path, &attributes) == 0 && attributes.st_mode & 0o777 == 0o600)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(connected == 0)
        _ = Array("this is not json\n".utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        _ = try await hub.server.stderr.waitForLine("a line with malformed hello", where: { $0.contains("malformed hello") })

        let http = RawHTTPClient(port: sessions.port)
        let credentials = try await http.pairSource(name: "ci")
        _ = try await http.postWebhook(#"{"event":"still"}"#, as: credentials)
        #expect(try await hub.mcp.channelEvent()["content"] == #"{"event":"still"}"#)
        #expect(try await follower.mcp.channelEvent()["content"] == #"{"event":"still"}"#)
        #expect(try await http.get("/health").json()["sessions"] == 2)
    }
    @Test func aVerdictReachesTheFollowerWhoseClaudeCodeAsked() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let receiver = try CallbackReceiver(statuses: [200])
        defer { receiver.stop() }
        let (hub, follower, http, approver) = try await Self.hubAndFollowerWithAnApprover(&sessions, receiver: receiver)

        follower.mcp.notify(PermissionRelayTests.requestMethod, params: PermissionRelayTests.requestParams("qwert"))
        let request = try #require(try await receiver.waitForDeliveries(1).last).request
        #expect(try JSON.parse(request.body)["request_id"] == "qwert")

        // The verdict arrives at the hub's port; it reaches the follower, not the hub's session.
        let answer = try await retrying(timeout: defaultTimeout, "the hub to know request qwert") {
            let answer = try await http.postWebhook(PermissionRelayTests.verdictBody("qwert"), as: approver)
            guard answer.status == 200 else { throw HarnessError("\(answer)") }
            return answer
        }
        #expect(try answer.json() == ["received": true, "verdict": "allow"], "\(answer)")
        let verdict = try await follower.mcp.message("a permission verdict") {
            $0["method"]?.stringValue == PermissionRelayTests.verdictMethod
        }
        #expect(verdict["params"] == ["request_id": "qwert", "behavior": "allow"], "\(verdict)")
        _ = try await hub.mcp.result("ping")
        #expect(PermissionRelayTests.verdictNotifications(hub.mcp).isEmpty)
        #expect(try await http.postWebhook(PermissionRelayTests.verdictBody("qwert"), as: approver).status == 404)
    }

    /// A verdict for a follower that has gone has no one to reach: `404 unknown_request`, not
    /// a `200` that drops it.
    @Test func aVerdictForAFollowerThatHasGoneIsUnknownNotAcknowledged() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let receiver = try CallbackReceiver(statuses: [200])
        defer { receiver.stop() }
        let (hub, follower, http, approver) = try await Self.hubAndFollowerWithAnApprover(&sessions, receiver: receiver)

        follower.mcp.notify(PermissionRelayTests.requestMethod, params: PermissionRelayTests.requestParams("qrstu"))
        _ = try await receiver.waitForDeliveries(1)
        try await retrying(timeout: defaultTimeout, "the hub to hold the follower's request") {
            let open = try await EventFilterTests.status(hub)["open_permission_requests"]
            guard open == 1 else { throw HarnessError("open: \(String(describing: open))") }
        }
        follower.server.closeStdin()
        #expect(try await follower.server.child.waitForExit() == .exited(0))
        _ = try await hub.server.stderr.waitForLine("the follower detached", where: { $0.contains("follower detached") })

        let answer = try await http.postWebhook(PermissionRelayTests.verdictBody("qrstu"), as: approver)
        expectJSONError(answer, status: 404, error: "unknown_request")
        #expect(try await EventFilterTests.status(hub)["open_permission_requests"] == 0)
    }

    /// A prompt open in a follower survives a hub hand-over: the follower re-attaches to the
    /// new hub and registers its open prompts there, so the verdict, which now arrives at the
    /// new hub, still reaches it. Both followers have a prompt open: whichever takes the port,
    /// the other one re-attaches.
    @Test func aFollowersOpenPromptIsAnsweredAfterTheHubHandsOver() async throws {
        var sessions = try Sessions()
        defer { sessions.stop() }
        let receiver = try CallbackReceiver(statuses: [200])
        defer { receiver.stop() }
        let (hub, first, http, approver) = try await Self.hubAndFollowerWithAnApprover(&sessions, receiver: receiver)
        let second = try await sessions.start(project: "/work/c")
        _ = try await second.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        let prompts = [("ggggg", first), ("hhhhh", second)]
        for (id, follower) in prompts {
            follower.mcp.notify(PermissionRelayTests.requestMethod, params: PermissionRelayTests.requestParams(id))
        }
        _ = try await receiver.waitForDeliveries(2)
        try await retrying(timeout: defaultTimeout, "the hub to hold both followers' requests") {
            let open = try await EventFilterTests.status(hub)["open_permission_requests"]
            guard open == 2 else { throw HarnessError("open: \(String(describing: open))") }
        }

        hub.server.closeStdin()
        #expect(try await hub.server.child.waitForExit() == .exited(0))
        // One follower takes the port; the other re-attaches to it.
        try await retrying(timeout: defaultTimeout, "both sessions on the new hub") {
            let health = try await http.get("/health").json()
            guard health["sessions"] == 2 else { throw HarnessError("\(health)") }
        }

        for (id, follower) in prompts {
            let answer = try await retrying(timeout: defaultTimeout, "the new hub to know request \(id)") {
                let answer = try await http.postWebhook(PermissionRelayTests.verdictBody(id), as: approver)
                guard answer.status == 200 else { throw HarnessError("\(answer)") }
                return answer
            }
            #expect(try answer.json() == ["received": true, "verdict": "allow"], "\(id): \(answer)")
            let verdict = try await follower.mcp.message("the verdict for \(id)") {
                $0["method"]?.stringValue == PermissionRelayTests.verdictMethod
            }
            #expect(verdict["params"] == ["request_id": .string(id), "behavior": "allow"], "\(verdict)")
        }
    }

    /// A hub in /work/a with an approver whose callback is `receiver`, then a follower in /work/b.
    static func hubAndFollowerWithAnApprover(_ sessions: inout Sessions, receiver: CallbackReceiver) async throws
        -> (hub: TestChannel, follower: TestChannel, http: RawHTTPClient, approver: SourceCredentials)
    {
        let hub = try await sessions.start(project: "/work/a")
        let http = RawHTTPClient(port: sessions.port)
        let approver = try await http.pairSource(name: "phone", callbackURL: receiver.url())
        let made = try await runCLI(["approver", approver.sourceID, "on"], stateDir: sessions.stateDir)
        #expect(made.exitCode == 0, "\(made)")
        let follower = try await sessions.start(project: "/work/b")
        _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        return (hub, follower, http, approver)
    }

    /// Letting its followers go wakes their threads as the hub exits; the hub still exits 0
    /// (it crashed on about one exit in three), and once every session is gone so is
    /// `server.json` (a follower detaching during the exit wrote it back, naming a dead pid).
    @Test func aHubExitsCleanlyWithAFollowerAttachedAndLeavesNoServerFile() async throws {
        for round in 0..<5 {
            var sessions = try Sessions()
            defer { sessions.stop() }
            let hub = try await sessions.start(project: "/work/a")
            let follower = try await sessions.start(project: "/work/b")
            _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })

            if round % 2 == 0 { hub.server.closeStdin() } else { hub.server.child.send(signal: SIGTERM) }
            follower.server.closeStdin()
            #expect(try await hub.server.child.waitForExit() == .exited(0), "round \(round): \(hub.server.stderr.tail())")
            #expect(try await follower.server.child.waitForExit() == .exited(0), "round \(round)")
            #expect(!FileManager.default.fileExists(atPath: sessions.stateDir.serverFile.path), "round \(round)")
        }
    }

    /// Sessions and routes are compared with their symbolic links resolved: a route written
    /// through a link reaches the session in the real directory.
    @Test func aRouteThroughASymlinkReachesTheSessionInTheRealDirectory() async throws {
        let base = try TempStateDir()
        defer { base.remove() }
        let real = base.url.appendingPathComponent("project")
        let link = base.url.appendingPathComponent("link")
        try FileManager.default.createDirectory(at: real, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: real)

        var sessions = try Sessions()
        defer { sessions.stop() }
        let hub = try await sessions.start(project: "/work/elsewhere")
        let follower = try await sessions.start(project: real.path)
        _ = try await follower.server.stderr.waitForLine("a line with following", where: { $0.contains("following") })
        let http = RawHTTPClient(port: sessions.port)
        let credentials = try await http.pairSource(name: "ci")

        #expect(try await runCLI(["route", credentials.sourceID, link.path], stateDir: sessions.stateDir).exitCode == 0)
        _ = try await http.postWebhook(#"{"event":"linked"}"#, as: credentials)
        #expect(try await follower.mcp.channelEvent()["content"] == #"{"event":"linked"}"#)
        #expect(try await hub.mcp.channelEventsUntilQuiet().isEmpty)
    }
}

/// Runs `attempt` until it does not throw (each error is a retry) or `timeout` passes.
func retrying<T>(timeout: Duration, _ what: @autoclosure () -> String, _ attempt: () async throws -> T) async throws -> T {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        do { return try await attempt() } catch {
            if clock.now >= deadline { throw HarnessError("timed out waiting for \(what()): \(error)") }
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
