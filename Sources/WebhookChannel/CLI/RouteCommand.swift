#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif

/// `webhook-channel route SOURCE_ID DIR|--clear`: pin a source's events to the sessions of
/// one project (several Claude Code sessions can share one endpoint, see `SessionCoordinator`).
enum RouteCommand {
    static let help = """
    Usage: webhook-channel route SOURCE_ID DIR
           webhook-channel route SOURCE_ID --clear

    Deliver this source's events only to the Claude Code sessions whose project directory is DIR
    or inside it. When no such session is connected they go to every session (never nowhere).
    --clear sends them to every session again. DIR is made absolute, its symbolic links resolved.
    """

    static func run(_ arguments: [String], console: Console) -> Int32 {
        let start = CommandStart.begin("route", arguments, help: help, flags: ["--clear"], console: console)
        guard case .run(let parsed) = start else { return start.status }
        let clear = parsed.flags.contains("--clear")
        guard let id = parsed.positionals.first, parsed.positionals.count == (clear ? 1 : 2) else {
            return usage("route", clear ? "expected SOURCE_ID with --clear" : "expected SOURCE_ID and DIR, or --clear", help,
                         console)
        }
        let route = clear ? nil : absolute(parsed.positionals[1])
        guard let source = SourceCommands.changeSource("route", id: id, console: console, { file, id throws(SourceAdmin.Failure) in
            guard let index = file.sources.firstIndex(where: { $0.id == id }) else { throw .unknownSource }
            file.sources[index].route = route
            return file.sources[index]
        }) else { return 1 }
        if let route {
            console.out("\(source.id) (\(source.name)) now goes to sessions in \(route).")
        } else {
            console.out("\(source.id) (\(source.name)) now goes to every session.")
        }
        return 0
    }

    /// DIR as an absolute path without a trailing slash and, when it exists, with its symbolic
    /// links resolved (sessions report their directory resolved too).
    static func absolute(_ path: String) -> String {
        let base = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let standardized = URL(fileURLWithPath: base).standardizedFileURL.path
        let trimmed = standardized.count > 1 && standardized.hasSuffix("/") ? String(standardized.dropLast()) : standardized
        return SessionInfo.resolvingSymlinks(trimmed)
    }
}
