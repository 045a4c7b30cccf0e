#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif
import Platform

/// The operator CLI: the same binary with a subcommand. Exit codes: 0 ok, 1 failed (unknown id
/// or code, no server), 2 usage.
public enum WebhookChannelMain {
    /// The executable's whole body: runs the command and exits with its status.
    public static func main(arguments: [String]) -> Never {
        StandardDescriptors.ensureOpen()
        exit(run(arguments: arguments))
    }

    public static func run(arguments: [String]) -> Int32 {
        guard let command = arguments.first else { ServeCommand.run() }
        let rest = Array(arguments.dropFirst())
        var console = Console()
        switch command {
        case "serve":
            if rest.contains("--help") || rest.contains("-h") {
                console.out(ServeCommand.help)
                return 0
            }
            guard rest.isEmpty else {
                console.err("webhook-channel serve: unexpected argument \"\(rest[0].prefix(40))\"\n\n\(ServeCommand.help)")
                return 2
            }
            ServeCommand.run()
        case "pair": return PairCommand.run(rest, console: &console)
        case "status": return StatusCommand.run(rest, console: &console)
        case "sources": return SourceCommands.sources(rest, console: console)
        case "add": return SourceCommands.add(rest, console: console)
        case "revoke": return SourceCommands.revoke(rest, console: console)
        case "rotate": return SourceCommands.rotate(rest, console: console)
        case "content": return SourceCommands.content(rest, console: console)
        case "route": return RouteCommand.run(rest, console: console)
        case "approver": return SourceCommands.approver(rest, console: console)
        case "filter": return SourceCommands.filter(rest, console: console)
        case "send": return SendCommand.send(rest, console: console)
        case "sign": return SendCommand.sign(rest, console: console)
        case "events": return EventCommands.events(rest, console: console)
        case "replay": return EventCommands.replay(rest, console: console)
        case "-h", "--help", "help":
            console.out(usage)
            return 0
        case "--version", "version":
            console.out("webhook-channel \(ServeCommand.version)")
            return 0
        default:
            console.err("webhook-channel: unknown command \"\(command.prefix(40))\"\n\n\(usage)")
            return 2
        }
    }

    static let usage = """
    Usage: webhook-channel [COMMAND]

    With no command, serve: MCP on stdin/stdout and HTTP webhooks on WEBHOOK_HOST:WEBHOOK_PORT
    (default 127.0.0.1:8788). Claude Code starts it this way.

    Commands (each takes --help):
      serve                  serve (the same as no command)
      pair [CODE]            approve a pending pairing code; without CODE, list pending codes
      sources                list paired sources (never their secrets)
      add NAME --scheme S    add a provider source (github, stripe, standard, slack, webhook)
      revoke ID              remove a source
      rotate ID              new secret; the old one works for 24 more hours
      content ID MODE        what Claude reads: full body, digest, or auto (digest above 2 KB)
      route ID DIR|--clear   deliver a source's events only to sessions in the project DIR
      approver ID on|off     let a source answer Claude Code's permission prompts
      filter ID --events L   notify only these event types (--clear: all again)
      send ID [FILE|-]       sign a body as the source would and POST it to the running server
      sign ID [FILE|-]       print the signed headers for a body (for curl)
      events                 list logged events
      replay EVENT_ID        deliver a logged event again
      status                 is a server running, on which port, how many sources and pending codes

    Environment: WEBHOOK_PORT, WEBHOOK_HOST, WEBHOOK_STATE_DIR (default ~/.claude/channels/webhook)
    """
}

/// Where CLI output goes: stdout for results, stderr for errors. Kept apart from the serving
/// path, which never writes to stdout except protocol lines.
struct Console {
    func out(_ text: String) { writeFully(STDOUT_FILENO, Array((text + "\n").utf8)) }
    func err(_ text: String) { writeFully(STDERR_FILENO, Array((text + "\n").utf8)) }
}

/// Splits a command's arguments into options and positionals, refusing unknown options.
struct ParsedArguments {
    var flags: Set<String> = []
    var options: [String: String] = [:]
    var positionals: [String] = []

    struct UsageError: Error { let message: String }

    init(_ arguments: [String], flags allowedFlags: Set<String> = [], options allowedOptions: Set<String> = []) throws(UsageError) {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                positionals += arguments[(index + 1)...]
                break
            }
            if argument.hasPrefix("-") && argument != "-" {
                let (name, inline) = argument.contains("=")
                    ? (String(argument.split(separator: "=", maxSplits: 1)[0]), String(argument.split(separator: "=", maxSplits: 1).dropFirst().first ?? ""))
                    : (argument, nil as String?)
                if allowedFlags.contains(name) || name == "--help" || name == "-h" {
                    flags.insert(name == "-h" ? "--help" : name)
                } else if allowedOptions.contains(name) {
                    if let inline { options[name] = inline } else {
                        index += 1
                        guard index < arguments.count else { throw UsageError(message: "\(name) needs a value") }
                        options[name] = arguments[index]
                    }
                } else {
                    throw UsageError(message: "unknown option \(name.prefix(40))")
                }
            } else {
                positionals.append(argument)
            }
            index += 1
        }
    }
}

/// What every state-changing command opens: the state dir from the environment.
func operatorStore() -> SourcesStore {
    let directory = ServerConfig.defaultStateDirectory(environment: ProcessInfo.processInfo.environment)
    return SourcesStore(directory: StateDirectory(path: directory), log: Logger())
}
