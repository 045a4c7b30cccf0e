import Testing
@testable import JSON

/// `JSONWriter.firstEscaped` finds the next byte a JSON string must escape sixteen bytes at a
/// time (vector compares), then by words, then byte by byte: every byte value, at every
/// position of each of those stretches, must give the byte-by-byte answer.
struct JSONEscapeScanTests {
    static func expected(_ bytes: [UInt8], from: Int) -> Int {
        bytes[from...].firstIndex(where: JSONWriter.isEscaped) ?? bytes.count
    }

    @Test func theFirstByteToEscapeIsFoundWhereverItIsAndWhateverItIs() {
        // 41 bytes: two vector blocks, a word and a tail from offset 0; other alignments below.
        let filler = UInt8(ascii: "a")
        for value in 0...255 {
            let byte = UInt8(value)
            for position in 0..<41 {
                var bytes = [UInt8](repeating: filler, count: 41)
                bytes[position] = byte
                for from in [0, 1, 7, 9] where from <= position {
                    let found = bytes.withUnsafeBytes { JSONWriter.firstEscaped(in: $0.baseAddress!, from: from, count: bytes.count) }
                    #expect(found == Self.expected(bytes, from: from), "byte \(value) at \(position) from \(from)")
                }
            }
        }
    }

    /// Every length and start, with bytes that need escaping (and their neighbours, which a
    /// borrow between bytes could be confused with) anywhere, before the start too: the last
    /// word of a string is read overlapping bytes already passed, and those must not count.
    @Test func theFirstByteToEscapeIsFoundFromAnyStartWhateverCameBefore() {
        var random = SplitMix64(seed: 0x5CA7)
        let near: [UInt8] = [0x22, 0x23, 0x21, 0x5C, 0x5D, 0x5B, 0x1F, 0x20, 0x00, 0x01, 0x7F, 0xC3, UInt8(ascii: "a")]
        for count in 0...40 {
            for from in 0...count {
                for _ in 0..<20 {
                    let bytes = (0..<count).map { _ in near[random.below(near.count)] }
                    var bits: UInt64 = 0
                    let found = bytes.withUnsafeBytes {
                        JSONWriter.firstEscaped(in: $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, from: from, count: count, orBits: &bits)
                    }
                    #expect(found == Self.expected(bytes, from: from), "\(bytes) from \(from)")
                    if bytes[from..<found].contains(where: { $0 >= 0x80 }) {
                        #expect(bits & 0x8080_8080_8080_8080 != 0, "\(bytes) from \(from)")
                    }
                }
            }
        }
    }

    @Test func theFirstOfSeveralIsFoundAndLaterOnesDoNotMatter() {
        var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: 64)
        bytes[20] = 0x0A
        bytes[19] = UInt8(ascii: "\\")
        bytes[37] = UInt8(ascii: "\"")
        let found = bytes.withUnsafeBytes { JSONWriter.firstEscaped(in: $0.baseAddress!, from: 0, count: 64) }
        #expect(found == 19)
        let next = bytes.withUnsafeBytes { JSONWriter.firstEscaped(in: $0.baseAddress!, from: 21, count: 64) }
        #expect(next == 37)
        let none = bytes.withUnsafeBytes { JSONWriter.firstEscaped(in: $0.baseAddress!, from: 38, count: 64) }
        #expect(none == 64)
    }

    /// The reader skips checking a run as UTF-8 when no byte it passed had its high bit set:
    /// a byte from 0x80 anywhere before the one found must show in `orBits`.
    @Test func aNonASCIIByteBeforeTheOneFoundShowsInTheBitsRead() {
        for position in 0..<40 {
            var bytes = [UInt8](repeating: UInt8(ascii: "b"), count: 48)
            bytes[position] = 0xC3
            bytes[44] = UInt8(ascii: "\"")
            var bits: UInt64 = 0
            let found = bytes.withUnsafeBytes { JSONWriter.firstEscaped(in: $0.baseAddress!, from: 0, count: 48, orBits: &bits) }
            #expect(found == 44)
            #expect(bits & 0x8080_8080_8080_8080 != 0, "0xC3 at \(position) not seen")
        }
        var ascii = [UInt8](repeating: UInt8(ascii: "b"), count: 48)
        ascii[44] = UInt8(ascii: "\"")
        var bits: UInt64 = 0
        _ = ascii.withUnsafeBytes { JSONWriter.firstEscaped(in: $0.baseAddress!, from: 0, count: 48, orBits: &bits) }
        #expect(bits & 0x8080_8080_8080_8080 == 0)
    }
}
