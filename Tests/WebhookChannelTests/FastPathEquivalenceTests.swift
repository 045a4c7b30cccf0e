import Testing
@testable import Platform
@testable import JSON
@testable import Signing
@testable import WebhookChannel

/// The per-webhook fast paths (validating a body without a tree, escaping and UTF-8 checks
/// eight bytes at a time) must give exactly the answers of the plain code they replace.
/// Seeded and deterministic; a failure names its seed.
struct FastPathEquivalenceTests {
    /// Bytes that exercise JSON's special cases, so random mixes hit them often.
    static let alphabet: [[UInt8]] = [
        "{", "}", "[", "]", ",", ":", "\"", "\\", " ", "\n", "\t", "0", "1", "-", ".", "e", "+",
        "true", "false", "null", "a", "type", "\"type\":", "\\u00e9", "\\ud83d", "\\ude00", "\\n", "\\x",
    ].map { Array($0.utf8) } + [[0x01], [0x1F], [0x7F], [0xC3, 0xA9], [0xC3], [0xA9], [0xF0, 0x9F, 0x98, 0x80], [0xFF]]

    static let validSamples = [
        #"{"type":"push","id":"evt_1","nested":{"type":"inner","list":[1,2.5e-3,true,null,"x"]},"event":"e"}"#,
        #"{"type":"a","type":"b","id":5,"challenge":"c\u00e9\n\"q\""}"#,
        #"[{"type":"not top level"}]"#, #""just a string""#, "  -0.5e+10  ", #"{}"#, #"{"type":{"deep":"x"}}"#,
        #"{"long":"\#(String(repeating: "abcdefgh", count: 40))é\#(String(repeating: "z", count: 13))"}"#,
    ]

    /// A valid sample with random edits, or a random string over `alphabet`.
    static func input(seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        if random.below(3) == 0 {
            var bytes: [UInt8] = []
            for _ in 0..<random.below(40) { bytes += alphabet[random.below(alphabet.count)] }
            return bytes
        }
        var bytes = Array(validSamples[random.below(validSamples.count)].utf8)
        for _ in 0..<random.below(4) {
            let at = random.below(bytes.count + 1)
            switch random.below(3) {
            case 0 where at < bytes.count: bytes.remove(at: at)
            case 1: bytes.insert(contentsOf: alphabet[random.below(alphabet.count)], at: at)
            default: if at < bytes.count { bytes[at] = UInt8(truncatingIfNeeded: random.next()) }
            }
        }
        return bytes
    }

    @Test func validateAcceptsExactlyWhatParseAcceptsAndFindsTheSameTopLevelStrings() {
        let names = ["type", "event", "id", "challenge"]
        var accepted = 0, withStrings = 0
        for iteration in 0..<20_000 {
            let seed = 0xBEEF &+ UInt64(iteration) &* 0x9E37_79B9
            let bytes = Self.input(seed: seed)
            let parsed = try? JSONParser.parse(bytes)
            let validated = try? bytes.withUnsafeBufferPointer { try JSONParser.validate($0, collectingStrings: names) }
            guard (parsed == nil) == (validated == nil) else {
                Issue.record("seed \(seed): parse \(parsed == nil ? "refused" : "accepted"), validate did not: \(bytes)")
                return
            }
            guard let parsed, let validated else { continue }
            accepted += 1
            if !validated.isEmpty { withStrings += 1 }
            var expected = JSONParser.NamedStrings()
            for name in names { if let text = parsed[name]?.stringValue { expected[name] = text } }
            #expect(validated == expected, "seed \(seed)")
        }
        // The inputs must exercise both answers, or the comparison above proves little.
        #expect(accepted > 2_000 && accepted < 18_000, "accepted \(accepted) of 20000")
        #expect(withStrings > 1_000, "only \(withStrings) accepted inputs had top-level strings")
    }

