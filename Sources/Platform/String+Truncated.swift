extension String {
    /// At most `count` characters. `prefix` walks grapheme clusters, which is slow on the
    /// per-webhook path; a string with no more UTF-8 bytes than `count` is returned as is,
    /// since it cannot have more characters than bytes.
    public func truncated(toCharacters count: Int) -> String {
        utf8.count <= count ? self : String(prefix(count))
    }
}
