/// One data-parallel replica's part of every global batch: rank `rank` of `count` takes the
/// samples `rank·n/count ..< (rank+1)·n/count` of a batch of n (a floor split, as `fit` slices
/// whole batches), so a source that reads only that part gives each replica what slicing the
/// whole batch would.
public struct ReplicaShare: Sendable, Equatable {
    public var rank: Int
    public var count: Int

    public init(rank: Int, count: Int) {
        precondition(count > 0 && rank >= 0 && rank < count, "replica \(rank) of \(count)")
        self.rank = rank
        self.count = count
    }

    /// This replica's positions within a batch of `n` samples.
    public func range(ofBatch n: Int) -> Range<Int> { (rank * n / count)..<((rank + 1) * n / count) }
}

/// Records a data source read and decoded, for the replicas' shares to be checked (each
/// replica should read about 1/N of an epoch) and for throughput reports.
public final class RecordCounts: Sendable {
    private let counts = Locked((read: 0, decoded: 0))

    public init() {}

    /// Records whose bytes were read from disk.
    public var read: Int { counts.current.read }
    /// Records parsed and decoded into samples.
    public var decoded: Int { counts.current.decoded }

    func add(read: Int = 0, decoded: Int = 0) {
        counts.withLock {
            $0.read += read
            $0.decoded += decoded
        }
    }
}
