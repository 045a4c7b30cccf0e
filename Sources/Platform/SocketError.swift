#if canImport(FoundationEssentials)
import FoundationEssentials  // Linux: Foundation without ICU
#else
import Foundation
#endif

/// A failed socket call, with the call's name and `errno`'s text so a person can act on it
/// ("bind: Address already in use").
public struct SocketError: Error, Sendable, CustomStringConvertible {
    public let call: String
    public let code: Int32

    public init(call: String, code: Int32) {
        self.call = call
        self.code = code
    }

    public static func system(_ call: String) -> SocketError {
        SocketError(call: call, code: errno)
    }

    public var description: String {
        "\(call): \(String(cString: strerror(code)))"
    }
}
