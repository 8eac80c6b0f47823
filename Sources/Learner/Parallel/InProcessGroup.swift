import Foundation

/// N replicas as threads of one process, each with a ``Communicator`` of its own: data
/// parallelism on one machine without a launcher, and the way the equivalence of N × B/N and
/// 1 × B is tested. Collectives meet at phase barriers under one condition variable; the sum
/// is computed in rank order, a slice per rank, so every rank receives identical values.
// @unchecked Sendable: `phases`, `slots`, `counts` and `failure` are only read and written with
// `condition` locked. The rank buffers that `slots` point to are read and written by the other
// ranks only between two meetings, while their owners wait at the next one.
public final class InProcessGroup: @unchecked Sendable {
    public let size: Int
    /// Seconds a collective waits for the other ranks (each rank's communicator starts with it).
    public let timeout: Double

    private let condition = NSCondition()
    private var phases: [Int]
    private var slots: [UnsafeMutableRawPointer?]
    private var counts: [Int]
    private var failure: String?

    public init(size: Int, timeout: Double = 300) {
        precondition(size >= 1, "a replica group needs at least one rank, got \(size)")
        self.size = size
        self.timeout = timeout
        phases = Array(repeating: 0, count: size)
        slots = Array(repeating: nil, count: size)
        counts = Array(repeating: 0, count: size)
    }

    /// The communicator of `rank`; each rank's thread uses its own.
    public func communicator(rank: Int) -> Communicator {
        precondition((0..<size).contains(rank), "rank \(rank) is outside 0..<\(size)")
        return ThreadCommunicator(group: self, rank: rank)
    }

    /// Runs `body` for every rank on a thread of its own and waits for all of them; rethrows the
    /// first error raised. A rank that throws releases the others' collectives at once.
    public func run(_ body: @escaping @Sendable (Communicator) throws -> Void) throws {
        let done = DispatchGroup()
        let errors = LockedErrors()
        for rank in 0..<size {
            done.enter()
            let thread = Thread { [self] in
                defer { done.leave() }
                do {
                    try body(communicator(rank: rank))
                } catch {
                    errors.set(error)
                    fail("rank \(rank) stopped: \(error)")
                }
            }
            thread.stackSize = 16 << 20  // deep models recurse in their forward pass
            thread.start()
        }
        done.wait()
        if let first = errors.first { throw first }
    }

    private func fail(_ message: String) {
        condition.lock()
        if failure == nil { failure = message }
        condition.broadcast()
        condition.unlock()
    }

    /// Marks `rank` as arrived at `phase` and waits until every rank has, or the deadline passes.
    fileprivate func meet(
        rank: Int, phase: Int, operation: String, deadline: Date, timeout: Double,
        deposit: (UnsafeMutableRawPointer?, Int)? = nil
    ) throws {
        condition.lock()
        defer { condition.unlock() }
        if let (pointer, count) = deposit {
            slots[rank] = pointer
            counts[rank] = count
        }
        phases[rank] = phase
        condition.broadcast()
        while true {
            // Completion first: a rank may fail just after a collective that every rank finished.
            if phases.allSatisfy({ $0 >= phase }) { return }
            if let failure { throw CollectiveError(rank: rank, operation: operation, message: "abandoned: \(failure)") }
            if !condition.wait(until: deadline) && Date() >= deadline {
                let silent = (0..<size).filter { phases[$0] < phase }
                if silent.isEmpty { return }
                throw CollectiveError.timeout(rank: rank, operation: operation, after: timeout, silent: silent, size: size)
            }
        }
    }

    /// The buffers and counts deposited at the last meeting (read after it, before the next).
    fileprivate func deposited() -> ([UnsafeMutableRawPointer?], [Int]) {
        condition.lock()
        defer { condition.unlock() }
        return (slots, counts)
    }
}

/// One rank's view of an ``InProcessGroup``.
private final class ThreadCommunicator: Communicator {
    let group: InProcessGroup
    let rank: Int
    var size: Int { group.size }
    var timeout: Double
    private var phase = 0
    private var sequence = 0

    init(group: InProcessGroup, rank: Int) {
        self.group = group
        self.rank = rank
        timeout = group.timeout
    }

    /// Runs the phases of one collective against a single deadline.
    private func collective(_ name: String, _ body: (_ meet: ((UnsafeMutableRawPointer?, Int)?) throws -> Void) throws -> Void) throws {
        sequence += 1
        let operation = "\(name) #\(sequence)"
        let deadline = Date().addingTimeInterval(timeout)
        try body { deposit in
            phase += 1
            try group.meet(rank: rank, phase: phase, operation: operation, deadline: deadline, timeout: timeout, deposit: deposit)
        }
    }

    private func reduce<T: FloatingPoint>(_ buffer: UnsafeMutableBufferPointer<T>, _ what: String) throws {
        let raw = UnsafeMutableRawPointer(buffer.baseAddress)
        try collective("all-reduce of \(buffer.count) \(what)") { meet in
            try meet((raw, buffer.count))
            let (slots, counts) = group.deposited()
            try checkCounts(counts, buffer.count, what)
            // This rank sums its slice over the ranks, in rank order, then writes it everywhere.
            let lo = rank * buffer.count / size, hi = (rank + 1) * buffer.count / size
            var partial = [T](repeating: 0, count: hi - lo)
            for r in 0..<size {
                guard let p = slots[r]?.assumingMemoryBound(to: T.self) else { continue }
                for i in lo..<hi { partial[i - lo] += p[i] }
            }
            try meet(nil)  // every rank has read every buffer
            for r in 0..<size {
                guard let p = slots[r]?.assumingMemoryBound(to: T.self) else { continue }
                for i in lo..<hi { p[i] = partial[i - lo] }
            }
            try meet(nil)  // every slice is written
        }
    }

    private func checkCounts(_ counts: [Int], _ count: Int, _ what: String) throws {
        guard let other = counts.firstIndex(where: { $0 != count }) else { return }
        throw CollectiveError(
            rank: rank, operation: "collective #\(sequence)",
            message: "has \(count) \(what) here but \(counts[other]) on rank \(other)")
    }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { try reduce(buffer, "floats") }
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws { try reduce(buffer, "doubles") }

    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        precondition((0..<size).contains(root), "broadcast root \(root) is outside 0..<\(size)")
        try collective("broadcast of \(buffer.count) floats from rank \(root)") { meet in
            try meet((buffer.baseAddress.map(UnsafeMutableRawPointer.init), buffer.count))
            let (slots, counts) = group.deposited()
            try checkCounts(counts, buffer.count, "floats")
            if rank != root, let source = slots[root], let target = buffer.baseAddress {
                target.update(from: source.assumingMemoryBound(to: Float.self), count: buffer.count)
            }
            try meet(nil)  // the root's buffer is no longer read
        }
    }

    func barrier() throws {
        try collective("barrier") { meet in try meet(nil) }
    }

    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> PendingCollective {
        try allReduceSum(buffer)
        return CompletedCollective()
    }
}

/// The first error raised by any rank's thread.
// @unchecked Sendable: `error` is only read and written with `lock` held.
private final class LockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?

    func set(_ error: Error) {
        lock.lock()
        if self.error == nil { self.error = error }
        lock.unlock()
    }

    var first: Error? {
        lock.lock()
        defer { lock.unlock() }
        return error
    }
}
