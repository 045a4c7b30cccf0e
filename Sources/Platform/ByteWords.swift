/// Questions about many bytes answered eight at a time, with the classic word tricks ("has a
/// zero byte", "has a byte less than n"): the HTTP parser's line scan and the notification's
/// meta check ask them of every request.
///
/// The functions that take only pointers are `@_effects(releasenone)`: they release no
/// object, and saying so lets a caller in another module pass the bytes of a string it holds
/// in a struct or an array without retaining the string around the call. The attribute is a
/// promise the compiler does not check: a function given it must release nothing its caller
/// can reach (the standard library makes the same promise of its string comparisons, which
/// may make and free temporaries of their own).
public enum ByteWords {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// The high bit of each of eight bytes that is below 0x20 or is 0x7F, and possibly of
    /// bytes above such a one (a borrow runs on); the lowest flag is exact, so on a
    /// little-endian load `trailingZeroBitCount / 8` is the first such byte.
    @inline(__always)
    public static func controlOrDeleteMask(_ word: UInt64) -> UInt64 {
        let below0x20 = (word &- ones &* 0x20) & ~word & highs
        let delete = word ^ (ones &* 0x7F)
        let hasDelete = (delete &- ones) & ~delete & highs
        return below0x20 | hasDelete
    }

    /// Whether `flags` is nonzero for any of the bytes read as words: eight at a time, the last
    /// word overlapping the one before it rather than a byte-by-byte tail (most of what is
    /// asked is short); fewer than eight are padded with spaces, which no question here flags.
    @inline(__always)
    public static func anyWord(_ bytes: UnsafeBufferPointer<UInt8>, flags: (UInt64) -> UInt64) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let count = bytes.count
        guard count >= 8 else {
            var word = (ones &* 0x20) << (8 * UInt64(count))  // spaces past the bytes
            for index in 0..<count { word |= UInt64(base[index]) << (8 * UInt64(index)) }
            return flags(word) != 0
        }
        let raw = UnsafeRawPointer(base)
        var index = 0
        while true {
            if flags(raw.loadUnaligned(fromByteOffset: Swift.min(index, count - 8), as: UInt64.self)) != 0 { return true }
            if index + 8 >= count { return false }
            index += 8
        }
    }

    /// Whether any byte is a control character (below 0x20), DEL, or not ASCII.
    @inline(__always) @_effects(releasenone)
    public static func hasControlDeleteOrNonASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        anyWord(bytes) { $0 & highs | controlOrDeleteMask($0) }
    }

    /// Whether every byte is ASCII (below 0x80).
    @inline(__always) @_effects(releasenone)
    public static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        !anyWord(bytes) { $0 & highs }
    }

    /// Each byte from `A` to `Z` of eight made lower case; every other byte as it is.
    @inline(__always)
    public static func asciiLowercased(_ word: UInt64) -> UInt64 {
        // Seven bits a byte, so that adding cannot carry into the next byte: from 0x41 on,
        // `+ 0x3F` sets the high bit; from 0x5B on, `+ 0x25` does too. Bytes from 0x80 are not
        // letters (`& ~word`).
        let low = word & (ones &* 0x7F)
        let upper = (low &+ ones &* 0x3F) & ~(low &+ ones &* 0x25) & ~word & highs
        return word | upper >> 2
    }

    /// The first index from `start` up to `end` whose byte is `target`, or `end`: eight bytes
    /// at a time while a whole word fits (an equal byte is a zero byte of `word ^ pattern`,
    /// and the lowest "has a zero byte" flag is exact), then byte by byte.
    @inline(__always) @_effects(releasenone)
    public static func firstIndex(of target: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
        let pattern = ones &* UInt64(target)
        var index = start
        while index + 8 <= end {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) ^ pattern
            let zeros = (word &- ones) & ~word & highs
            if zeros != 0 { return index + zeros.trailingZeroBitCount >> 3 }
            index += 8
        }
        while index < end && bytes[index] != target { index += 1 }
        return index
    }

    /// Whether `count` bytes at `a` and at `b` are equal once ASCII letters are folded to
    /// lower case.
    @inline(__always) @_effects(releasenone)
    public static func equalIgnoringASCIICase(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        guard count >= 8 else {
            for index in 0..<count {
                let x = a.load(fromByteOffset: index, as: UInt8.self)
                let y = b.load(fromByteOffset: index, as: UInt8.self)
                if x != y, asciiLowercased(UInt64(x)) != asciiLowercased(UInt64(y)) { return false }
            }
            return true
        }
        var index = 0
        while true {
            let at = Swift.min(index, count - 8)
            let x = a.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            let y = b.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            if x != y, asciiLowercased(x) != asciiLowercased(y) { return false }
            if index + 8 >= count { return true }
            index += 8
        }
    }

    /// Copies `count` bytes; up to 64 without a `memcpy` call (whose call and dispatch cost
    /// more than a short copy): words, the last one overlapping the one before it, so that
    /// nothing is read or written past either end.
    @inline(__always) @_effects(releasenone)
    public static func copy(from source: UnsafePointer<UInt8>, count: Int, to target: UnsafeMutablePointer<UInt8>) {
        guard count >= 8 else {
            if count >= 4 {
                let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(target)
                to.storeBytes(of: from.loadUnaligned(as: UInt32.self), as: UInt32.self)
                to.storeBytes(of: from.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self), toByteOffset: count - 4,
                              as: UInt32.self)
            } else {
                for index in 0..<count { target[index] = source[index] }
            }
            return
        }
        guard count <= 64 else {
            target.update(from: source, count: count)
            return
        }
        let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(target)
        var index = 0
        while index + 8 < count {
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: index, as: UInt64.self), toByteOffset: index, as: UInt64.self)
            index += 8
        }
        to.storeBytes(of: from.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self), toByteOffset: count - 8,
                      as: UInt64.self)
    }
}
