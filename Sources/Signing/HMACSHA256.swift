import COpenSSL
import Synchronization

/// HMAC-SHA256 from the system's libcrypto (OpenSSL 3, `EVP_MAC`).
///
/// A message may be given as several parts (for example `"<timestamp>."` and the body) that
/// are fed to the MAC one after another, so a large body is never copied to be joined.
public enum HMACSHA256 {
    /// Length of an HMAC-SHA256 tag in bytes.
    public static let byteCount = 32

    /// The MAC of `parts` fed in order, as if they were one concatenated message.
    public static func mac(key: UnsafeRawBufferPointer, message parts: UnsafeRawBufferPointer...) -> [UInt8] {
        let context = Context(key: key)
        for part in parts {
            context.update(part)
        }
        return context.finalize()
    }

    /// The MAC of `parts` fed in order, as if they were one concatenated message. The keyed
    /// context is kept (`KeyedContexts`), so a source's next webhook skips the key set-up.
    public static func mac(key: [UInt8], message parts: [UInt8]...) -> [UInt8] {
        KeyedContexts.shared.withLock { $0.mac(key: key, parts: parts) }
    }

    /// The MAC of `prefix` then `body` written to `tag` (32 bytes), with a kept keyed context
    /// (`KeyedContexts`): the per-webhook check, which allocates nothing for the key used last.
    public static func mac(key: UnsafeRawBufferPointer, prefix: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer,
                           into tag: UnsafeMutableRawBufferPointer)
    {
        KeyedContexts.shared.withLock { $0.mac(key: key, parts: (prefix, body), into: tag) }
    }

    /// An HMAC-SHA256 computation in progress: create with a key, `update` with each part of
    /// the message, then `finalize` once. Non-copyable because it owns a libcrypto context.
    public struct Context: ~Copyable {
        private let handle: OpaquePointer

        public init(key: UnsafeRawBufferPointer) {
            handle = Self.makeHandle(key: key)
        }

        public init(key: [UInt8]) {
            handle = key.withUnsafeBytes { Self.makeHandle(key: $0) }
        }

        private static func makeHandle(key: UnsafeRawBufferPointer) -> OpaquePointer {
            guard let handle = EVP_MAC_CTX_dup(hmacTemplate.handle) else {
                preconditionFailure("libcrypto could not allocate an HMAC context (out of memory)")
            }
            // An empty key must still be passed as a non-NULL pointer: for EVP_MAC a NULL key
            // means "reuse the previous key", and this fresh context has none.
            let initialised = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1) { spare in
                let bytes = key.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(spare.baseAddress!)
                return EVP_MAC_init(handle, bytes, key.count, nil)
            }
            precondition(initialised == 1, "libcrypto refused to initialise HMAC-SHA256")
            return handle
        }

        public func update(_ bytes: UnsafeRawBufferPointer) {
            Self.update(handle, bytes)
        }

        public func update(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { update($0) }
        }

        /// The 32-byte tag. Consumes the context, which is freed right after.
        public consuming func finalize() -> [UInt8] {
            Self.finalize(handle)
        }

        /// Feeds `bytes` to a libcrypto HMAC context (this one's, or a kept one's).
        static func update(_ handle: OpaquePointer, _ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            let updated = EVP_MAC_update(handle, base.assumingMemoryBound(to: UInt8.self), bytes.count)
            precondition(updated == 1, "libcrypto failed to update HMAC-SHA256")
        }

        /// The 32-byte tag of a libcrypto HMAC context (this one's, or a kept one's).
        static func finalize(_ handle: OpaquePointer) -> [UInt8] {
            [UInt8](unsafeUninitializedCapacity: HMACSHA256.byteCount) { buffer, count in
                finalize(handle, into: UnsafeMutableRawBufferPointer(buffer))
                count = HMACSHA256.byteCount
            }
        }

        /// The same, written to `tag` (at least 32 bytes).
        static func finalize(_ handle: OpaquePointer, into tag: UnsafeMutableRawBufferPointer) {
            precondition(tag.count >= HMACSHA256.byteCount)
            var written = 0
            let finished = EVP_MAC_final(handle, tag.baseAddress!.assumingMemoryBound(to: UInt8.self), &written, HMACSHA256.byteCount)
            precondition(finished == 1 && written == HMACSHA256.byteCount, "libcrypto failed to finish HMAC-SHA256")
        }

        /// Hands the keyed libcrypto context to the caller, who frees it.
        consuming func release() -> OpaquePointer {
            let handle = self.handle
            discard self
            return handle
        }

        deinit {
            EVP_MAC_CTX_free(handle)
        }
    }
}

