import Foundation

/// What each replica thread of a test reports, by rank: set from the threads, read after every
/// thread has ended.
// @unchecked Sendable: `values` is only touched with `lock` held.
public final class PerRank<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Value] = [:]

    public init() {}

    public func set(_ rank: Int, _ value: Value) {
        lock.lock()
        values[rank] = value
        lock.unlock()
    }

    public subscript(rank: Int) -> Value? {
        lock.lock()
        defer { lock.unlock() }
        return values[rank]
    }
}
