#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import JSON
import Signing

/// `sources`, `add`, `revoke`, `rotate`, `content`, `approver`, `filter`: the operator's hold
/// on who may send, who may approve and what Claude reads. Each changes
/// `sources.json` under the same lock as the server, which sees the change on its next request.
enum SourceCommands {
    static let sourcesHelp = """
    Usage: webhook-channel sources [--json]

    List paired sources: id, name, scheme, content mode, callback URL, when paired. Secrets are
    never shown.
    """

    static let addHelp = """
    Usage: webhook-channel add NAME --scheme github|stripe|standard|slack|webhook [--callback URL [--allow-private]] [--json]

    Add a source for a provider that cannot pair itself. The provider's signing secret is read
    from stdin (trailing line breaks, LF or CRLF, are dropped); with nothing on stdin a secret is generated and
    printed once. Prints the source id and the URL to paste into the provider.
    --allow-private lets replies to this source's callback go to a private network address
    (10.x, 192.168.x, ...); the cloud metadata address and the server's own port stay refused.
    """

    static let revokeHelp = """
    Usage: webhook-channel revoke SOURCE_ID

    Remove a source. Its next delivery is refused with 401.
    """

    static let rotateHelp = """
    Usage: webhook-channel rotate SOURCE_ID [--json]

    Issue a new secret for a source and print it. The old secret is still accepted for 24 hours,
    and a secret an earlier rotation replaced keeps the end it was given (at most 8 replaced
    secrets are kept).
    """

    static let contentHelp = """
    Usage: webhook-channel content SOURCE_ID full|digest|auto

    Choose what Claude reads for a source's events:
      full    the body itself, cut at 16 KiB
      digest  a summary of at most 1,536 bytes: event, action, the fields a person acts on;
              webhook_event returns the whole body
      auto    the body up to 2,048 bytes, a digest above
    New github, stripe, standard and slack sources start in auto; webhook sources in full.
    """

    static let approverHelp = """
    Usage: webhook-channel approver SOURCE_ID on|off

    Let a source answer Claude Code's permission prompts (or stop it). Each prompt is POSTed,
    signed like a reply, to every approver's callback as {"type":"permission_request",…}; the
    source answers with a v1-signed POST /webhook {"type":"permission_verdict","request_id",
    "behavior":"allow"|"deny"}. Only a webhook-scheme source with a callback URL can be one.
    Claude Code is offered the relay when a session starts with at least one approver.
    """

    static let filterHelp = """
    Usage: webhook-channel filter SOURCE_ID --events LIST
           webhook-channel filter SOURCE_ID --clear

    Notify Claude only of the listed event types (comma-separated; a trailing * matches a
    prefix, a lone * every event, also one without a type). Other events are still verified,
    logged and deduplicated, answered {"received":true,…,"filtered":true}, and listed by
    webhook_events with "filtered": true. --clear notifies every event again.
    Examples: --events 'workflow_run,check_suite,pull_request*'
              --events 'invoice.payment_failed,charge.dispute.*'
    """

