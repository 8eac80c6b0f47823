import ArgumentParser
import Foundation
import XCTest

@testable import tefla_train

/// `--gpu`: one GPU, a list or `all`, and which GPU each `mpirun` rank takes (its local rank's),
/// decided without a GPU from the launcher's environment.
final class GPUSelectionTests: XCTestCase {
    func testParsesIndexListAllAndCPU() throws {
        XCTAssertEqual(GPUSelection(argument: "-1"), .cpu)
        XCTAssertEqual(GPUSelection(argument: "0"), .devices([0]))
        XCTAssertEqual(GPUSelection(argument: "0,1,2,3"), .devices([0, 1, 2, 3]))
        XCTAssertEqual(GPUSelection(argument: " 2, 3 "), .devices([2, 3]))
        XCTAssertEqual(GPUSelection(argument: "all"), .all)
        for bad in ["-2", "0,", "a", "", "0,-1", "1.5"] { XCTAssertNil(GPUSelection(argument: bad), bad) }
        let train = try XCTUnwrap(TeflaTrain.parseAsRoot(["--config", "x.yml", "--gpu", "0,1"]) as? Train)
        XCTAssertEqual(train.options.gpu, .devices([0, 1]))
    }

    func testEachRankTakesTheGPUOfItsLocalRank() throws {
        XCTAssertNil(try GPUSelection.cpu.device(localRank: 1, ranksOnHost: 2, devices: 2))
        XCTAssertEqual(try GPUSelection.devices([3]).device(localRank: nil, ranksOnHost: nil, devices: 8), 3)
        XCTAssertEqual(try GPUSelection.devices([3]).device(localRank: 1, ranksOnHost: 2, devices: 8), 3, "one index: every rank")
        XCTAssertEqual(try GPUSelection.devices([4, 5, 6, 7]).device(localRank: 2, ranksOnHost: 4, devices: 8), 6)
        XCTAssertEqual(try GPUSelection.all.device(localRank: 3, ranksOnHost: 4, devices: 8), 3)
        XCTAssertEqual(try GPUSelection.all.device(localRank: nil, ranksOnHost: nil, devices: 1), 0)
    }

    func testRefusalsSayWhy() {
        func message(_ body: () throws -> Int?) -> String {
            do {
                _ = try body()
                return ""
            } catch let error as ValidationError {
                return error.message
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(
            message { try GPUSelection.devices([0, 0]).device(localRank: 0, ranksOnHost: 2, devices: 1) }.contains("names a GPU twice"))
        XCTAssertTrue(
            message { try GPUSelection.devices([0, 1]).device(localRank: nil, ranksOnHost: nil, devices: 2) }.contains("mpirun -np 2"))
        XCTAssertTrue(
            message { try GPUSelection.devices([0, 1]).device(localRank: 2, ranksOnHost: 3, devices: 4) }.contains("2 GPUs for 3 ranks"))
        XCTAssertTrue(message { try GPUSelection.all.device(localRank: nil, ranksOnHost: nil, devices: 4) }.contains("mpirun -np 4"))
        XCTAssertTrue(message { try GPUSelection.all.device(localRank: nil, ranksOnHost: nil, devices: 0) }.contains("no CUDA device"))
        XCTAssertTrue(message { try GPUSelection.all.device(localRank: 1, ranksOnHost: 3, devices: 2) }.contains("3 ranks on this host"))
    }

    func testLocalRankComesFromTheLauncher() {
        XCTAssertNil(GPUSelection.localRank([:]))
        let openMPI = GPUSelection.localRank(["OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"])
        XCTAssertEqual(openMPI?.rank, 1)
        XCTAssertEqual(openMPI?.size, 4)
        XCTAssertEqual(GPUSelection.localRank(["MPI_LOCALRANKID": "2", "MPI_LOCALNRANKS": "3"])?.rank, 2)
        XCTAssertEqual(GPUSelection.localRank(["SLURM_LOCALID": "0"])?.rank, 0)
    }

    func testTwoRanksOnOneGPUAreRefusedFromTheCommandLine() throws {
        // Without mpirun a list is refused before any GPU is touched (exit 2, one line).
        let result = try Trainer.run(["--config", "Configs/digits-mlp.yml", "--gpu", "0,0"])
        XCTAssertEqual(result.status, 2, result.error)
        XCTAssertTrue(result.error.contains("names a GPU twice"), result.error)
        let list = try Trainer.run(["--config", "Configs/digits-mlp.yml", "--gpu", "0,1"])
        XCTAssertEqual(list.status, 2, list.error)
        XCTAssertTrue(list.error.contains("mpirun -np 2"), list.error)
    }
}
