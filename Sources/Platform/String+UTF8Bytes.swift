extension String {
    /// Runs `body` with the string's UTF-8 bytes in place. Unlike `withUTF8`, which is
    /// `mutating` (and so needs a `var` copy of a `let`, retained and released on every call),
    /// this reads a native string's contiguous storage as it is; only a bridged or otherwise
    /// non-contiguous string is copied first. The per-webhook writers call it some sixty times
    /// a request.
    @inlinable @inline(__always)
    public func withUTF8Bytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return try copy.withUTF8(body)
    }
}
