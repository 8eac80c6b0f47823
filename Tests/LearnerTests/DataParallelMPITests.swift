import Foundation
import TestSupport
import XCTest

/// Data parallelism across processes: `mpirun -np N tefla-bench dp-check` trains N CPU ranks
/// through the MPI library loaded at run time and compares them with one replica given the
/// whole batch; a rank stopped with SIGSTOP must make the others fail within the timeout,
/// naming it. Without `mpirun` these fail in CI (CI=true) and are skipped elsewhere.
final class DataParallelMPITests: XCTestCase {
    func testTwoRanksMatchOneReplicaWithTheWholeBatch() throws {
        let run = try mpirun(ranks: 2, ["dp-check", "--steps", "20", "--batch", "16"])
        try checkEqual(run, ranks: 2)
    }

    func testFourRanksWithOverlappedBucketsMatchOneReplica() throws {
        let run = try mpirun(ranks: 4, ["dp-check", "--steps", "20", "--batch", "16", "--overlap"])
        try checkEqual(run, ranks: 4)
    }

    /// Image shards through fit: each rank reads and decodes only its share of every batch.
    func testRanksDecodeTheirSharesOfImageBatchesAndMatchOneReplica() throws {
        let images = DataTestFiles.root.appendingPathComponent("Data/digits-png/train").path
        let run = try mpirun(ranks: 2, ["dp-check", "--images", images, "--epochs", "2", "--batch", "64"])
        try checkEqual(run, ranks: 2)
        // 64 (the first batch, checked before training) + 2 epochs of 1437 records, split 718/719.
        XCTAssertTrue(
            run.output.contains("records decoded by rank: rank 0: 1468, rank 1: 1470 (read: 1468, 1470; one replica: 2938)"),
            run.output)
    }

    func testAStoppedRankIsNamedByTheOthersWithinTheTimeout() throws {
        let pids = try Scratch.directory("tefla-dp", for: self)
        let timeout = 3.0
        let run = try mpirun(
            ranks: 3,
            [
                "dp-check", "--timeout", "\(timeout)", "--stall-rank", "1", "--stall-step", "5",
                "--pid-dir", pids.path,
            ])
        // Whatever happened, the stopped rank must not outlive the test.
        let pidText = try? String(contentsOf: pids.appendingPathComponent("rank-1.pid"), encoding: .utf8)
        if let pid = pidText.flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
            kill(pid, SIGKILL)
        }
        XCTAssertNotNil(pidText, "rank 1 never reached its stall point:\n\(run.output)")
        XCTAssertNotEqual(run.status, 0, run.output)
        XCTAssertLessThan(run.seconds, timeout + 20, "the job took \(run.seconds) s to end:\n\(run.output)")
        for rank in [0, 2] {
            XCTAssertTrue(
                run.output.contains("rank \(rank): all-reduce of") && run.output.contains("timed out after 3 s: rank 1 never arrived"),
                "rank \(rank) did not name rank 1:\n\(run.output)")
        }
        let line = run.output.split(separator: "\n").first { $0.contains("rank 0: all-reduce") } ?? ""
        XCTAssertTrue(line.hasSuffix("rank 1 never arrived (ranks 0, 2 did)"), String(line))
    }

    // MARK: - Running

    private func checkEqual(
        _ run: (status: Int32, output: String, seconds: Double), ranks: Int,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        XCTAssertEqual(run.status, 0, run.output, file: file, line: line)
        XCTAssertTrue(run.output.contains("dp-check: \(ranks) ranks through libmpi"), run.output, file: file, line: line)
        let verdict = try XCTUnwrap(
            run.output.split(separator: "\n").first { $0.hasPrefix("dp-check: equal (largest difference ") },
            run.output, file: file, line: line)
        let figure = verdict.split(separator: " ")[4].trimmingCharacters(in: CharacterSet(charactersIn: ","))
        XCTAssertLessThanOrEqual(try XCTUnwrap(Double(figure)), 1e-5, file: file, line: line)
        for rank in 0..<ranks { XCTAssertTrue(run.output.contains("rank \(rank): "), run.output, file: file, line: line) }
    }

    /// Runs `tefla-bench arguments` as `ranks` MPI ranks; gives up after two minutes.
    private func mpirun(ranks: Int, _ arguments: [String]) throws -> (status: Int32, output: String, seconds: Double) {
        let run = try MPIRun.run(try MPIRun.requireLauncher(), executable: try Self.benchPath(), ranks: ranks, arguments: arguments)
        if run.timedOut { XCTFail("mpirun \(arguments.joined(separator: " ")) did not end within 120 s") }
        return (run.status, run.output, run.seconds)
    }

    /// The built `tefla-bench`, beside the test bundle in the build products folder.
    static func benchPath() throws -> String {
        let bench = Subprocess.builtProduct("tefla-bench").path
        guard FileManager.default.isExecutableFile(atPath: bench) else {
            throw Prerequisite.missing("tefla-bench is not built beside the tests (swift build builds it)")
        }
        return bench
    }
}
