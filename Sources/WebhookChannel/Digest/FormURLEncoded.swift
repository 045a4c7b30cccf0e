import Signing

/// A body of `application/x-www-form-urlencoded` fields (WHATWG URL §5): `name=value` pairs
/// joined by `&`, a space written `+`, any byte `%XX`. A GitHub hook set to that content type
/// sends its JSON this way, as the one field `payload`; Slack sends slash commands as fields
/// and interactions as a `payload` of JSON (README "Digests").
enum FormURLEncoded {
    typealias Field = (name: [UInt8], value: [UInt8])

    /// The value of the first of `fields` called `name`; nil when there is none.
    static func value(of name: String, in fields: [Field]) -> [UInt8]? {
        fields.first { $0.name.elementsEqual(name.utf8) }?.value
    }

    /// Every field, decoded, in order; nil when any name or value is not validly encoded (a
    /// `%` without two hex digits after it). An empty body has no fields.
    static func fields(in body: [UInt8]) -> [Field]? {
        var fields: [Field] = []
        var start = body.startIndex
        while start < body.endIndex {
            let end = body[start...].firstIndex(of: UInt8(ascii: "&")) ?? body.endIndex
            let equals = body[start..<end].firstIndex(of: UInt8(ascii: "=")) ?? end
            if start < end {
                guard let name = decode(body[start..<equals]), let value = decode(body[min(equals + 1, end)..<end]) else {
                    return nil
                }
                fields.append((name, value))
            }
            start = end + 1
        }
        return fields
    }

    /// `+` as a space and `%XX` as its byte; nil at a `%` not followed by two hex digits.
    static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        text.withUnsafeBufferPointer { text -> [UInt8]? in
            var out: [UInt8] = []
            out.reserveCapacity(text.count)
            var index = 0
            while index < text.count {
                switch text[index] {
                case UInt8(ascii: "+"):
                    out.append(UInt8(ascii: " "))
                case UInt8(ascii: "%"):
                    var byte: UInt8 = 0
                    guard index + 2 < text.count, withUnsafeMutableBytes(of: &byte, {
                        Hex.decode(utf8: UnsafeBufferPointer(rebasing: text[index + 1...index + 2]), into: $0)
                    }) else { return nil }
                    out.append(byte)
                    index += 2
                case let byte:
                    out.append(byte)
                }
                index += 1
            }
            return out
        }
    }
}
