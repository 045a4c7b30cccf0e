#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform
import Signing

/// `send` and `sign`: the test sender that replaces the openssl one-liner. Both sign with the
/// source's own scheme through the same signer replies use.
enum SendCommand {
    static let sendHelp = """
    Usage: webhook-channel send SOURCE_ID [FILE|-] [--content-type TYPE] [--event TYPE]

    Sign FILE (or stdin) with the source's secret and scheme and POST it to the running server,
    as the source would. Prints the server's answer. Exit 1 when no server runs or it refuses.
    """

    static let signHelp = """
    Usage: webhook-channel sign SOURCE_ID [FILE|-]

    Print the headers (Name: value) a sender would attach to FILE (or stdin), for use with curl:
      webhook-channel sign src_… body.json | sed 's/^/-H\\n/' …  or  curl -H "$(… | sed -n 1p)" …
    """

    struct Prepared {
        let source: SourceRecord
        let body: [UInt8]
        let headers: [(String, String)]
        let path: String
    }

    static func prepare(_ parsed: ParsedArguments, command: String, help: String, console: Console) -> (Prepared?, Int32) {
        guard (1...2).contains(parsed.positionals.count) else {
            return (nil, usage(command, "expected SOURCE_ID and optionally FILE", help, console))
        }
        let id = parsed.positionals[0]
        let input = parsed.positionals.count == 2 ? parsed.positionals[1] : "-"
        let body: [UInt8]
        if input == "-" {
            body = readToEnd(STDIN_FILENO)
        } else {
            guard let data = FileManager.default.contents(atPath: input) else {
                console.err("webhook-channel \(command): cannot read \(input)")
                return (nil, 1)
            }
            body = Array(data)
        }
        let file: SourcesFile
        do { (file, _) = try operatorStore().load() } catch {
            console.err("webhook-channel \(command): \(error)")
            return (nil, 1)
        }
        guard let source = file.source(id: id) else {
            console.err("No source has id \(id.prefix(80)).")
            return (nil, 1)
        }
        let deliveryID = "cli_" + SecureRandom.hex(12)
        var headers: [(String, String)] = [("Content-Type", parsed.options["--content-type"] ?? "application/json")]
        if source.scheme == .webhook { headers.append(("X-Source-Id", source.id)) }
        if let event = parsed.options["--event"] {
            headers.append((source.scheme == .github ? "X-GitHub-Event" : "X-Event-Type", event))
        }
        headers += SignatureScheme.signingHeaders(scheme: source.scheme, secret: source.hmacSecret, body: body,
                                                  timestamp: Int64(SystemClock().now()), deliveryID: deliveryID)
        let path = source.scheme == .webhook ? "/webhook" : "/webhook/\(source.id)"
        return (Prepared(source: source, body: body, headers: headers, path: path), 0)
    }

    static func send(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("send", arguments, help: sendHelp, options: ["--content-type", "--event"], console: console)
        guard case .run(let parsed) = start else { return start.status }
        let (prepared, code) = prepare(parsed, command: "send", help: sendHelp, console: console)
        guard let prepared else { return code }
        let store = operatorStore()
        guard let server = ServerFile(directory: store.directory).read() else {
            console.err("No server is running for \(store.directory.path) (no live server.json).")
            return 1
        }
        let url = "http://\(server.host):\(server.port)\(prepared.path)"
        switch CallbackClient.postBlocking(url: url, headers: prepared.headers, body: prepared.body, policy: CallbackURLPolicy(), timeout: 10) {
        case .success(let response):
            console.out("HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self))")
            return (200...299).contains(response.status) ? 0 : 1
        case .failure(let failure):
            console.err("webhook-channel send: \(failure.reason)")
            return 1
        }
    }

    static func sign(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("sign", arguments, help: signHelp, options: ["--content-type", "--event"], console: console)
        guard case .run(let parsed) = start else { return start.status }
        let (prepared, code) = prepare(parsed, command: "sign", help: signHelp, console: console)
        guard let prepared else { return code }
        for (name, value) in prepared.headers { console.out("\(name): \(value)") }
        return 0
    }
}
