/// How every command begins: its arguments parsed and counted, or the exit status it has
/// already ended with (`--help` printed: 0; a usage error on stderr: 2).
enum CommandStart {
    case run(ParsedArguments)
    case finished(Int32)

    var status: Int32 {
        if case .finished(let status) = self { return status }
        return 0
    }

    /// Parses `arguments` for `command`, answers `--help`, and checks that the number of
    /// positional arguments is one of `positionals` (any when nil), saying `expected`
    /// otherwise.
    static func begin(_ command: String, _ arguments: [String], help: String, flags: Set<String> = [],
                      options: Set<String> = [], positionals: Set<Int>? = nil, expected: String = "",
                      console: Console) -> CommandStart
    {
        let parsed: ParsedArguments
        do { parsed = try ParsedArguments(arguments, flags: flags, options: options) } catch {
            return .finished(usage(command, error.message, help, console))
        }
        if parsed.flags.contains("--help") {
            console.out(help)
            return .finished(0)
        }
        if let positionals, !positionals.contains(parsed.positionals.count) {
            return .finished(usage(command, expected, help, console))
        }
        return .run(parsed)
    }
}

/// Writes a usage error with the command's help to stderr; the status is 2.
func usage(_ command: String, _ message: String, _ help: String, _ console: Console) -> Int32 {
    console.err("webhook-channel \(command): \(message)\n\n\(help)")
    return 2
}
