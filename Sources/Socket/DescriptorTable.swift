/// Values keyed by file descriptor, held in an array indexed by the descriptor. The kernel
/// hands out the lowest free number, so the table is as long as the most descriptors open at
/// once, and a lookup (one per readiness event, two more per accepted connection) is an index
/// where a dictionary hashed the key: ~1,000 instructions per `Connection: close` request.
struct DescriptorTable<Value> {
    private(set) var slots: [Value?] = []
    /// Descriptors that hold a value.
    private(set) var count = 0

    subscript(fd: Int32) -> Value? {
        get {
            let index = Int(fd)
            return index >= 0 && index < slots.count ? slots[index] : nil
        }
        set {
            let index = Int(fd)
            precondition(index >= 0, "a descriptor is never negative")
            if index >= slots.count {
                guard newValue != nil else { return }
                slots.append(contentsOf: repeatElement(nil, count: index + 1 - slots.count))
            }
            let had = slots[index] != nil
            let has = newValue != nil
            if had != has { count += has ? 1 : -1 }
            slots[index] = newValue
        }
    }

    /// The values held now, lowest descriptor first: a copy, so the caller may add and remove
    /// entries while it goes through them.
    var values: [Value] { slots.compactMap { $0 } }

    /// The descriptors that hold a value, lowest first.
    var descriptors: [Int32] { slots.indices.compactMap { slots[$0] != nil ? Int32($0) : nil } }
}
