import Platform

/// The headers an event keeps (`EventLog.keptHeaderNames`) as a short list in name order,
/// the order the log line writes them in. A list, not a dictionary: it holds a handful of
/// fields and is built for every webhook, where hashing each name cost more than the rest of
/// the record.
public struct KeptHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public private(set) var fields: [Field] = []

    public init() {}

    /// Room for `capacity` fields up front (they are added one by one, per webhook).
    public init(capacity: Int) {
        fields.reserveCapacity(capacity)
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { set(name, value) }
    }

    /// Adds a field, or replaces the value of one with the same name (a later header of the
    /// same name wins).
    public mutating func set(_ name: String, _ value: String) {
        set(name, value, allNamesASCII: false)
    }

    /// The same for a list whose names, this one's and those it holds, are all ASCII (a
    /// request's headers matched against the kept names, which are): ordered by their bytes
    /// without checking each pair for non-ASCII first.
    mutating func setASCIINamed(_ name: String, _ value: String) {
        set(name, value, allNamesASCII: true)
    }

    @inline(__always)
    private mutating func set(_ name: String, _ value: String, allNamesASCII: Bool) {
        // The list is in order: the first name not before `name` is it, or where it goes.
        var at = fields.count
        for index in fields.indices {
            let order = Self.order(fields[index].name, name, bothASCII: allNamesASCII)
            if order == 0 {
                fields[index].value = value
                return
            }
            if order > 0 {
                at = index
                break
            }
        }
        // Appended and moved down into place: `insert` costs more for a list this short.
        fields.append(Field(name: name, value: value))
        var index = fields.count - 1
        while index > at {
            fields.swapAt(index, index - 1)
            index -= 1
        }
    }

    /// -1, 0 or 1 as `a` sorts before, with or after `b`, exactly as `String`'s `<` and `==`
    /// order them. Header names are ASCII, where that order is the bytes' and needs none of
    /// `String`'s Unicode comparison. Any non-ASCII byte in either falls back to it: a combining
    /// mark can change how the characters before it compare (`e` + U+0301 is `é`).
    /// `releasenone` (see `ByteWords`): it reads both strings and keeps neither.
    @_effects(releasenone)
    static func order(_ a: String, _ b: String, bothASCII: Bool = false) -> Int {
        let byBytes: Int? = a.withUTF8Bytes { x in
            b.withUTF8Bytes { y in
                guard bothASCII || (ByteWords.isASCII(x) && ByteWords.isASCII(y)) else { return nil }
                for index in 0..<Swift.min(x.count, y.count) where x[index] != y[index] {
                    return x[index] < y[index] ? -1 : 1
                }
                return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
            }
        }
        if let byBytes { return byBytes }
        return a == b ? 0 : (a < b ? -1 : 1)
    }

    public func makeIterator() -> IndexingIterator<[Field]> {
        fields.makeIterator()
    }
}
