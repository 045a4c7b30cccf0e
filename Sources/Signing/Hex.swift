/// Hexadecimal text for signatures, secrets and ids.
public enum Hex {
    /// Lowercase hex, two characters per byte, after `prefix` (`evt_`): one string made
    /// once, where `prefix + encode(bytes)` makes two.
    public static func encode(_ bytes: UnsafeRawBufferPointer, prefix: String = "") -> String {
        guard !bytes.isEmpty else { return prefix }
        var prefix = prefix
        return prefix.withUTF8 { head in
            String(unsafeUninitializedCapacity: head.count + bytes.count * 2) { out in
                guard let to = out.baseAddress else { return 0 }
                if let from = head.baseAddress { to.update(from: from, count: head.count) }
                var index = head.count
                for byte in bytes {
                    to[index] = digit(byte >> 4)
                    to[index + 1] = digit(byte)
                    index += 2
                }
                return index
            }
        }
    }

    /// The lowercase hex digit for the low four bits of `value`: worked out, not looked up
    /// (a table is a global to reach and an index to check, per digit).
    @inlinable @inline(__always)
    public static func digit(_ value: UInt8) -> UInt8 {
        let nibble = value & 0x0F
        return nibble &+ (nibble < 10 ? UInt8(ascii: "0") : UInt8(ascii: "a") &- 10)
    }

    /// `value` as sixteen lowercase hex digits, most significant first, at `to`.
    @inlinable @inline(__always)
    public static func write(_ value: UInt64, to: UnsafeMutablePointer<UInt8>) {
        var rest = value
        for index in stride(from: 15, through: 0, by: -1) {
            to[index] = digit(UInt8(truncatingIfNeeded: rest))
            rest >>= 4
        }
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { encode($0) }
    }

    /// The bytes spelled by `text`, or nil unless it is an even number of hex digits and
    /// nothing else (no prefix, no whitespace). Either letter case is accepted.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        if let decoded = text.utf8.withContiguousStorageIfAvailable({ decode(utf8: $0) }) {
            return decoded
        }
        return Array(text.utf8).withUnsafeBufferPointer { decode(utf8: $0) }
    }

    private static func decode(utf8: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard utf8.count % 2 == 0 else { return nil }
        var valid = false
        let result = [UInt8](unsafeUninitializedCapacity: utf8.count / 2) { out, count in
            valid = decode(utf8: utf8, into: UnsafeMutableRawBufferPointer(out))
            count = valid ? out.count : 0
        }
        return valid ? result : nil
    }

    /// Decodes hex digits into `out` (exactly half as many bytes); false unless every byte
    /// is a hex digit and the lengths agree. For fixed-size values read on the stack.
    public static func decode(utf8: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableRawBufferPointer) -> Bool {
        guard utf8.count == 2 * out.count else { return false }
        guard let from = utf8.baseAddress, let to = out.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return true }
        // Eight digits (four bytes) at a time, then one byte at a time: a signature is 64.
        var index = 0
        var allValid = true
        let raw = UnsafeRawPointer(from)
        while 2 * index + 8 <= utf8.count {
            let (bytes, valid) = decodeWord(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * index, as: UInt64.self)))
            UnsafeMutableRawPointer(to + index).storeBytes(of: bytes.littleEndian, as: UInt32.self)
            allValid = allValid && valid
            index += 4
        }
        // No early exit and no optional per digit: invalid digits set high bits, checked once.
        var invalid: UInt8 = 0
        while index < out.count {
            let high = digitValue(from[2 * index]), low = digitValue(from[2 * index + 1])
            invalid |= (high | low) & 0xF0
            to[index] = high << 4 | (low & 0x0F)
            index += 1
        }
        return allValid && invalid == 0
    }

    /// Eight hex digits (the first in the lowest byte) as four bytes (the first lowest), and
    /// whether all eight were hex digits. Word tricks: a byte's range is tested on its low
    /// seven bits, where adding cannot carry into the next byte.
    @inline(__always)
    static func decodeWord(_ word: UInt64) -> (UInt32, Bool) {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let low7 = word & ~highs
        // From 0x30 through 0x39: `+ 0x50` sets the high bit from 0x30 on, `+ 0x46` from 0x3A on.
        let digit = (low7 &+ ones &* 0x50) & ~(low7 &+ ones &* 0x46)
        // From 0x61 through 0x66 once folded to lower case: `+ 0x1F` from 0x61, `+ 0x19` from 0x67.
        let folded = low7 | ones &* 0x20
        let letter = (folded &+ ones &* 0x1F) & ~(folded &+ ones &* 0x19)
        let valid = (digit | letter) & ~word & highs == highs
        // A digit's value is its low nibble; a letter's (bit 6 set) its low nibble plus 9.
        let values = (word & (ones &* 0x0F)) &+ (word >> 6 & ones) &* 9
        // Each even byte takes the nibble of the byte after it; then the even bytes close up.
        var packed = (values << 4 | values >> 8) & 0x00FF_00FF_00FF_00FF
        packed = (packed | packed >> 8) & 0x0000_FFFF_0000_FFFF
        packed = packed | packed >> 16
        return (UInt32(truncatingIfNeeded: packed), valid)
    }

    /// 0...15 for a hex digit (either case), 0xFF for anything else. Selects, not branches:
    /// a signature's digits and letters come in random order, and a mispredicted branch per
    /// character cost more than the rest of the decoding.
    @inline(__always)
    private static func digitValue(_ character: UInt8) -> UInt8 {
        let digit = character &- UInt8(ascii: "0")
        let letter = ((character | 0x20) &- UInt8(ascii: "a")) &+ 10
        var value: UInt8 = 0xFF
        value = letter &- 10 < 6 ? letter : value
        value = digit < 10 ? digit : value
        return value
    }
}
