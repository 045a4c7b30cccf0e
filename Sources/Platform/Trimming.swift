extension StringProtocol {
    /// The text without leading and trailing white space (spaces, tabs, newlines, and the
    /// other Unicode white space): what configuration values, typed codes and header
    /// parameters are compared after.
    public func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
              let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