    static func sources(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("sources", arguments, help: sourcesHelp, flags: ["--json"], positionals: [0],
                                       expected: "takes no arguments", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let file: SourcesFile
        do { (file, _) = try operatorStore().load() } catch {
            console.err("webhook-channel sources: \(error)")
            return 1
        }
        if parsed.flags.contains("--json") {
            let list: [JSONValue] = file.sources.map { .object($0.listing) }
            console.out(JSONWriter.compactString(["sources": .array(list)]))
            return 0
        }
        guard !file.sources.isEmpty else { console.out("No sources are paired."); return 0 }
        for source in file.sources {
            var line = "\(source.id)  \(source.name)  scheme=\(source.scheme.rawValue)  content=\(source.contentMode.rawValue)  route=\(source.route ?? "all")"
                + "  callback=\(source.callbackURL ?? "none")  paired=\(source.pairedAt)"
            if source.isApprover { line += "  approver" }
            if source.allowsPrivateCallback { line += "  private-callback" }
            if let filter = source.eventFilter { line += "  events=\(filter.list)" }
            console.out(line)
        }
        return 0
    }

    static func add(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("add", arguments, help: addHelp, flags: ["--json", "--allow-private"],
                                       options: ["--scheme", "--callback"], positionals: [1],
                                       expected: "expected exactly one NAME", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let rawName = parsed.positionals[0]
        guard let name = SourceName.validated(rawName) else {
            return usage("add", "NAME must be \(SourceName.rule)", addHelp, console)
        }
        guard let schemeName = parsed.options["--scheme"] else { return usage("add", "--scheme is required", addHelp, console) }
        guard let scheme = SignatureScheme(rawValue: schemeName.lowercased()) else {
            return usage("add", "unknown scheme \"\(schemeName.prefix(20))\"", addHelp, console)
        }
        let store = operatorStore()
        // Checked before anything is added: a URL built from a bad setting would be pasted
        // into the provider and never reach the server, which refuses to start with it.
        let base: String
        do { base = try webhookBaseURL(directory: store.directory) } catch {
            console.err("webhook-channel add: \(error.description)")
            return 2
        }
        let callback = parsed.options["--callback"]
        if let callback {
            // Never the server's own port (`CallbackURLPolicy.ownPort`).
            let ownPort = CallbackURLPolicy.OwnPort(UInt16(clamping: URLComponents(string: base)?.port ?? 0))
            do {
                _ = try CallbackURLPolicy(allowPrivate: parsed.flags.contains("--allow-private"), ownPort: ownPort).check(callback)
            } catch {
                console.err("webhook-channel add: refused callback URL: \(error.reason)")
                return 1
            }
        }
        let piped = readSecretFromStdin()
        if scheme == .standard, let piped, !SignatureScheme.isBase64StandardSecret(piped) {
            console.err("webhook-channel add: warning: the secret is not base64 after \"whsec_\", as a Standard Webhooks "
                + "signing secret is; it is used as it is, but a sender signs with the decoded key, so check what was pasted")
        }
        let secret = piped ?? SourceAdmin.generateSecret(for: scheme)
        let now = SystemClock().now()
        store.waitWhileFreshlyCorrupt()
        do {
            let (source, _, _) = try store.mutate { file in
                SourceAdmin.add(&file, name: name, scheme: scheme, secret: secret, callbackURL: callback,
                                allowsPrivateCallback: parsed.flags.contains("--allow-private"), now: now)
            }
            let url = base + source.id
            if parsed.flags.contains("--json") {
                var object: JSONObject = ["source_id": .string(source.id), "name": .string(name), "scheme": .string(scheme.rawValue),
                                          "url": .string(url)]
                if piped == nil { object["secret"] = .string(secret) }
                console.out(JSONWriter.compactString(.object(object)))
            } else {
                console.out("Added \"\(name)\" (scheme \(scheme.rawValue)).\nSource ID: \(source.id)\nWebhook URL: \(url)")
                if piped == nil {
                    console.out("Secret: \(secret)\n(Shown once. Paste it into the provider's webhook settings.)")
                }
            }
            return 0
        } catch {
            console.err("webhook-channel add: \(error)")
            return 1
        }
    }

    static func revoke(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("revoke", arguments, help: revokeHelp, positionals: [1],
                                       expected: "expected exactly one SOURCE_ID", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let id = parsed.positionals[0]
        guard let source = changeSource("revoke", id: id, console: console, { file, id throws(SourceAdmin.Failure) in
            try SourceAdmin.revoke(&file, id: id)
        }) else { return 1 }
        console.out("Revoked \(source.id) (\(source.name)). Its next delivery is refused.")
        return 0
    }

    static func rotate(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("rotate", arguments, help: rotateHelp, flags: ["--json"], positionals: [1],
                                       expected: "expected exactly one SOURCE_ID", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let id = parsed.positionals[0]
        let now = SystemClock().now()
        var dropped: [RetiredSecret] = []
        guard let source = changeSource("rotate", id: id, console: console, { file, id throws(SourceAdmin.Failure) in
            let scheme = file.source(id: id)?.scheme ?? .webhook
            let rotation = try SourceAdmin.rotate(&file, id: id, now: now, newSecret: SourceAdmin.generateSecret(for: scheme))
            dropped = rotation.droppedEarly
            return rotation.source
        }) else { return 1 }
        let previousExpiry = source.previousExpiresAt ?? ISOTime.format(now)
        if parsed.flags.contains("--json") {
            console.out(JSONWriter.compactString([
                "source_id": .string(source.id), "hmac_secret": .string(source.hmacSecret),
                "previous_expires_at": .string(previousExpiry),
                "earlier_expires_at": .array(source.earlierSecrets.map { .string($0.expiresAt) }),
                "ended_early": .array(dropped.map { .string($0.expiresAt) }),
            ]))
        } else {
            var lines = [
                "Rotated \(source.id) (\(source.name)).",
                "New secret: \(source.hmacSecret)",
                "The old secret is accepted until \(previousExpiry).",
            ]
            // Earlier rotations' promises still hold: each replaced secret keeps its own end.
            lines += source.earlierSecrets.map { "A secret replaced earlier is still accepted until \($0.expiresAt)." }
            lines += dropped.map {
                "A secret replaced earlier (accepted until \($0.expiresAt)) is no longer accepted: at most "
                    + "\(SourceAdmin.maxRetiredSecrets) replaced secrets are kept."
            }
            console.out(lines.joined(separator: "\n"))
        }
        return 0
    }

    static func content(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("content", arguments, help: contentHelp, positionals: [2],
                                       expected: "expected SOURCE_ID and one of full, digest, auto", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let id = parsed.positionals[0]
        guard let mode = ContentMode(rawValue: parsed.positionals[1]) else {
            return usage("content", "unknown mode \"\(parsed.positionals[1].prefix(20))\"", contentHelp, console)
        }
        guard let source = changeSource("content", id: id, console: console, { file, id throws(SourceAdmin.Failure) in
            try SourceAdmin.setContentMode(&file, id: id, mode: mode)
        }) else { return 1 }
        console.out("\(source.id) (\(source.name)) now delivers \(mode.rawValue) content.")
        return 0
    }

    static func approver(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("approver", arguments, help: approverHelp, positionals: [2],
                                       expected: "expected SOURCE_ID and on or off", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let id = parsed.positionals[0]
        let word = parsed.positionals[1]
        guard word == "on" || word == "off" else {
            return usage("approver", "expected on or off, not \"\(word.prefix(20))\"", approverHelp, console)
        }
        guard let source = changeSource("approver", id: id, console: console, { file, id throws(SourceAdmin.Failure) in
            try SourceAdmin.setApprover(&file, id: id, on: word == "on")
        }) else { return 1 }
        if source.approver {
            console.out("\(source.id) (\(source.name)) is now an approver: permission requests go to \(source.callbackURL ?? "")."
                + "\nSessions started from now on offer the relay to Claude Code.")
        } else {
            console.out("\(source.id) (\(source.name)) is no longer an approver; its verdicts approve nothing.")
        }
        return 0
    }

    static func filter(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("filter", arguments, help: filterHelp, flags: ["--clear"], options: ["--events"], positionals: [1],
                                       expected: "expected exactly one SOURCE_ID", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let id = parsed.positionals[0]
        let clear = parsed.flags.contains("--clear")
        let filter: EventFilter?
        switch (parsed.options["--events"], clear) {
        case (let list?, false):
            guard let parsedFilter = EventFilter(list: list) else {
                return usage("filter", "--events needs a comma-separated list of event types (a * only at the end)", filterHelp, console)
            }
            filter = parsedFilter
        case (nil, true):
            filter = nil
        default:
            return usage("filter", "give either --events LIST or --clear", filterHelp, console)
        }
        guard let source = changeSource("filter", id: id, console: console, { file, id throws(SourceAdmin.Failure) in
            try SourceAdmin.setEventFilter(&file, id: id, filter: filter)
        }) else { return 1 }
        if let filter {
            console.out("\(source.id) (\(source.name)) now notifies only: \(filter.list). Other events are logged, not notified.")
        } else {
            console.out("\(source.id) (\(source.name)) notifies every event again.")
        }
        return 0
    }

    /// Applies `change` to source `id` under the state lock. An unknown id or a failed write is
    /// reported on stderr and gives `nil` (exit 1 for the caller).
    static func changeSource(_ command: String, id: String, console: Console,
                             _ change: (inout SourcesFile, String) throws(SourceAdmin.Failure) -> SourceRecord) -> SourceRecord?
    {
        let store = operatorStore()
        store.waitWhileFreshlyCorrupt()
        do {
            let (source, _, _) = try store.mutate { file throws(SourceAdmin.Failure) in try change(&file, id) }
            return source
        } catch SourceAdmin.Failure.unknownSource {
            console.err("No source has id \(id.prefix(80)).")
        } catch SourceAdmin.Failure.refused(let reason) {
            console.err("webhook-channel \(command): refused: \(reason)")
        } catch {
            console.err("webhook-channel \(command): \(error)")
        }
        return nil
    }

    /// The provider's secret, when one is piped in; `nil` for a terminal or empty input.
    static func readSecretFromStdin() -> String? {
        guard isatty(STDIN_FILENO) == 0 else { return nil }
        let secret = withoutTrailingLineBreaks(readToEnd(STDIN_FILENO))
        return secret.isEmpty ? nil : String(decoding: secret, as: UTF8.self)
    }

    /// `bytes` without the CR and LF bytes at its end (`echo`'s LF, a Windows editor's CRLF).
    /// Cut as bytes: in a `String`, "\r\n" is one `Character`, so `hasSuffix("\n")` is false
    /// for it and a character-wise trim kept the CR in the secret.
    static func withoutTrailingLineBreaks(_ bytes: [UInt8]) -> [UInt8] {
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return Array(bytes[..<end])
    }

    /// `http://HOST:PORT/webhook/`, a source id short of a source's URL: the running server's
    /// address, else the one `WEBHOOK_HOST` and `WEBHOOK_PORT` give a server started now. Those
    /// are checked as the server checks them, also while one runs (a bad value is a mistake to
    /// hear about either way).
    static func webhookBaseURL(directory: StateDirectory,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws(ServerConfig.Invalid) -> String
    {
        let configured = try ServerConfig.address(environment)
        let running = ServerFile(directory: directory).read()
        let host = running?.host ?? configured.host
        let port = running?.port ?? configured.port
        // Port 0 is picked when the server starts; until one runs, there is no number to show.
        return "http://\(ServerConfig.urlHost(host)):\(port == 0 ? "<port>" : String(port))/webhook/"
    }
}
