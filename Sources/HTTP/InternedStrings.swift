import Platform

/// Strings that requests carry again and again (the usual field names, `application/json`),
/// made once. The request parser takes one of these for bytes equal to it, byte for byte,
/// instead of making a new `String` from them: some 250 instructions a string (validation,
/// then the copy), plus an allocation for one longer than 15 bytes, seven or more a webhook.
/// A miss costs a length test, or a key compare or two among the strings of that length.
struct InternedStrings: Sendable {
    private let strings: [String]
    /// Every string's bytes, one after another, at `offsets`.
    private let bytes: [UInt8]
    private let offsets: [Int]
    /// Length, first and last byte (as they are, no case folding) of each string.
    private let keys: [UInt32]
    /// The strings sorted by length; those `n` bytes long are at `starts[n]..<starts[n + 1]`.
    private let starts: [Int]

    static let maxLength = 63

    init(_ list: [String]) {
        let sorted = list.filter { !$0.isEmpty && $0.utf8.count <= Self.maxLength }.sorted { $0.utf8.count < $1.utf8.count }
        strings = sorted
        var bytes: [UInt8] = [], offsets: [Int] = [], keys: [UInt32] = []
        for string in sorted {
            let utf8 = Array(string.utf8)
            offsets.append(bytes.count)
            bytes += utf8
            keys.append(Self.key(count: utf8.count, first: utf8[0], last: utf8[utf8.count - 1]))
        }
        self.bytes = bytes
        self.offsets = offsets
        self.keys = keys
        starts = (0...Self.maxLength + 1).map { length in sorted.firstIndex { $0.utf8.count >= length } ?? sorted.count }
    }

    @inline(__always)
    private static func key(count: Int, first: UInt8, last: UInt8) -> UInt32 {
        UInt32(truncatingIfNeeded: count) << 16 | UInt32(first) << 8 | UInt32(last)
    }

    /// The interned string equal to `candidate`, or nil.
    @inline(__always)
    func string(equalTo candidate: UnsafeRawBufferPointer) -> String? {
        let count = candidate.count
        guard count > 0, count <= Self.maxLength, let base = candidate.baseAddress else { return nil }
        let range = starts[count]..<starts[count + 1]
        guard !range.isEmpty else { return nil }
        let key = Self.key(count: count, first: candidate[0], last: candidate[count - 1])
        for index in range where keys[index] == key {
            let equal = bytes.withUnsafeBytes { memcmp($0.baseAddress! + offsets[index], base, count) == 0 }
            if equal { return strings[index] }
        }
        return nil
    }
}