    /// A string's run is checked as UTF-8 only when a word the scan read had a byte from
    /// 0x80: a bad sequence anywhere in a word, before or after an escape, must still be
    /// refused, and a good one accepted, exactly as the tree parser does.
    @Test func validateChecksUTF8WhereverInAWordABadSequenceIs() {
        let sequences: [[UInt8]] = [[0xFF], [0xC3], [0xC3, 0xA9], [0xED, 0xA0, 0x80], [0xE2, 0x82, 0xAC], [0x80], [0xF0, 0x9F, 0x98, 0x80]]
        for length in 0...24 {
            for position in 0...length {
                for sequence in sequences {
                    for escape in [[], Array(#"\n"#.utf8)] as [[UInt8]] {
                        var text = [UInt8](repeating: UInt8(ascii: "s"), count: length)
                        text.insert(contentsOf: sequence, at: position)
                        let bytes = Array(#"{"k":""#.utf8) + escape + text + escape + Array(#""}"#.utf8)
                        let parsed = try? JSONParser.parse(bytes)
                        let validated = try? bytes.withUnsafeBufferPointer { try JSONParser.validate($0, collectingStrings: []) }
                        #expect((parsed == nil) == (validated == nil), "\(sequence) at \(position) of \(length)")
                        #expect((parsed == nil) == (String(validating: sequence, as: UTF8.self) == nil))
                    }
                }
            }
        }
    }

    @Test func validateRefusesTrailingDataAndDeepNesting() {
        for text in [#"{"type":"a"} x"#, #"{"type":"a"}{"#, String(repeating: "[", count: 300) + String(repeating: "]", count: 300)] {
            let bytes = Array(text.utf8)
            #expect((try? bytes.withUnsafeBufferPointer { try JSONParser.validate($0, collectingStrings: ["type"]) }) == nil, "\(text.prefix(20))")
        }
    }

    /// The escaper as it was before the eight-byte scan: one byte at a time.
    static func referenceEscape(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x22]
        for byte in bytes {
            switch byte {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += Array(#"\n"#.utf8)
            case 0x0D: out += Array(#"\r"#.utf8)
            case 0x09: out += Array(#"\t"#.utf8)
            case 0x08: out += Array(#"\b"#.utf8)
            case 0x0C: out += Array(#"\f"#.utf8)
            case ..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array(#"\u00"#.utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        return out + [0x22]
    }

    @Test func writerEscapesEverySpecialByteAtEveryPositionOfAWord() {
        let specials: [UInt8] = Array(0x00...0x1F) + [0x22, 0x5C, 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xA2, 0xDC]
        for length in 0...19 {
            for position in 0..<max(length, 1) {
                for special in specials {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    if length > 0 { bytes[position] = special }
                    var out: [UInt8] = []
                    bytes.withUnsafeBufferPointer { JSONWriter.appendString(utf8: $0, into: &out) }
                    #expect(out == Self.referenceEscape(bytes), "length \(length), byte \(special) at \(position)")
                }
            }
        }
    }

    /// Hex is decoded eight digits at a time: any byte value at any position of the word must
    /// be refused or decoded exactly as one digit at a time does, at lengths with and without
    /// a tail.
    @Test func hexIsDecodedByWordsExactlyAsDigitByDigit() {
        func reference(_ text: [UInt8]) -> [UInt8]? {
            guard text.count % 2 == 0 else { return nil }
            var out: [UInt8] = []
            for index in stride(from: 0, to: text.count, by: 2) {
                guard let high = Int(String(decoding: [text[index]], as: UTF8.self), radix: 16),
                      let low = Int(String(decoding: [text[index + 1]], as: UTF8.self), radix: 16),
                      text[index] != UInt8(ascii: "+"), text[index] != UInt8(ascii: "-"),
                      text[index + 1] != UInt8(ascii: "+"), text[index + 1] != UInt8(ascii: "-") else { return nil }
                out.append(UInt8(high << 4 | low))
            }
            return out
        }
        var random = SplitMix64(seed: 0x4E7)
        let digits = Array("0123456789abcdefABCDEF".utf8)
        for length in [2, 8, 16, 18, 64, 66] {
            for position in 0..<length {
                for value in 0...255 {
                    var text = (0..<length).map { _ in digits[random.below(digits.count)] }
                    text[position] = UInt8(value)
                    let decoded = Hex.decode(String(decoding: text, as: UTF8.self))
                    #expect(decoded == reference(text), "byte \(value) at \(position) of \(length)")
                }
            }
        }
    }

    /// Lines written into room reserved once must hold exactly what appending piece by piece
    /// writes, with strings at the worst case of their room (every byte a six-byte escape),
    /// optional strings, numbers and literals, after whatever the array held.
    @Test func reservedWritesAreExactlyTheAppendedOnes() {
        var random = SplitMix64(seed: 0x5E5E)
        let pieces: [[UInt8]] = [Array("a".utf8), [0x01], [0x1F], [0x22], [0x5C], [0x0A], Array("é".utf8), Array("😀".utf8)]
        for _ in 0..<2_000 {
            let texts: [String?] = (0..<random.below(5)).map { _ in
                if random.below(6) == 0 { return nil }
                var bytes: [UInt8] = []
                for _ in 0..<random.below(40) { bytes += pieces[random.below(random.below(2) == 0 ? 1 : pieces.count)] }
                return String(decoding: bytes, as: UTF8.self)
            }
            let number = Int(truncatingIfNeeded: random.next() >> 1) >> random.below(63)
            var appended: [UInt8] = Array("prefix".utf8), reserved = appended
            appended.appendLiteral(#"{"n":"#)
            appended.appendDecimal(number)
            for text in texts {
                appended.append(UInt8(ascii: ","))
                if let text { JSONWriter.appendString(text, into: &appended) } else { appended.appendLiteral("null") }
            }
            appended.appendLiteral("}")
            let bound = texts.reduce(7 + 20 + 1) { $0 + ReservedJSONWriter.room(for: $1) + 1 }
            reserved.appendJSON(bound: bound) { line in
                line.literal(#"{"n":"#)
                line.decimal(number)
                for text in texts {
                    line.byte(UInt8(ascii: ","))
                    line.string(text)
                }
                line.literal("}")
            }
            #expect(reserved == appended, "\(texts)")
        }
    }

    /// A `String` of up to 64 bytes with nothing to escape is checked and copied a word at a
    /// time, the last word overlapping; anything else goes the long way. Every length around
    /// that bound, with a special byte (or a two-byte character) at every position, after
    /// whatever `out` held, must come out as the byte-by-byte escape.
    @Test func shortStringsAreWrittenExactlyAtEveryLengthAndPosition() {
        let specials: [[UInt8]] = [[0x00], [0x0A], [0x1F], [0x22], [0x5C], [0x7F], [0x20], [0xC3, 0xA9]]
        for length in 0...70 {
            for position in 0..<max(length, 1) {
                for special in specials {
                    var bytes = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
                    if length > 0 { bytes.replaceSubrange(position...position, with: special) }
                    let text = String(decoding: bytes, as: UTF8.self)
                    var out: [UInt8] = Array("x,".utf8)
                    JSONWriter.appendString(text, into: &out)
                    #expect(out == Array("x,".utf8) + Self.referenceEscape(bytes), "length \(length), \(special) at \(position)")
                }
            }
        }
    }

    /// Long strings cross the writer's 4 KiB blocks, and strings with many escapes fill the
    /// room it reserves (the input and an eighth) again and again: every mix of long runs,
    /// short runs and six-byte escapes must still come out exact, after whatever `out` held.
    @Test func writerIsExactForLongStringsWithAnyDensityOfEscapes() {
        let specials: [UInt8] = [0x00, 0x01, 0x0A, 0x1F, 0x22, 0x5C, 0x09]
        var random = SplitMix64(seed: 0xE5CA_9E)
        for length in [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 255, 256, 511, 512, 1_000, 4_095, 4_096, 4_097, 8_192, 20_000] {
            for percent in [0, 1, 5, 12, 13, 30, 60, 100] {
                var bytes = [UInt8](repeating: 0, count: length)
                for index in bytes.indices {
                    bytes[index] = random.below(100) < percent
                        ? specials[random.below(specials.count)] : UInt8(ascii: "a") + UInt8(random.below(26))
                }
                var out: [UInt8] = Array("prefix".utf8)
                bytes.withUnsafeBufferPointer { JSONWriter.appendString(utf8: $0, into: &out) }
                #expect(out == Array("prefix".utf8) + Self.referenceEscape(bytes), "length \(length), \(percent)% escapes")
            }
        }
    }

    /// Reading a string jumps to the first quote, backslash or control character of a word:
    /// wherever in the word it is, and whatever follows it in the same word, the string read
    /// (or refused) must be the one a byte-by-byte reading gives.
    @Test func readerFindsTheFirstSpecialByteAtEveryPositionOfAWord() throws {
        let followers: [[UInt8]] = [[], Array("b".utf8), [0x01], Array(#"\""#.utf8), Array("\\n".utf8), [0x22], [0xC3, 0xA9]]
        for length in 0...17 {
            for position in 0...length {
                for follower in followers {
                    var content = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    content.insert(contentsOf: Array(#"\""#.utf8) + follower, at: position)
                    let text: [UInt8] = [0x22] + content + [0x22]
                    let parsed = try? JSONParser.parse(text)
                    let validated = try? text.withUnsafeBufferPointer { try JSONParser.validate($0, collectingStrings: []) }
                    // The reference: Foundation-free, by hand. A raw quote in `follower` ends the
                    // string early (trailing data), a raw 0x01 is refused; otherwise it decodes.
                    let refused = follower == [0x01] || follower == [0x22]
                    #expect((parsed == nil) == refused, "length \(length), at \(position), then \(follower)")
                    #expect((validated == nil) == refused, "length \(length), at \(position), then \(follower)")
                    if !refused {
                        var expected = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                        let decodedFollower: [UInt8] = follower == Array(#"\""#.utf8) ? [0x22]
                            : follower == Array("\\n".utf8) ? [0x0A] : follower
                        expected.insert(contentsOf: [0x22] + decodedFollower, at: position)
                        #expect(parsed?.stringValue.map { Array($0.utf8) } == expected, "length \(length), at \(position)")
                    }
                }
            }
        }
    }

    @Test func utf8CheckAgreesWithTheStandardLibrary() {
        var valid = 0
        for iteration in 0..<20_000 {
            let seed = 0xF00D &+ UInt64(iteration) &* 0x9E37_79B9
            var random = SplitMix64(seed: seed)
            var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: random.below(40))
            for _ in 0..<random.below(3) where !bytes.isEmpty {
                let pieces = Self.alphabet.filter { $0.count > 1 || $0[0] >= 0x80 }
                let piece = pieces[random.below(pieces.count)]
                let at = random.below(bytes.count)
                bytes.replaceSubrange(at..<min(at + piece.count, bytes.count), with: piece)
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            if expected { valid += 1 }
            #expect(bytes.withUnsafeBufferPointer { UTF8Validation.isValid($0) } == expected, "seed \(seed): \(bytes)")
        }
        #expect(valid > 2_000 && valid < 18_000, "valid \(valid) of 20000")
    }

    @Test(arguments: ["localhost", "LocalHost:8788", "127.0.0.1", "127.0.0.1:1", "[::1]", "[::1]:8788", "localhost:"])
    func loopbackHostNamesAreAccepted(host: String) {
        #expect(WebhookRoutes.isLoopbackHost(host))
    }

    @Test(arguments: ["", "evil.example", "localhost.evil", "localhost:80x", "localhost:８０", "[::1]x", "[::1", "127.0.0.1:80:80",
                      "localhost@evil", "127.0.0.2", "[::2]:1", "ｌocalhost", "localhos"])
    func otherHostNamesAreRefused(host: String) {
        #expect(!WebhookRoutes.isLoopbackHost(host))
    }

    @Test func theBoundLoopbackAddressIsAcceptedToo() {
        let bound = Array("127.0.0.2".utf8)
        #expect(WebhookRoutes.isLoopbackHost("127.0.0.2:8788", alsoAllowing: bound))
        #expect(WebhookRoutes.isLoopbackHost("127.0.0.2", alsoAllowing: bound))
        #expect(WebhookRoutes.isLoopbackHost("localhost:8788", alsoAllowing: bound))
        #expect(!WebhookRoutes.isLoopbackHost("127.0.0.3:8788", alsoAllowing: bound))
        #expect(!WebhookRoutes.isLoopbackHost("127.0.0.2.evil:8788", alsoAllowing: bound))
    }
}
