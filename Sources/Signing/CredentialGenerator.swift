/// The identifiers and secrets the product hands out (README "HTTP API").
public enum CredentialGenerator {
    /// Pairing codes avoid 0/O and 1/I so a code read aloud or off a screen is typed right.
    /// 32 letters, so each letter is exactly 5 random bits and no letter is more likely.
    public static let pairingAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    public static let pairingCodeLength = 6

    private static let pairingLetters: [UInt8] = Array(pairingAlphabet.utf8)

    /// `src_` + 32 lowercase hex.
    public static func sourceID() -> String {
        "src_" + SecureRandom.hex(16)
    }

    /// `whsec_` + 64 lowercase hex (256 bits).
    public static func hmacSecret() -> String {
        "whsec_" + SecureRandom.hex(32)
    }

    /// `evt_` + 24 lowercase hex.
    public static func eventID() -> String {
        SecureRandom.pooledHex(12, prefix: "evt_")
    }

    /// Six letters of `pairingAlphabet`.
    public static func pairingCode() -> String {
        let letters = SecureRandom.bytes(pairingCodeLength).map { byte in
            // The low 5 bits of a uniform byte are uniform over 0..<32: no modulo bias.
            pairingLetters[Int(byte & 0x1F)]
        }
        return String(decoding: letters, as: UTF8.self)
    }

    /// 43 URL-safe characters (256 bits), for the device-flow poll of `/pair/status`.
    public static func pollToken() -> String {
        Base64.encodeURLSafe(SecureRandom.bytes(32))
    }
}
