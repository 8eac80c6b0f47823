import CLearner
import Foundation

/// GPU ranks through NCCL (`libnccl.so.2`, loaded at run time), bootstrapped by MPI: rank 0's
/// NCCL unique id reaches the other ranks through ``MPICommunicator/broadcast(_:root:)``. One
/// rank per process and device. A collective that has not finished within ``timeout`` seconds
/// aborts the NCCL communicator, then asks MPI which ranks are silent (an MPI barrier under the
/// arrival protocol names them) and throws.
public final class NCCLCommunicator {
    public let mpi: MPICommunicator
    public let device: Int
    public var timeout: Double
    private var handle: UnsafeMutableRawPointer?
    private var sequence = 0

    public var rank: Int { mpi.rank }
    public var size: Int { mpi.size }

    /// NCCL's version (e.g. 22806 for 2.28.6); throws when libnccl.so.2 or libcuda.so.1 is missing.
    public static func version() throws -> Int {
        var v: Int32 = 0
        guard tl_nccl_load(&v) == 0 else { throw MPIError(message: lastError()) }
        return Int(v)
    }

    static func lastError() -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        tl_nccl_last_error(&buffer, buffer.count)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Joins the NCCL communicator of every rank of `mpi`, on CUDA device `device`.
    public init(mpi: MPICommunicator, device: Int, timeout: Double = 300) throws {
        self.mpi = mpi
        self.device = device
        self.timeout = timeout
        _ = try Self.version()
        try CUDAContext.use(device: device)  // NCCL's stream is made in this device's primary context
        // The 128-byte id travels as 32 floats: a broadcast copies bits, it never computes with them.
        var id = [UInt8](repeating: 0, count: Int(TL_NCCL_UNIQUE_ID_BYTES))
        if mpi.rank == 0 { guard tl_nccl_unique_id(&id) == 0 else { throw MPIError(message: Self.lastError()) } }
        var words = id.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        try words.withUnsafeMutableBufferPointer { try mpi.broadcast($0, root: 0) }
        id = words.withUnsafeBytes { Array($0) }
        var comm: UnsafeMutableRawPointer?
        guard tl_nccl_init_rank(&comm, Int32(mpi.size), id, Int32(mpi.rank)) == 0 else {
            throw MPIError(message: "rank \(mpi.rank): \(Self.lastError())")
        }
        handle = comm
    }

    deinit { if let handle { _ = tl_nccl_destroy(handle) } }

    /// Sums `storage` (on this communicator's device, not shared with any other tensor) over ranks, in place.
    public func allReduceSum(_ storage: Storage) throws {
        try run("NCCL all-reduce of \(storage.count) floats", storage) { tl_nccl_all_reduce_sum($0, storage.pointer, storage.count) }
    }

    /// Replaces `storage` with rank `root`'s.
    public func broadcast(_ storage: Storage, root: Int) throws {
        try run("NCCL broadcast of \(storage.count) floats from rank \(root)", storage) {
            tl_nccl_broadcast($0, storage.pointer, storage.count, Int32(root))
        }
    }

    private func run(_ name: String, _ storage: Storage, _ start: (UnsafeMutableRawPointer) -> Int32) throws {
        precondition(storage.device == .cuda(device), "\(name): the storage is on \(storage.device), not cuda:\(device)")
        guard let handle else { throw CollectiveError(rank: rank, operation: name, message: "the NCCL communicator was aborted") }
        sequence += 1
        let operation = "\(name) #\(sequence)"
        // The engine's own stream must have produced the buffer before NCCL's stream reads it.
        CUDAContext.check(tl_cuda_synchronize(), "finishing the GPU work before \(operation)")
        guard start(handle) == 0 else { throw MPIError(message: "rank \(rank): \(Self.lastError())") }
        let deadline = Date().addingTimeInterval(timeout)
        var backoff = PollBackoff()
        while true {
            var done: Int32 = 0
            guard tl_nccl_poll(handle, &done) == 0 else { throw MPIError(message: "rank \(rank): \(operation): \(Self.lastError())") }
            if done != 0 { return }
            if Date() >= deadline { break }
            backoff.pause()
        }
        tl_nccl_abort(handle)
        self.handle = nil
        // NCCL cannot say who is missing; the MPI arrival protocol can.
        mpi.timeout = min(mpi.timeout, 10)
        do {
            try mpi.barrier()
        } catch let error as CollectiveError {
            throw CollectiveError.timeout(rank: rank, operation: operation, after: timeout, silent: error.silentRanks, size: size)
        }
        throw CollectiveError.timeout(rank: rank, operation: operation, after: timeout, silent: [], size: size)
    }
}
