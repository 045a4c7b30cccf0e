import Foundation

/// `sources`, `add`, `revoke`, `rotate`: the operator's hold on who may send. Each changes
/// `sources.json` under the same lock as the server, which sees the change on its next request.
enum SourceCommands {
    static let sourcesHelp = """
    Usage: webhook-channel sources [--json]

    List paired sources: id, name, scheme, callback URL, when paired. Secrets are never shown.
    """

    static let addHelp = """
    Usage: webhook-channel add NAME --scheme github|stripe|standard|slack|webhook [--callback URL] [--json]

    Add a source for a provider that cannot pair itself. The provider's signing secret is read
    from stdin (a trailing newline is dropped); with nothing on stdin a secret is generated and
    printed once. Prints the source id and the URL to paste into the provider.
    """

    static let revokeHelp = """
    Usage: webhook-channel revoke SOURCE_ID

    Remove a source. Its next delivery is refused with 401.
    """

    static let rotateHelp = """
    Usage: webhook-channel rotate SOURCE_ID [--json]

    Issue a new secret for a source and print it. The old secret is still accepted for 24 hours.
    """

    static func sources(_ arguments: [String], console: Console) -> Int32 {
        guard let parsed = parse(arguments, flags: ["--json"], help: sourcesHelp, command: "sources", console: console) else { return 2 }
        if parsed.flags.contains("--help") { console.out(sourcesHelp); return 0 }
        guard parsed.positionals.isEmpty else { return usage("sources", "takes no arguments", sourcesHelp, console) }
        let (file, _) = operatorStore().load()
        if parsed.flags.contains("--json") {
            let list: [JSONValue] = file.sources.map { source in
                ["source_id": .string(source.id), "name": .string(source.name), "scheme": .string(source.scheme.rawValue),
                 "callback_url": .optionalString(source.callbackURL), "paired_at": .string(source.pairedAt)]
            }
            console.out(JSONWriter.compactString(["sources": .array(list)]))
            return 0
        }
        guard !file.sources.isEmpty else { console.out("No sources are paired."); return 0 }
        for source in file.sources {
            console.out("\(source.id)  \(source.name)  scheme=\(source.scheme.rawValue)  callback=\(source.callbackURL ?? "none")  paired=\(source.pairedAt)")
        }
        return 0
    }

    static func add(_ arguments: [String], console: Console) -> Int32 {
        guard let parsed = parse(arguments, flags: ["--json", "--allow-private"], options: ["--scheme", "--callback"],
                                 help: addHelp, command: "add", console: console) else { return 2 }
        if parsed.flags.contains("--help") { console.out(addHelp); return 0 }
        guard parsed.positionals.count == 1, let name = parsed.positionals.first, !name.isEmpty else {
            return usage("add", "expected exactly one NAME", addHelp, console)
        }
        guard let schemeName = parsed.options["--scheme"] else { return usage("add", "--scheme is required", addHelp, console) }
        guard let scheme = SignatureScheme(rawValue: schemeName.lowercased()) else {
            return usage("add", "unknown scheme \"\(schemeName.prefix(20))\"", addHelp, console)
        }
        let callback = parsed.options["--callback"]
        if let callback {
            do { _ = try CallbackURLPolicy(allowPrivate: parsed.flags.contains("--allow-private")).check(callback) } catch {
                console.err("webhook-channel add: refused callback URL: \(error.reason)")
                return 1
            }
        }
        let piped = readSecretFromStdin()
        let secret = piped ?? SourceAdmin.generateSecret(for: scheme)
        let now = SystemClock().now()
        let store = operatorStore()
        do {
            let (source, _, _) = try store.mutate { file in
                SourceAdmin.add(&file, name: name, scheme: scheme, secret: secret, callbackURL: callback, now: now)
            }
            let url = webhookURL(for: source, directory: store.directory)
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
        guard let parsed = parse(arguments, help: revokeHelp, command: "revoke", console: console) else { return 2 }
        if parsed.flags.contains("--help") { console.out(revokeHelp); return 0 }
        guard parsed.positionals.count == 1, let id = parsed.positionals.first else {
            return usage("revoke", "expected exactly one SOURCE_ID", revokeHelp, console)
        }
        do {
            let (source, _, _) = try operatorStore().mutate { file throws(SourceAdmin.Failure) in try SourceAdmin.revoke(&file, id: id) }
            console.out("Revoked \(source.id) (\(source.name)). Its next delivery is refused.")
            return 0
        } catch SourceAdmin.Failure.unknownSource {
            console.err("No source has id \(id.prefix(80)).")
            return 1
        } catch {
            console.err("webhook-channel revoke: \(error)")
            return 1
        }
    }

    static func rotate(_ arguments: [String], console: Console) -> Int32 {
        guard let parsed = parse(arguments, flags: ["--json"], help: rotateHelp, command: "rotate", console: console) else { return 2 }
        if parsed.flags.contains("--help") { console.out(rotateHelp); return 0 }
        guard parsed.positionals.count == 1, let id = parsed.positionals.first else {
            return usage("rotate", "expected exactly one SOURCE_ID", rotateHelp, console)
        }
        let now = SystemClock().now()
        do {
            let (source, _, _) = try operatorStore().mutate { file throws(SourceAdmin.Failure) in
                let scheme = file.source(id: id)?.scheme ?? .webhook
                return try SourceAdmin.rotate(&file, id: id, now: now, newSecret: SourceAdmin.generateSecret(for: scheme))
            }
            if parsed.flags.contains("--json") {
                console.out(JSONWriter.compactString([
                    "source_id": .string(source.id), "hmac_secret": .string(source.hmacSecret),
                    "previous_expires_at": .optionalString(source.previousExpiresAt),
                ]))
            } else {
                console.out("""
                Rotated \(source.id) (\(source.name)).
                New secret: \(source.hmacSecret)
                The old secret is accepted until \(source.previousExpiresAt ?? "now").
                """)
            }
            return 0
        } catch SourceAdmin.Failure.unknownSource {
            console.err("No source has id \(id.prefix(80)).")
            return 1
        } catch {
            console.err("webhook-channel rotate: \(error)")
            return 1
        }
    }

    /// The provider's secret, when one is piped in; `nil` for a terminal or empty input.
    static func readSecretFromStdin() -> String? {
        guard isatty(STDIN_FILENO) == 0 else { return nil }
        let data = FileHandle.standardInput.readDataToEndOfFile()
        var text = String(decoding: data, as: UTF8.self)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        return text.isEmpty ? nil : text
    }

    static func webhookURL(for source: SourceRecord, directory: StateDirectory) -> String {
        let environment = ProcessInfo.processInfo.environment
        let running = ServerFile(directory: directory).read()
        let host = running?.host ?? environment["WEBHOOK_HOST"] ?? "127.0.0.1"
        let port = running.map { String($0.port) } ?? environment["WEBHOOK_PORT"] ?? "8788"
        return "http://\(host):\(port)/webhook/\(source.id)"
    }
}

/// Parses or prints a usage error (exit code 2 for the caller).
func parse(_ arguments: [String], flags: Set<String> = [], options: Set<String> = [], help: String, command: String,
           console: Console) -> ParsedArguments?
{
    do { return try ParsedArguments(arguments, flags: flags, options: options) } catch {
        console.err("webhook-channel \(command): \(error.message)\n\n\(help)")
        return nil
    }
}

func usage(_ command: String, _ message: String, _ help: String, _ console: Console) -> Int32 {
    console.err("webhook-channel \(command): \(message)\n\n\(help)")
    return 2
}
