import JSON

/// Text taken from a payload, made safe to put in front of a reader: one line, no control
/// characters, no bidi overrides that could make it read as something else, and short.
enum PayloadText {
    /// How much of a free-text field (a PR body, a comment) a digest keeps (README "Digests").
    static let maxCharacters = 280

    /// Line breaks and tabs become one space (a digest is one field per line, so a payload
    /// cannot forge a line); other control characters and the bidi embedding, override and
    /// isolate marks are dropped. Longer than `limit` characters: cut, with `…` appended.
    static func clean(_ text: String, limit: Int = maxCharacters) -> String {
        var scalars = String.UnicodeScalarView()
        var pendingSpace = false
        // Bounds the work on a megabyte string: `limit` characters rarely need more scalars.
        var budget = limit * 8
        for scalar in text.unicodeScalars {
            guard budget > 0 else { break }
            if isLineBreakOrTab(scalar) {
                pendingSpace = !scalars.isEmpty
                continue
            }
            if isDropped(scalar) || (scalar == " " && scalars.isEmpty) { continue }
            if pendingSpace || scalar == " " {
                pendingSpace = false
                if scalars.last != " " { scalars.append(" ") }
                if scalar == " " { continue }
            }
            scalars.append(scalar)
            budget -= 1
        }
        var cleaned = String(scalars)
        while cleaned.last == " " { cleaned.removeLast() }
        guard cleaned.count > limit || budget == 0 else { return cleaned }
        var cut = String(cleaned.prefix(limit))
        while cut.last == " " { cut.removeLast() }
        return cut + "…"
    }

    /// A scalar JSON value as text; `nil` for null, an empty string, an array or an object.
    static func scalar(_ value: JSONValue?, limit: Int = maxCharacters) -> String? {
        switch value {
        case .string(let text)?:
            let cleaned = clean(text, limit: limit)
            return cleaned.isEmpty ? nil : cleaned
        case .int(let number)?: return String(number)
        // A number too large for a double (thousands of digits) reads as `inf`: left out.
        case .double(let number)? where number.isFinite: return String(number)
        case .bool(let flag)?: return flag ? "true" : "false"
        default: return nil
        }
    }

    /// The present parts joined, or `nil` when none is.
    static func join(_ parts: [String?], separator: String = " ") -> String? {
        let present = parts.compactMap { $0 }
        return present.isEmpty ? nil : present.joined(separator: separator)
    }

    /// `24817` → `24,817`: sizes a person reads at a glance.
    static func grouped(_ number: Int) -> String {
        let digits = String(number.magnitude)
        var out = number < 0 ? "-" : ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return out
    }

    private static func isLineBreakOrTab(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029: return true
        default: return false
        }
    }

    private static func isDropped(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        // LRM, RLM, ALM; embeddings and overrides (LRE…RLO); isolates (LRI…PDI).
        case 0x200E, 0x200F, 0x061C, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
