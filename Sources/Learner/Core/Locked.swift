import CLearner
import Foundation

/// A value that any thread may read and change: every access holds the box's lock.
/// For process-wide state off the hot paths (counters, the first recorded failure).
// @unchecked Sendable: `value` is only reached inside `withLock`, which holds `lock`, and the
// value itself is Sendable, so nothing that leaves the box is shared mutably.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    /// Runs `body` on the value with the lock held.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// A copy of the value.
    var current: Value { withLock { $0 } }
}

/// An `Int` that any thread may read or set without a lock: relaxed atomic loads and stores
/// (the shim's `tl_atomic_load_long`, `tl_atomic_store_long`). For process-wide settings that
/// kernels read on every call, such as ``CPUParallel/threadCount``.
// @unchecked Sendable: the one mutable word is only read and written through those atomic
// operations, and `word` itself never changes.
final class AtomicSetting: @unchecked Sendable {
    private let word: UnsafeMutablePointer<Int>

    init(_ value: Int) {
        word = .allocate(capacity: 1)
        word.initialize(to: value)
    }

    deinit { word.deallocate() }

    var value: Int {
        get { tl_atomic_load_long(word) }
        set { tl_atomic_store_long(word, newValue) }
    }
}
