#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import JSON
import Signing

/// `webhook-channel pair [CODE]`: the terminal side of pairing, what `/webhook:pair` runs.
enum PairCommand {
    static let help = """
    Usage: webhook-channel pair [CODE] [--json]

    Approve the pending pairing CODE (case-insensitive) and print the new source's id and secret.
    Without CODE, list the pending codes with their age. An expired CODE is removed (exit 1).
    With --json, a failure is {"error": "unknown_code"|"expired_code"|…, "message": …} on
    stdout too (unknown_code adds "pending": the codes that are).
    Only approve codes you requested yourself; never one that arrived in a channel message.
    """

    static func run(_ arguments: [String], console: inout Console) -> Int32 {
        let start = CommandStart.begin("pair", arguments, help: help, flags: ["--json"], positionals: [0, 1],
                                       expected: "expected at most one CODE", console: console)
        guard case .run(let parsed) = start else { return start.status }
        let store = operatorStore()
        let json = parsed.flags.contains("--json")
        guard let code = parsed.positionals.first else { return list(store: store, json: json, console: console) }
        return approve(code: code, store: store, json: json, console: console)
    }

    private static func list(store: SourcesStore, json: Bool, console: Console) -> Int32 {
        let file: SourcesFile
        do { (file, _) = try store.load() } catch {
            console.err("webhook-channel pair: \(error)")
            return 1
        }
        let now = SystemClock().now()
        if json {
            console.out(JSONWriter.compactString(["pending": pendingJSON(file, now: now)]))
            return 0
        }
        let pending = PairingBook.livePending(file, now: now)
        guard !pending.isEmpty else {
            console.out("No pending pairings.")
            return 0
        }
        console.out("Pending pairings:")
        for pairing in pending {
            let age = Int(now - (ISOTime.parse(pairing.createdAt) ?? now))
            let callback = pairing.callbackURL.map { " callback \($0)" } ?? ""
            console.out("  \(pairing.code)  \(pairing.name)  (requested \(age)s ago, expires in \(max(0, Int(PairingBook.codeLifetime) - age))s)\(callback)")
        }
        console.out("Approve one with: webhook-channel pair CODE")
        return 0
    }

    private static func pendingJSON(_ file: SourcesFile, now: Double) -> JSONValue {
        .array(PairingBook.livePending(file, now: now).map { pairing in
            ["code": .string(pairing.code), "name": .string(pairing.name), "callback_url": .optionalString(pairing.callbackURL),
             "created_at": .string(pairing.createdAt),
             "age_seconds": .int(Int64(now - (ISOTime.parse(pairing.createdAt) ?? now)))]
        })
    }

    private static func approve(code: String, store: SourcesStore, json: Bool, console: Console) -> Int32 {
        let now = SystemClock().now()
        // A failure is said on stderr for the person and, with --json, as an object on stdout
        // for the script that asked for JSON.
        func fail(_ error: String, _ message: String, pending: Bool = false) -> Int32 {
            console.err(message)
            if json {
                var object: JSONObject = ["error": .string(error), "message": .string(message)]
                if pending, let (file, _) = try? store.load() { object["pending"] = pendingJSON(file, now: SystemClock().now()) }
                console.out(JSONWriter.compactString(.object(object)))
            } else if pending {
                _ = list(store: store, json: false, console: console)
            }
            return 1
        }
        store.waitWhileFreshlyCorrupt()
        do {
            let (approval, _, _) = try store.mutate { file throws -> SourceRecord? in
                do {
                    return try PairingBook.approve(&file, code: code, now: now, sourceID: CredentialGenerator.sourceID(),
                                                   secret: CredentialGenerator.hmacSecret())
                } catch PairingBook.Failure.expiredCode {
                    // As the seed's skill does: the expired code is removed and the file written
                    // back (approve dropped it; returning, not throwing, lets mutate write).
                    return nil
                }
            }
            guard let source = approval else {
                return fail("expired_code", "Pairing code \(code.uppercased().prefix(12)) has expired and was removed; ask the source to request a new one.")
            }
            if json {
                console.out(JSONWriter.compactString([
                    "source_id": .string(source.id), "hmac_secret": .string(source.hmacSecret), "name": .string(source.name),
                    "callback_url": .optionalString(source.callbackURL),
                ]))
            } else {
                console.out("""
                Paired "\(source.name)" successfully.
                Source ID: \(source.id)
                HMAC Secret: \(source.hmacSecret)
                Callback URL: \(source.callbackURL ?? "none")

                Give these credentials to the source: it signs every webhook with the secret.
                (A source that polls /pair/status with its poll_token collects them itself.)
                """)
            }
            return 0
        } catch PairingBook.Failure.unknownCode {
            return fail("unknown_code", "No pending pairing for code \(code.uppercased().prefix(12)).", pending: true)
        } catch {
            return fail("pair_failed", "webhook-channel pair: \(error)")
        }
    }
}
