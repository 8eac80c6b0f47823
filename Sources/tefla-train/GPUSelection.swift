import ArgumentParser
import Foundation
import Learner

/// What `--gpu` asks for: the CPU (`-1`, the default), one GPU (`0`), a list (`0,1,2,3`) or every
/// GPU (`all`). A process trains on one device; under `mpirun` a list or `all` gives each rank
/// the GPU of its local rank on its host (the list's entry at that index, or the local rank
/// itself), so `mpirun -np 4 tefla-train --config c.yml --gpu all` runs one rank per GPU.
enum GPUSelection: Equatable, ExpressibleByArgument {
    case cpu
    case devices([Int])
    case all

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        if text == "all" {
            self = .all
            return
        }
        if text == "-1" {
            self = .cpu
            return
        }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        self = .devices(parts.map { $0! })
    }

    static var helpText: String { "GPU index (0), list (0,1,2,3) or all; -1 or absent runs on the CPU." }

    /// The device one process trains on. `localRank` is this process's rank among the job's ranks
    /// on its host under `mpirun` (nil for a process started alone); `devices` the GPUs the host has.
    func device(localRank: Int?, ranksOnHost: Int?, devices: Int) throws -> Int? {
        switch self {
        case .cpu:
            return nil
        case .devices(let list):
            if Set(list).count != list.count {
                throw ValidationError(
                    "--gpu \(list.map(String.init).joined(separator: ",")) names a GPU twice: each rank needs a GPU of its own "
                        + "(NCCL cannot run two ranks on one GPU)")
            }
            if list.count == 1 { return list[0] }
            guard let localRank else {
                throw ValidationError(
                    "--gpu \(list.map(String.init).joined(separator: ",")): a process trains on one GPU; start one per GPU with "
                        + "mpirun -np \(list.count) tefla-train ... --gpu \(list.map(String.init).joined(separator: ",")) "
                        + "(each rank takes the entry of its local rank)")
            }
            if let ranksOnHost, ranksOnHost > list.count {
                throw ValidationError(
                    "--gpu \(list.map(String.init).joined(separator: ",")) lists \(list.count) GPUs for \(ranksOnHost) ranks on this host")
            }
            guard localRank < list.count else {
                throw ValidationError("--gpu \(list.map(String.init).joined(separator: ",")) has no entry for local rank \(localRank)")
            }
            return list[localRank]
        case .all:
            guard let localRank else {
                if devices == 1 { return 0 }
                throw ValidationError(
                    devices == 0
                        ? "--gpu all: this machine has no CUDA device"
                        : "--gpu all: a process trains on one GPU; start one per GPU with mpirun -np \(devices) tefla-train ... --gpu all")
            }
            if let ranksOnHost, ranksOnHost > devices {
                throw ValidationError("--gpu all: \(ranksOnHost) ranks on this host, which has \(devices) GPU\(devices == 1 ? "" : "s")")
            }
            return localRank
        }
    }

    /// This process's rank among the ranks on its host and their number, from the launcher's
    /// environment (Open MPI, MPICH/Hydra, Slurm); nil when it was not started by one.
    static func localRank(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> (rank: Int, size: Int?)? {
        let pairs = [
            ("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"), ("MPI_LOCALRANKID", "MPI_LOCALNRANKS"),
            ("SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"),
        ]
        for (rankKey, sizeKey) in pairs {
            if let rank = environment[rankKey].flatMap({ Int($0) }) { return (rank, environment[sizeKey].flatMap { Int($0) }) }
        }
        return nil
    }
}
