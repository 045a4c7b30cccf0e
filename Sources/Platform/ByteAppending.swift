/// Appending to byte arrays without going through `String`: the per-webhook writers (log
/// line, notification, HTTP answer) are made of constant text and numbers, and
/// `append(contentsOf: "…".utf8)` or `String(number).utf8` cost several times the copy.
extension Array where Element == UInt8 {
    /// Appends `count` bytes from `source` with one copy into the array's spare capacity.
    @inline(__always)
    public mutating func appendBytes(_ source: UnsafeRawPointer, count: Int) {
        guard count > 0 else { return }
        append(addingCapacity: count) { span in
            span.withUnsafeMutableBufferPointer { buffer, initialized in
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: source, byteCount: count)
                initialized = count
            }
        }
    }

    /// Appends a literal's UTF-8.
    @inline(__always)
    public mutating func appendLiteral(_ text: StaticString) {
        appendBytes(text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// Appends a non-negative integer in decimal.
    public mutating func appendDecimal(_ value: Int) {
        append(addingCapacity: 20) { span in
            span.withUnsafeMutableBufferPointer { buffer, initialized in
                initialized = writeDecimal(value, to: buffer.baseAddress!)
            }
        }
    }
}

/// Writes a non-negative integer in decimal at `to` (at most 20 bytes); returns how many.
@inline(__always)
public func writeDecimal(_ value: Int, to: UnsafeMutablePointer<UInt8>) -> Int {
    precondition(value >= 0, "writeDecimal takes a non-negative integer")
    var digits = 1
    var rest = value / 10
    while rest > 0 { digits += 1; rest /= 10 }
    rest = value
    for at in stride(from: digits - 1, through: 0, by: -1) {
        to[at] = UInt8(ascii: "0") + UInt8(rest % 10)
        rest /= 10
    }
    return digits
}
