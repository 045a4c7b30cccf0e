/// A value that arrives later, on the event loop thread: an HTTP answer that waits until the
/// event log holds the event it acknowledges, or until a file change made on another thread
/// is done. Whoever fulfils it from another thread does so through `EventLoop.execute`, so
/// the value and the waiter are only ever touched on the loop thread (hence `@unchecked`).
///
/// Inlinable, so the modules that use it get it specialized for their `Value`: generic code
/// across a module boundary asks the runtime for `Pending<Other>`'s type metadata on every
/// call, a few hundred instructions each, six times a webhook.
public final class Pending<Value>: @unchecked Sendable {
    /// The value while no one waits for it: empty or one element. An array, not a `Value?`:
    /// its layout does not depend on `Value`, so the (generic) deinit destroys it without
    /// asking the runtime for `Optional<Value>`'s metadata, some 700 instructions a `Pending`
    /// on the webhook path, where the waiter always comes first and the array stays empty.
    @usableFromInline var value: ContiguousArray<Value> = []
    @usableFromInline var waiter: ((Value) -> Void)?

    @inlinable public init() {}

    /// Whether `fulfil` was called.
    @inlinable public var isFulfilled: Bool { !value.isEmpty }

    /// Hands the value to the waiter, or keeps it until one asks. Call once.
    @inlinable public func fulfil(_ value: Value) {
        if let waiter {
            self.waiter = nil
            waiter(value)
        } else {
            self.value = [value]
        }
    }

    /// Runs `body` with the value: at once when it is here, else when it is fulfilled.
    @inlinable public func whenReady(_ body: @escaping (Value) -> Void) {
        if let value = value.first {
            self.value = []
            body(value)
        } else {
            waiter = body
        }
    }

    /// A pending value computed from this one when it arrives.
    @inlinable public func map<Other>(_ transform: @escaping (Value) -> Other) -> Pending<Other> {
        let mapped = Pending<Other>()
        whenReady { mapped.fulfil(transform($0)) }
        return mapped
    }
}
