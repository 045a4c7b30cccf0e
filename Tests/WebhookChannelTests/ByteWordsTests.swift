import Testing
@testable import HTTP
@testable import MCP
@testable import Platform

/// The word-at-a-time byte tests (`ByteWords`) must answer exactly as a byte-by-byte reading
/// would: for every byte value at every position of a word, whatever the other bytes are, and
/// at every length around a word's size (where the last word overlaps the one before it).
struct ByteWordsTests {
    static func isControlOrDelete(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }

    static func word(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    @Test func theFirstControlOrDeleteByteOfAWordIsFoundExactly() {
        var random = SplitMix64(seed: 0xB17E5)
        for position in 0..<8 {
            for value in 0...255 {
                for _ in 0..<8 {
                    // Bytes before the position are never flagged; after it, anything.
                    var bytes = (0..<8).map { _ in UInt8(0x20) + UInt8(random.below(0x5F)) }
                    for after in position..<8 { bytes[after] = UInt8(truncatingIfNeeded: random.next()) }
                    bytes[position] = UInt8(value)
                    let mask = ByteWords.controlOrDeleteMask(Self.word(bytes))
                    let expected = bytes.firstIndex(where: Self.isControlOrDelete)
                    if let expected {
                        #expect(mask != 0 && mask.trailingZeroBitCount >> 3 == expected, "\(bytes)")
                    } else {
                        #expect(mask == 0, "\(bytes)")
                    }
                }
            }
        }
    }

    @Test func aByteIsFoundAtItsFirstPlaceWhateverTheBytesAroundIt() {
        var random = SplitMix64(seed: 0xF1D)
        for target: UInt8 in [0x0D, UInt8(ascii: ":"), UInt8(ascii: ","), 0x00, 0x80, 0xFF] {
            for count in 0...20 {
                for start in 0...min(count, 9) {
                    for _ in 0..<24 {
                        // The target's neighbours (one above and below, zero, 0x80) are what a
                        // borrow between bytes would confuse with it.
                        let near: [UInt8] = [target &+ 1, target &- 1, 0, 0x80, target, UInt8(ascii: "a")]
                        let bytes = (0..<count).map { _ in near[random.below(near.count)] }
                        let expected = bytes[start...].firstIndex(of: target) ?? count
                        let found = bytes.withUnsafeBytes { ByteWords.firstIndex(of: target, in: $0, from: start, to: count) }
                        #expect(found == expected, "\(target) in \(bytes) from \(start)")
                    }
                }
            }
        }
    }

    @Test func everyByteIsLowerCasedAsASCIIAtEveryPosition() {
        for position in 0..<8 {
            for value in 0...255 {
                var bytes = [UInt8](repeating: UInt8(ascii: "Q"), count: 8)
                bytes[position] = UInt8(value)
                let folded = ByteWords.asciiLowercased(Self.word(bytes))
                let expected = Self.word(bytes.map(HTTPHeaders.asciiLowercased))
                #expect(folded == expected, "byte \(value) at \(position)")
            }
        }
    }

    @Test func namesAreEqualIgnoringASCIICaseOnlyAtEveryLength() {
        var random = SplitMix64(seed: 0xCA5E)
        // Pairs that fold alike under `| 0x20` but are not the same letter: `@`/`` ` ``,
        // `[`/`{`, `^`/`~`, `-`/CR, and non-ASCII bytes 0xC1/0xE1.
        let lookAlikes: [(UInt8, UInt8)] = [(0x40, 0x60), (0x5B, 0x7B), (0x5E, 0x7E), (0x2D, 0x0D), (0xC1, 0xE1)]
        for length in 0...40 {
            for _ in 0..<40 {
                let a = (0..<length).map { _ in UInt8(ascii: "a") + UInt8(random.below(26)) }
                var b = a.map { random.below(2) == 0 ? $0 - 0x20 : $0 }
                #expect(Self.equal(a, b), "\(a) \(b)")
                guard length > 0 else { continue }
                let at = random.below(length)
                let (x, y) = lookAlikes[random.below(lookAlikes.count)]
                var c = a
                c[at] = x
                b[at] = y
                #expect(!Self.equal(c, b), "\(c) \(b)")
                b[at] = x
                #expect(Self.equal(c, b), "\(c) \(b)")
            }
        }
        #expect(HTTPHeaders.namesEqual("Content-Length", "content-length"))
        #expect(!HTTPHeaders.namesEqual("Content-Length", "content-lengt"))
        #expect(!HTTPHeaders.namesEqual("x-signature", "x-signaturE2"))
    }

    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                ByteWords.equalIgnoringASCIICase(x.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!,
                                                 y.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, count: a.count)
            }
        }
    }

    @Test func metaValuesNeedCleaningExactlyWhenAByteIsControlDeleteOrNotASCII() {
        let specials: [[UInt8]] = [[0x00], [0x09], [0x1F], [0x7F], [0xC2, 0x85], [0xE2, 0x80, 0xAE], [0x20], [0x7E]]
        for length in 0...24 {
            for position in 0..<max(length, 1) {
                for special in specials {
                    var bytes = [UInt8](repeating: UInt8(ascii: "v"), count: length)
                    if length > 0 { bytes.replaceSubrange(position...position, with: special) }
                    let expected = bytes.contains { $0 < 0x20 || $0 >= 0x7F }
                    #expect(bytes.withUnsafeBufferPointer(ByteWords.hasControlDeleteOrNonASCII) == expected)
                    #expect(bytes.withUnsafeBufferPointer(ByteWords.isASCII) == !bytes.contains { $0 >= 0x80 })
                    #expect(ChannelEvent.metaValueNeedsCleaning(String(decoding: bytes, as: UTF8.self)) == expected)
                }
            }
        }
    }

    @Test func fieldsAreFoundByNameInAnyCaseAndInTheOrderReceived() {
        let wanted = HTTPFieldNameSet(["x-webhook-id", "content-type", "x-a"])
        let headers = HTTPHeaders([
            ("Content-Type", "application/json"), ("X-Signature", "v1=00"), ("x-webhook-ID", "d1"), ("X-A", "1"),
            ("x-webhook-ie", "no"), ("content-typ", "no"), ("CONTENT-TYPE", "text/plain"),
        ])
        var seen: [String] = []
        headers.forEachField(in: wanted) { name, value in seen.append("\(name)=\(value)") }
        #expect(seen == ["Content-Type=application/json", "x-webhook-ID=d1", "X-A=1", "CONTENT-TYPE=text/plain"])
        #expect(wanted.contains("X-WEBHOOK-ID") && !wanted.contains("x-webhook") && !wanted.contains(""))
    }

    @Test func shortCopiesCopyExactlyTheirBytesAndNothingAround() {
        for count in 0...80 {
            let source = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            var target = [UInt8](repeating: 0xEE, count: count + 16)
            source.withUnsafeBufferPointer { from in
                target.withUnsafeMutableBufferPointer { to in
                    ByteWords.copy(from: from.baseAddress ?? UnsafePointer(bitPattern: 8)!, count: count, to: to.baseAddress! + 8)
                }
            }
            #expect(Array(target[8..<(8 + count)]) == source, "count \(count)")
            #expect(target.prefix(8).allSatisfy { $0 == 0xEE } && target.suffix(8).allSatisfy { $0 == 0xEE }, "count \(count)")
        }
    }
}
