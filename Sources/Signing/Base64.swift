import COpenSSL

/// Base64 (RFC 4648) through libcrypto's `EVP_EncodeBlock` / `EVP_DecodeBlock`, with the
/// strictness those functions lack checked here first.
public enum Base64 {
    /// Standard alphabet, padded with `=`.
    public static func encode(_ bytes: [UInt8]) -> String {
        guard !bytes.isEmpty else { return "" }
        let length = 4 * ((bytes.count + 2) / 3)
        // EVP_EncodeBlock writes a terminating NUL after the text.
        var output = [UInt8](repeating: 0, count: length + 1)
        let written = bytes.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                EVP_EncodeBlock(out.baseAddress, input.baseAddress, Int32(input.count))
            }
        }
        precondition(Int(written) == length, "libcrypto EVP_EncodeBlock returned an unexpected length")
        return String(decoding: output[0..<length], as: UTF8.self)
    }

    /// URL- and filename-safe alphabet (`-`, `_`) without padding, for tokens that travel in
    /// URLs and headers.
    public static func encodeURLSafe(_ bytes: [UInt8]) -> String {
        var characters: [UInt8] = []
        characters.reserveCapacity(4 * ((bytes.count + 2) / 3))
        for character in encode(bytes).utf8 {
            switch character {
            case UInt8(ascii: "+"): characters.append(UInt8(ascii: "-"))
            case UInt8(ascii: "/"): characters.append(UInt8(ascii: "_"))
            case UInt8(ascii: "="): continue
            default: characters.append(character)
            }
        }
        return String(decoding: characters, as: UTF8.self)
    }

    /// The bytes of standard-alphabet base64 `text`, or nil when it is not base64. Padding
    /// may be left out (Standard Webhooks secrets often come without it); whitespace and
    /// characters outside the alphabet are refused.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var characters = Array(text.utf8)
        var padding = 0
        while characters.last == UInt8(ascii: "=") {
            characters.removeLast()
            padding += 1
        }
        guard padding <= 2, characters.allSatisfy(isAlphabet) else { return nil }
        switch characters.count % 4 {
        case 0: guard padding == 0 else { return nil }
        case 1: return nil
        case 2: guard padding == 0 || padding == 2 else { return nil }
        default: guard padding == 0 || padding == 1 else { return nil }
        }
        let missing = (4 - characters.count % 4) % 4
        characters.append(contentsOf: repeatElement(UInt8(ascii: "="), count: missing))
        guard !characters.isEmpty else { return [] }

        var output = [UInt8](repeating: 0, count: characters.count / 4 * 3)
        let written = characters.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                EVP_DecodeBlock(out.baseAddress, input.baseAddress, Int32(input.count))
            }
        }
        // EVP_DecodeBlock counts the zero bytes that padding stands for; drop them.
        guard written == Int32(output.count) else { return nil }
        output.removeLast(missing)
        return output
    }

    private static func isAlphabet(_ character: UInt8) -> Bool {
        switch character {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }
}
