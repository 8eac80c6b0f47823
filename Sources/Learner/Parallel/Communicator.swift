import Foundation

/// The collectives data-parallel training needs, over a fixed group of ranks: threads of one
/// process (``InProcessGroup``) or processes started by `mpirun` (``MPICommunicator``).
///
/// Every rank must issue the same collectives in the same order. None of them waits forever:
/// a collective that the other ranks have not all joined within ``timeout`` seconds throws a
/// ``CollectiveError`` naming the ranks that never arrived.
public protocol Communicator: AnyObject {
    /// This rank, 0 ..< ``size``.
    var rank: Int { get }
    /// How many ranks the group has.
    var size: Int { get }
    /// Seconds a collective waits for the other ranks before it throws.
    var timeout: Double { get set }
    /// Replaces every rank's `buffer` with the element-wise sum over ranks.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws
    /// Replaces every rank's `buffer` with rank `root`'s.
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws
    /// Returns once every rank has called it.
    func barrier() throws
    /// Starts ``allReduceSum(_:)-(UnsafeMutableBufferPointer<Float>)`` and returns at once where the
    /// engine allows (MPI); `buffer` must stay valid until the returned operation completes.
    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> PendingCollective
}

/// A collective in flight.
public protocol PendingCollective: AnyObject {
    /// Moves the operation on; true once it has completed. Throws once its timeout has passed.
    func poll() throws -> Bool
    /// Returns when the operation has completed; throws when its timeout passes first.
    func wait() throws
}

/// A collective that completed when it was started.
final class CompletedCollective: PendingCollective {
    func poll() throws -> Bool { true }
    func wait() throws {}
}

/// A collective that failed: timed out waiting for some ranks, or the ranks disagreed.
public struct CollectiveError: Error, CustomStringConvertible {
    /// The rank that reports the failure.
    public let rank: Int
    /// The collective, e.g. "all-reduce #12 of 4096 floats".
    public let operation: String
    /// Ranks that never arrived at the collective (empty when the failure is not a timeout).
    public let silentRanks: [Int]
    public let message: String

    public init(rank: Int, operation: String, silentRanks: [Int] = [], message: String) {
        self.rank = rank
        self.operation = operation
        self.silentRanks = silentRanks
        self.message = message
    }

    /// The timeout error: `silent` are the ranks whose arrival was never seen.
    static func timeout(rank: Int, operation: String, after seconds: Double, silent: [Int], size: Int) -> CollectiveError {
        let arrived = (0..<size).filter { !silent.contains($0) }
        let seconds = seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
        let who =
            silent.isEmpty
            ? "every rank arrived but the operation did not complete"
            : (silent.count == 1 ? "rank \(silent[0]) never arrived" : "ranks \(list(silent)) never arrived")
                + " (\(arrived.count == 1 ? "rank" : "ranks") \(list(arrived)) did)"
        return CollectiveError(
            rank: rank, operation: operation, silentRanks: silent,
            message: "timed out after \(seconds) s: \(who)")
    }

    static func list(_ ranks: [Int]) -> String { ranks.map(String.init).joined(separator: ", ") }

    public var description: String { "rank \(rank): \(operation) \(message)" }
}

/// The wait between polls of a collective: spin briefly (small messages finish in
/// microseconds), then yield the core to the peer ranks that may share it.
struct PollBackoff {
    private var polls = 0

    mutating func pause() {
        polls += 1
        if polls < 200 { return }
        if polls < 2000 { sched_yield() } else { usleep(100) }
    }
}
