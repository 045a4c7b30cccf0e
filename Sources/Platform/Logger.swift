#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif

/// Log lines go to stderr only, one `write` per line so lines from threads never interleave.
/// Callers log ids, sizes and statuses — never a secret, a signature or a body.
public struct Logger: Sendable {
    public var enabled: Bool

    public init(enabled: Bool = true) { self.enabled = enabled }

    public func info(_ message: @autoclosure () -> String) {
        guard enabled else { return }
        emit("webhook-channel: " + message())
    }

    public func warning(_ message: @autoclosure () -> String) {
        guard enabled else { return }
        emit("webhook-channel: warning: " + message())
    }

    public func error(_ message: @autoclosure () -> String) {
        emit("webhook-channel: error: " + message())
    }

    private func emit(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        StandardError.shared.write(bytes)
    }
}
