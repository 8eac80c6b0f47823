import CLearner
import Foundation

/// The ranks of an `mpirun` job (MPI_COMM_WORLD), through the MPI library loaded at run time
/// (Open MPI's `libmpi.so.40` or MPICH's `libmpi.so.12`; `TEFLA_MPI_LIBRARY` overrides).
///
/// Every collective is nonblocking and polled against its deadline. To name a rank that never
/// comes, each collective is preceded by a small "arrived at collective #S" message from every
/// rank to every other; on a timeout the ranks whose message for #S is missing are the silent ones.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public var timeout: Double
    private var sequence: Int64 = 0
    private static let arrivalTag: Int32 = 7301

    /// Whether this process was started by an MPI launcher (it is then one rank of a job).
    public static var isLaunched: Bool { tl_mpi_launched() != 0 }

    /// Loads MPI, initialises it (once per process) and returns this process's rank of MPI_COMM_WORLD.
    public init(timeout: Double = 300) throws {
        var r: Int32 = 0, n: Int32 = 0
        guard tl_mpi_init(&r, &n) == 0 else { throw MPIError(message: MPICommunicator.lastError()) }
        rank = Int(r)
        size = Int(n)
        self.timeout = timeout
    }

    /// The library that was loaded (a soname or path).
    public static var library: String { String(cString: tl_mpi_library()) }

    static func lastError() -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        tl_mpi_last_error(&buffer, buffer.count)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Ends MPI in this process (after the last collective).
    public func finalize() throws {
        guard tl_mpi_finalize() == 0 else { throw MPIError(message: MPICommunicator.lastError()) }
    }

    /// Ends every rank of the job with exit status `code` (after a collective failed: the peers
    /// may be stopped or blocked, so an orderly finalize could wait forever).
    public func abort(code: Int32) -> Never {
        tl_mpi_abort(code)
        exit(code)
    }

    /// Starts one collective: the arrival messages first, then `start`, which posts the operation.
    private func begin(_ name: String, _ start: (inout Int) -> Int32) throws -> MPIPending {
        sequence += 1
        let pending = MPIPending(communicator: self, operation: "\(name) #\(sequence)", sequence: sequence)
        for peer in 0..<size where peer != rank {
            var send = 0, receive = 0
            try check(tl_mpi_isend(pending.sent, 8, Int32(TL_MPI_BYTE.rawValue), Int32(peer), Self.arrivalTag, &send))
            try check(tl_mpi_irecv(pending.arrivals + peer, 8, Int32(TL_MPI_BYTE.rawValue), Int32(peer), Self.arrivalTag, &receive))
            pending.sends.append(send)
            pending.receives[peer] = receive
        }
        var request = 0
        try check(start(&request))
        pending.request = request
        return pending
    }

    private func check(_ status: Int32) throws {
        guard status == 0 else { throw MPIError(message: "rank \(rank): \(MPICommunicator.lastError())") }
    }

    private func count(_ n: Int) -> Int32 {
        precondition(n <= Int(Int32.max), "an MPI message of \(n) elements is over MPI's int count; split it")
        return Int32(n)
    }

    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> PendingCollective {
        let n = count(buffer.count)
        return try begin("all-reduce of \(buffer.count) floats") {
            tl_mpi_iallreduce_sum(buffer.baseAddress, n, Int32(TL_MPI_FLOAT.rawValue), &$0)
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try startAllReduceSum(buffer).wait()
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
        let n = count(buffer.count)
        try begin("all-reduce of \(buffer.count) doubles") {
            tl_mpi_iallreduce_sum(buffer.baseAddress, n, Int32(TL_MPI_DOUBLE.rawValue), &$0)
        }.wait()
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        precondition((0..<size).contains(root), "broadcast root \(root) is outside 0..<\(size)")
        let n = count(buffer.count)
        try begin("broadcast of \(buffer.count) floats from rank \(root)") {
            tl_mpi_ibcast(buffer.baseAddress, n, Int32(TL_MPI_FLOAT.rawValue), Int32(root), &$0)
        }.wait()
    }

    public func barrier() throws {
        try begin("barrier") { tl_mpi_ibarrier(&$0) }.wait()
    }
}

/// A failure of the MPI library itself (not found, not initialised, a call returned an error).
public struct MPIError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// One MPI collective in flight with its arrival messages.
private final class MPIPending: PendingCollective {
    let communicator: MPICommunicator
    let operation: String
    let sequence: Int64
    let deadline: Date
    /// This rank's sequence number, sent to every peer; the peers' numbers land in `arrivals`.
    let sent: UnsafeMutablePointer<Int64>
    let arrivals: UnsafeMutablePointer<Int64>
    var sends: [Int] = []
    var receives: [Int: Int] = [:]
    var request = 0
    private var operationDone = false
    private var completed = false

    init(communicator: MPICommunicator, operation: String, sequence: Int64) {
        self.communicator = communicator
        self.operation = operation
        self.sequence = sequence
        deadline = Date().addingTimeInterval(communicator.timeout)
        sent = .allocate(capacity: 1)
        sent.pointee = sequence
        arrivals = .allocate(capacity: communicator.size)
        arrivals.initialize(repeating: -1, count: communicator.size)
    }

    deinit {
        // After a timeout MPI may still write into these; the process is then about to end.
        guard completed else { return }
        sent.deallocate()
        arrivals.deallocate()
    }

    private func test(_ request: inout Int) throws -> Bool {
        var done: Int32 = 0
        guard tl_mpi_test(&request, &done) == 0 else {
            throw MPIError(message: "rank \(communicator.rank): \(operation): \(MPICommunicator.lastError())")
        }
        return done != 0
    }

    func poll() throws -> Bool {
        if completed { return true }
        if !operationDone { operationDone = try test(&request) }
        var i = 0
        while i < sends.count {
            if try test(&sends[i]) { sends.remove(at: i) } else { i += 1 }
        }
        for (peer, var r) in receives {
            if try test(&r) {
                receives[peer] = nil
                if arrivals[peer] != sequence {
                    throw CollectiveError(
                        rank: communicator.rank, operation: operation,
                        message: "rank \(peer) arrived at collective #\(arrivals[peer]) instead: the ranks issued different collectives")
                }
            } else {
                receives[peer] = r
            }
        }
        if operationDone && sends.isEmpty && receives.isEmpty {
            completed = true
            return true
        }
        if Date() >= deadline {
            let silent = receives.keys.sorted()
            throw CollectiveError.timeout(
                rank: communicator.rank, operation: operation, after: communicator.timeout,
                silent: silent, size: communicator.size)
        }
        return false
    }

    func wait() throws {
        var backoff = PollBackoff()
        while try !poll() { backoff.pause() }
    }
}
