import ArgumentParser
import Foundation
import Learner

/// A trainer process started by `mpirun -np N`: one data-parallel rank of N, its gradients
/// summed with the others' each step, through NCCL on GPUs and MPI on CPUs (rank 0's initial
/// weights broadcast first).
final class ReplicaLaunch {
    let communicator: MPICommunicator
    var rank: Int { communicator.rank }
    var size: Int { communicator.size }

    private init(_ communicator: MPICommunicator) { self.communicator = communicator }

    /// Joins the MPI job when the process was launched by `mpirun` with more than one rank and
    /// makes `learner` a replica of it; nil otherwise. (`fit` leaves the callbacks that write files
    /// to rank 0: ``Callback/runsOnEveryRank``.)
    static func join(_ learner: SupervisedLearner, timeout: Double) throws -> ReplicaLaunch? {
        guard MPICommunicator.isLaunched else { return nil }
        let communicator: MPICommunicator
        do {
            communicator = try MPICommunicator(timeout: timeout)
        } catch {
            throw fail("launched by mpirun, but MPI could not start: \(error)")
        }
        guard communicator.size > 1 else {
            try? communicator.finalize()
            return nil
        }
        learner.gradientSynchronizer = try synchronizer(communicator, device: learner.device, timeout: timeout)
        return ReplicaLaunch(communicator)
    }

    /// GPU ranks sum their gradients on the devices through NCCL (bootstrapped by MPI); CPU
    /// ranks, and GPU ranks where libnccl.so.2 is missing or `TEFLA_NCCL=0`, through MPI.
    private static func synchronizer(_ communicator: MPICommunicator, device: Device, timeout: Double) throws -> DataParallel {
        guard case .cuda(let index) = device, ProcessInfo.processInfo.environment["TEFLA_NCCL"] != "0" else {
            return DataParallel(communicator)
        }
        do {
            _ = try NCCLCommunicator.version()
        } catch {
            if communicator.rank == 0 {
                FileHandle.standardError.write(Data("tefla-train: NCCL unavailable (\(error)); gradients go through MPI\n".utf8))
            }
            return DataParallel(communicator)
        }
        do {
            return DataParallel(nccl: try NCCLCommunicator(mpi: communicator, device: index, timeout: timeout))
        } catch {
            throw fail("rank \(communicator.rank): NCCL could not start on cuda:\(index): \(error)")
        }
    }

    /// Runs `body` on rank 0, then on the others once rank 0 is done (for work that may repair
    /// the shared weights directory before anyone reads it).
    func rootFirst<T>(_ body: () throws -> T) throws -> T {
        if rank == 0 {
            let value = try body()
            try communicator.barrier()
            return value
        }
        try communicator.barrier()
        return try body()
    }

    func finish() { try? communicator.finalize() }

    /// Reports `error` (unless the trainer already did) and ends every rank of the job.
    func abort(after error: Error) -> Never {
        if !(error is ExitCode) {
            let who = error is CollectiveError ? "" : "rank \(rank): "  // a collective's error names its rank
            FileHandle.standardError.write(Data("tefla-train: error: \(who)\(error)\n".utf8))
        }
        usleep(500_000)  // peers that time out at the same moment report too before the job ends
        communicator.abort(code: 3)
    }
}