/// A keyless HMAC context with its digest already set to SHA-256. Fetching "HMAC" and
/// "SHA256" by name takes a lock and a lookup in libcrypto; doing it once here and duplicating
/// the prepared context per message keeps that cost off the per-request path.
private struct HMACTemplate: @unchecked Sendable {
    // Safe to share: after setup the template is only ever read (by EVP_MAC_CTX_dup), never
    // initialised, updated or freed.
    let handle: OpaquePointer

    init() {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else {
            preconditionFailure("libcrypto has no HMAC implementation (OpenSSL 3 default provider missing)")
        }
        defer { EVP_MAC_free(mac) }
        guard let handle = EVP_MAC_CTX_new(mac) else {
            preconditionFailure("libcrypto could not allocate an HMAC context (out of memory)")
        }
        let configured = "digest".withCString { name in
            "SHA256".withCString { value in
                var params = [
                    OSSL_PARAM_construct_utf8_string(name, UnsafeMutablePointer(mutating: value), 0),
                    OSSL_PARAM_construct_end(),
                ]
                return EVP_MAC_CTX_set_params(handle, &params)
            }
        }
        precondition(configured == 1, "libcrypto has no SHA-256 digest for HMAC")
        self.handle = handle
    }
}

// Global lets are initialised once, lazily and thread-safely.
private let hmacTemplate = HMACTemplate()

/// Comparison whose running time does not depend on where two byte strings differ, so a
/// signature check does not reveal how many leading bytes of a guess were right.
public enum ConstantTime {
    /// True when both buffers have the same length and the same bytes. Lengths are not secret
    /// (a tag's length is public), so a length mismatch returns at once.
    public static func equals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let left = a.baseAddress, let right = b.baseAddress, a.count > 0 else { return true }
        return CRYPTO_memcmp(left, right, a.count) == 0
    }

    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBytes { left in
            b.withUnsafeBytes { right in
                equals(left, right)
            }
        }
    }
}

/// HMAC contexts already keyed, one per key recently used (at most `capacity`; all are
/// dropped when a new key would exceed it). Reusing one costs an `EVP_MAC_init` without a key
/// (libcrypto restores the keyed state) instead of allocating a context and hashing the key
/// pads for every webhook. Used under the lock, so one context never serves two threads.
struct KeyedContexts: ~Copyable {
    static let capacity = 256
    static let shared = Mutex(KeyedContexts())

    private var contexts: [[UInt8]: Handle] = [:]
    /// The key used last and its context: nearly every webhook is from the source before it,
    /// and comparing the key beats hashing it for the dictionary.
    private var last: (key: [UInt8], handle: Handle)?

    /// An owned `EVP_MAC_CTX`; the pointer is only used under the `shared` lock.
    private final class Handle: @unchecked Sendable {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
        deinit { EVP_MAC_CTX_free(pointer) }
    }

    mutating func mac(key: [UInt8], parts: [[UInt8]]) -> [UInt8] {
        let handle = key.withUnsafeBytes { keyedHandle(key: $0) }
        for part in parts {
            part.withUnsafeBytes { HMACSHA256.Context.update(handle, $0) }
        }
        return HMACSHA256.Context.finalize(handle)
    }

    /// The tag of `parts` fed in order, written to `tag` (32 bytes): allocates nothing when
    /// the key is the one used last.
    mutating func mac(key: UnsafeRawBufferPointer, parts: (UnsafeRawBufferPointer, UnsafeRawBufferPointer),
                      into tag: UnsafeMutableRawBufferPointer)
    {
        let handle = keyedHandle(key: key)
        HMACSHA256.Context.update(handle, parts.0)
        HMACSHA256.Context.update(handle, parts.1)
        HMACSHA256.Context.finalize(handle, into: tag)
    }

    /// A context keyed with `key` and reset, kept for the next call with the same key.
    private mutating func keyedHandle(key: UnsafeRawBufferPointer) -> OpaquePointer {
        if let last, last.key.count == key.count,
           last.key.withUnsafeBytes({ kept in key.isEmpty || CRYPTO_memcmp(kept.baseAddress!, key.baseAddress!, key.count) == 0 })
        {
            return Self.reset(last.handle)
        }
        let owned = [UInt8](key)
        if let kept = contexts[owned] {
            last = (owned, kept)
            return Self.reset(kept)
        }
        if contexts.count >= Self.capacity { contexts.removeAll() }
        let fresh = Handle(HMACSHA256.Context(key: key).release())
        contexts[owned] = fresh
        last = (owned, fresh)
        return fresh.pointer
    }

    /// A kept context back at its keyed state (libcrypto restores it; no key given).
    private static func reset(_ kept: Handle) -> OpaquePointer {
        let reset = EVP_MAC_init(kept.pointer, nil, 0, nil)
        precondition(reset == 1, "libcrypto refused to reset HMAC-SHA256")
        return kept.pointer
    }
}
