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

    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { set(name, value) }
    }

    /// Adds a field, or replaces the value of one with the same name (a later header of the
    /// same name wins).
    public mutating func set(_ name: String, _ value: String) {
        if let index = fields.firstIndex(where: { $0.name == name }) {
            fields[index].value = value
            return
        }
        let at = fields.firstIndex(where: { $0.name > name }) ?? fields.count
        fields.insert(Field(name: name, value: value), at: at)
    }

    public func makeIterator() -> IndexingIterator<[Field]> {
        fields.makeIterator()
    }
}
