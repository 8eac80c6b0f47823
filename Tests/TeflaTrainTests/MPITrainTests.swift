import Foundation
import Learner
import TestSupport
import XCTest

/// `mpirun -np N tefla-train --config ...`: each process a data-parallel rank. The run ends
/// where the single-process run ends (weights within float rounding of the summed gradients),
/// rank 0 alone prints and writes checkpoints, and `--resume` works with the same rank count.
/// Without `mpirun` these fail in CI (CI set) and are skipped elsewhere.
final class MPITrainTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = try Scratch.directory("tefla-mpi-train", for: self).path
    }

    func testRanksUnderMpirunTrainAsOneProcessAndResume() throws {
        let common = ["--config", "Configs/digits-mlp.yml", "--verbose", "2"]
        let single = try Trainer.run(
            common + [
                "--epochs", "3", "--override", "checkpoint.weights_dir=\(scratch)/one", "--override", "training.csv_log=\(scratch)/one.csv",
            ])
        XCTAssertEqual(single.status, 0, single.error)

        let first = try mpirun(
            ranks: 2,
            common + [
                "--epochs", "2", "--override", "checkpoint.weights_dir=\(scratch)/two", "--override", "training.csv_log=\(scratch)/two.csv",
            ])
        XCTAssertEqual(first.status, 0, first.output)
        // The training figures logged are the global batch's (each rank's metric counts added up),
        // as one process's: loss and accuracy of epochs 1 and 2.
        let oneLog = try csvColumns(scratch + "/one.csv"), twoLog = try csvColumns(scratch + "/two.csv")
        for column in ["loss", "accuracy", "val_accuracy"] {
            let a = try XCTUnwrap(oneLog[column]), b = try XCTUnwrap(twoLog[column])
            XCTAssertEqual(b.count, 2, column)
            for epoch in 0..<2 { XCTAssertEqual(b[epoch], a[epoch], accuracy: 1e-4, "\(column), epoch \(epoch + 1): 2 ranks against 1") }
        }
        XCTAssertTrue(first.output.contains("2 data-parallel ranks"), first.output)
        XCTAssertEqual(first.output.components(separatedBy: "Epoch ").count - 1, 2, "rank 0 alone prints: \(first.output)")
        let resumed = try mpirun(ranks: 2, common + ["--epochs", "3", "--resume", "--override", "checkpoint.weights_dir=\(scratch)/two"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("resuming at epoch 3"), resumed.output)

        let (want, _) = try SafeTensors.read(scratch + "/one/epoch-0003/model.safetensors")
        let (got, _) = try SafeTensors.read(scratch + "/two/epoch-0003/model.safetensors")
        XCTAssertEqual(Set(got.keys), Set(want.keys))
        let (start, _) = try SafeTensors.read(scratch + "/one/epoch-0001/model.safetensors")
        var moved: Float = 0
        for (name, entry) in want {
            let a = entry.tensor.scalars, b = try XCTUnwrap(got[name]).tensor.scalars
            XCTAssertTrue(b.allSatisfy(\.isFinite), "\(name): not finite")  // max() below passes over NaN
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-5, "\(name): 2 ranks × 16 against 1 × 32")
            moved = max(moved, zip(a, try XCTUnwrap(start[name]).tensor.scalars).map { abs($0 - $1) }.max() ?? 0)
        }
        XCTAssertGreaterThan(moved, 1e-3, "epochs 2 and 3 moved the weights: the comparison is not vacuous")
        XCTAssertEqual(WeightsDirectory(path: scratch + "/two").savedEpochs(), [1, 2, 3])
    }

    func testASilentRankIsNamedByTheOthersAndTheRunResumes() throws {
        let pidFile = scratch + "/stalled.pid"
        let common = [
            "--config", "Configs/digits-mlp.yml", "--verbose", "2", "--epochs", "3",
            "--override", "checkpoint.weights_dir=\(scratch)/w",
        ]
        // 45 steps an epoch: rank 1 stops (SIGSTOP) after step 50, in epoch 2.
        let started = Date()
        let hung = try mpirun(
            ranks: 2, common + ["--collective-timeout", "3"],
            environment: ["TEFLA_STALL_AT": "1:50", "TEFLA_STALL_PID_FILE": pidFile])
        let seconds = Date().timeIntervalSince(started)
        if let pid = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap({
            Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }) {
            kill(pid, SIGKILL)  // the stopped rank must not outlive the test
        } else {
            XCTFail("rank 1 never reached its stall point:\n\(hung.output)")
        }
        XCTAssertNotEqual(hung.status, 0, hung.output)
        XCTAssertLessThan(seconds, 40, "the job took \(seconds) s to end:\n\(hung.output)")
        XCTAssertTrue(hung.output.contains("rank 0: ") && hung.output.contains("rank 1 never arrived"), hung.output)
        XCTAssertEqual(WeightsDirectory(path: scratch + "/w").savedEpochs(), [1], "epoch 1's checkpoint survives")

        let resumed = try mpirun(ranks: 2, common + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("resuming at epoch 2"), resumed.output)
        XCTAssertEqual(WeightsDirectory(path: scratch + "/w").savedEpochs(), [1, 2, 3])
    }

    /// Runs the built `tefla-train` as `ranks` MPI ranks; gives up after two minutes.
    /// The image CNN with `batch_norm` layers marked `sync: true`: two ranks log the figures of
    /// one process (their batch statistics are the global batch's), where unsynchronized ranks,
    /// each normalising its own half, do not. SGD rather than the config's Adam: the convolutions'
    /// biases before batch norm have no gradient in exact arithmetic, and Adam turns the rounding
    /// noise left in their place into steps of the full learning rate, which the order of the
    /// sums decides; the running means then differ although training does not.
    func testSynchronizedBatchNormUnderMpirunTrainsAsOneProcess() throws {
        let text = try String(contentsOfFile: "Configs/digits-png-cnn.yml", encoding: .utf8)
        XCTAssertTrue(text.contains("{type: batch_norm}"))
        for (name, layer) in [("sync", "{type: batch_norm, sync: true}"), ("local", "{type: batch_norm}")] {
            try text.replacingOccurrences(of: "{type: batch_norm}", with: layer).write(
                toFile: scratch + "/\(name).yml", atomically: true, encoding: .utf8)
        }
        let sgd = [
            "--verbose", "0", "--epochs", "2", "--override", "optimizer.name=sgd", "--override", "optimizer.momentum=0.9",
            "--override", "optimizer.learning_rate=0.05", "--override", "schedule.max_lr=0.05",
        ]
        func log(_ name: String, ranks: Int) throws -> [String: [Double]] {
            let arguments =
                ["--config", scratch + "/\(name).yml"] + sgd + ["--override", "training.csv_log=\(scratch)/\(name)-\(ranks).csv"]
            if ranks == 1 {
                let run = try Trainer.run(arguments)
                XCTAssertEqual(run.status, 0, run.error)
            } else {
                let run = try mpirun(ranks: ranks, arguments)
                XCTAssertEqual(run.status, 0, run.output)
            }
            return try csvColumns(scratch + "/\(name)-\(ranks).csv")
        }
        let one = try log("sync", ranks: 1), two = try log("sync", ranks: 2)
        for column in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            let a = try XCTUnwrap(one[column]), b = try XCTUnwrap(two[column])
            XCTAssertEqual(b.count, 2, column)
            // The epoch's training figures agree to rounding; the validation after it sees the
            // weights at the end of the epoch, where the ranks' other order of sums has grown
            // through a learning rate near its peak (3.7e-4 apart on an AVX-512 machine, 7e-3
            // for unsynchronized ranks, below).
            let tolerance = column.hasPrefix("val_") ? 5e-4 : 1e-5
            XCTAssertEqual(b[0], a[0], accuracy: tolerance * max(1, abs(a[0])), "\(column), epoch 1: 2 ranks against 1")
            // The second epoch carries the first's rounding differences through a learning rate at its peak.
            XCTAssertEqual(b[1], a[1], accuracy: column.hasSuffix("accuracy") ? 6e-3 : 1e-3, "\(column), epoch 2: 2 ranks against 1")
        }
        let local = try log("local", ranks: 2)
        let apart = abs(try XCTUnwrap(local["val_loss"])[0] - (try XCTUnwrap(one["val_loss"])[0]))
        XCTAssertGreaterThan(apart, 1e-3, "unsynchronized ranks normalise their own halves and end elsewhere")
    }

    /// SIGTERM to `mpirun` (a scheduler pre-empting the job): Open MPI passes it to every rank,
    /// the ranks agree on one step to stop after (the first step boundary any of them saw the
    /// signal at), rank 0 saves it, and `--resume` under the same launch ends with the weights
    /// of the run that was never stopped, byte for byte.
    func testSIGTERMToMpirunStopsEveryRankAtOneStepAndResumesExactly() throws {
        let launcher = try MPIRun.requireLauncher()
        let common = ["--config", "Configs/digits-mlp.yml", "--verbose", "2", "--epochs", "100"]
        let whole = try mpirun(ranks: 2, common + ["--override", "checkpoint.weights_dir=\(scratch)/whole"])
        XCTAssertEqual(whole.status, 0, whole.output)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher)
        process.arguments =
            MPIRun.launchArguments(ranks: 2, executable: Trainer.executable.path) + common
            + ["--override", "checkpoint.weights_dir=\(scratch)/stopped"]
        process.environment = MPIRun.environment()
        process.currentDirectoryURL = ConfigTests.root
        let log = URL(fileURLWithPath: scratch + "/stopped.txt")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // The signal goes in as soon as rank 0 has saved its second epoch (the file system shows
        // it at once, where mpirun's forwarded output lags): early in the run however fast the
        // machine is.
        let started = Date()
        while process.isRunning && Date().timeIntervalSince(started) < 60 {
            if FileManager.default.fileExists(atPath: scratch + "/stopped/epoch-0002") { break }
            usleep(2_000)
        }
        XCTAssertTrue(process.isRunning, "the run ended before the signal")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        try handle.close()
        let output = try String(contentsOf: log, encoding: .utf8)
        XCTAssertNotEqual(process.terminationStatus, 0, output)
        let stops = output.split(separator: "\n").filter { $0.contains("stopped by SIGTERM after step") }
        XCTAssertFalse(stops.isEmpty, output)
        let steps = Set(stops.compactMap { line in line.split(separator: " ").drop { $0 != "step" }.dropFirst().first.map(String.init) })
        XCTAssertEqual(steps.count, 1, "every rank stops after the same step: \(stops)")

        let resumed = try mpirun(ranks: 2, common + ["--resume", "--override", "checkpoint.weights_dir=\(scratch)/stopped"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("resuming"), resumed.output)
        let want = try Data(contentsOf: URL(fileURLWithPath: scratch + "/whole/epoch-0100/model.safetensors"))
        let got = try Data(contentsOf: URL(fileURLWithPath: scratch + "/stopped/epoch-0100/model.safetensors"))
        XCTAssertEqual(got, want, "the resumed run ends with the uninterrupted run's weights")
    }

    private func mpirun(ranks: Int, _ arguments: [String], environment extra: [String: String] = [:]) throws -> (
        status: Int32, output: String
    ) {
        let run = try MPIRun.run(
            try MPIRun.requireLauncher(), executable: Trainer.executable.path, ranks: ranks, arguments: arguments,
            environment: extra, directory: ConfigTests.root)
        if run.timedOut { XCTFail("mpirun \(arguments.joined(separator: " ")) did not end within 120 s") }
        return (run.status, run.output)
    }

    /// A CSV log's numeric columns by header name.
    private func csvColumns(_ path: String) throws -> [String: [Double]] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.first).split(separator: ",").map(String.init)
        var columns: [String: [Double]] = [:]
        for line in lines.dropFirst() {
            for (name, field) in zip(header, line.split(separator: ",", omittingEmptySubsequences: false)) {
                if let value = Double(field) { columns[name, default: []].append(value) }
            }
        }
        return columns
    }
}
