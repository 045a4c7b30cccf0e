import Foundation

/// The shapes of everything we hand out (SPEC section 4).
public enum CredentialGenerator {
    /// 32 symbols without 0/O/1/I: 5 random bits pick one, so there is no modulo bias.
    public static let pairingAlphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
    public static let pairingCodeLength = 6

    public static func sourceID() -> String { "src_" + SecureRandom.hex(16) }
    public static func hmacSecret() -> String { "whsec_" + SecureRandom.hex(32) }
    public static func eventID() -> String { "evt_" + SecureRandom.hex(12) }

    public static func pairingCode() -> String {
        String(SecureRandom.bytes(pairingCodeLength).map { pairingAlphabet[Int($0 & 0x1F)] })
    }

    /// 32 random bytes, URL-safe base64 without padding (43 characters).
    public static func pollToken() -> String {
        Base64.encode(SecureRandom.bytes(32))
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Trimmed and upper-cased; `nil` unless it is six symbols of the alphabet.
    public static func normalizePairingCode(_ text: String) -> String? {
        let code = text.trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
        guard code.count == pairingCodeLength, code.allSatisfy(pairingAlphabet.contains) else { return nil }
        return code
    }
}
