import Foundation
import TestSupport
import XCTest

/// `kill -9` at every named point of a checkpoint write, and at 20 pseudo-random passages of
/// those points: every resume succeeds, no checkpoint is unreadable, and the last epoch's
/// weights equal those of an uninterrupted run, byte for byte.
final class CrashResumeTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = try Scratch.directory("tefla-crash", for: self).path
    }

    func config(weights: String) -> String {
        DigitsRunConfig.text(
            layers: ["type: dense, units: 32, activation: relu", "type: dropout, rate: 0.2", "type: dense, units: 10"],
            batchSize: 64, training: "epochs: 5, seed: 3, ema_decay: 0.9", weights: weights,
            extra: "schedule: {name: one_cycle, max_lr: 0.01}")
    }

    /// `tefla-train arguments`, killed at `crashAt` (TEFLA_CRASH_AT); output and errors interleaved.
    func run(_ arguments: [String], crashAt: String? = nil) throws -> ProcessResult {
        var environment = ProcessInfo.processInfo.environment
        environment["TEFLA_CRASH_AT"] = crashAt
        return try Trainer.run(arguments, environment: environment, mergingErrors: true)
    }

    func finalWeights(_ dir: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: dir + "/epoch-0005/model.safetensors"))
    }

    func testKilledAtAnyPointOfACheckpointWriteResumesToTheSameWeights() throws {
        let reference = scratch + "/reference"
        let referenceConfig = scratch + "/reference.yml"
        try config(weights: reference).write(toFile: referenceConfig, atomically: true, encoding: .utf8)
        let clean = try run(["--config", referenceConfig, "--verbose", "0"])
        XCTAssertEqual(clean.status, 0, clean.output)
        let expected = try finalWeights(reference)

        // Each epoch's save passes every point at least once (atomic writes: model, optimizer,
        // state, ema, latest), so passage counts reach into later epochs.
        var cases = [
            "after-temp-write#1", "after-fsync#2", "after-rename#3", "checkpoint-folder-written#1", "before-latest#2",
            "after-rename#5", "after-fsync#9",
        ]
        var lcg: UInt64 = 12345
        let points = ["after-temp-write", "after-fsync", "after-rename", "checkpoint-folder-written", "before-latest"]
        for _ in 0..<20 {
            lcg = lcg &* 6364136223846793005 &+ 1442695040888963407
            let point = points[Int(lcg >> 33) % points.count]
            let passage = 1 + Int((lcg >> 17) % (point.hasPrefix("after") ? 20 : 4))
            cases.append("\(point)#\(passage)")
        }
        for (i, crash) in cases.enumerated() {
            let dir = scratch + "/\(i)-" + crash.replacingOccurrences(of: "#", with: "-")
            let file = dir + ".yml"
            try config(weights: dir).write(toFile: file, atomically: true, encoding: .utf8)
            let killed = try run(["--config", file, "--verbose", "0"], crashAt: crash)
            XCTAssertTrue(killed.signaled && killed.status == SIGKILL, "\(crash): expected SIGKILL, got \(killed.status): \(killed.output)")
            let resumed = try run(["--config", file, "--verbose", "0", "--resume"])
            XCTAssertEqual(resumed.status, 0, "\(crash): \(resumed.output)")
            XCTAssertEqual(try finalWeights(dir), expected, "\(crash): resumed weights differ from the uninterrupted run")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
            XCTAssertEqual(leftovers, [], "\(crash): temporary files left behind")
        }
    }

    func testAFreshRunRefusesToOverwriteAnotherRunsCheckpoints() throws {
        let file = scratch + "/twice.yml"
        try config(weights: scratch + "/twice").write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try run(["--config", file, "--verbose", "0", "--epochs", "2"]).status, 0)
        let again = try run(["--config", file, "--verbose", "0"])
        XCTAssertEqual(again.status, 2, again.output)
        XCTAssertTrue(again.output.contains("already holds checkpoints (epochs 1, 2)"), again.output)
        let resumed = try run(["--config", file, "--verbose", "0", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertEqual(WeightsDirectoryEpochs(scratch + "/twice"), ["epoch-0004", "epoch-0005"])
    }

    func WeightsDirectoryEpochs(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("epoch-") }.sorted()
    }

    func testAFailedWriteKeepsThePreviousCheckpoint() throws {
        let file = scratch + "/full.yml"
        let dir = scratch + "/full"
        try config(weights: dir).write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try run(["--config", file, "--verbose", "0", "--epochs", "2"]).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/epoch-0002/model.safetensors"))
        // A 16 KiB file-size limit (SIGXFSZ ignored, so write returns EFBIG): the optimizer file
        // of epoch 3 cannot be written, as on a full disk.
        let limited = try Subprocess.run(
            URL(fileURLWithPath: "/bin/bash"),
            [
                "-c", "ulimit -f 16; trap '' XFSZ; exec \"$0\" --config \"$1\" --verbose 0 --resume",
                Trainer.executable.path, file,
            ],
            mergingErrors: true)
        let output = limited.output
        XCTAssertEqual(limited.status, 1, output)
        XCTAssertTrue(output.contains("write failed: File too large"), output)
        XCTAssertEqual(WeightsDirectoryEpochs(dir), ["epoch-0001", "epoch-0002"])
        XCTAssertEqual(try String(contentsOfFile: dir + "/latest", encoding: .utf8), "epoch-0002\n")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/epoch-0002/model.safetensors")), before)
        // And the run continues from there once space is back.
        let resumed = try run(["--config", file, "--verbose", "0", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertEqual(WeightsDirectoryEpochs(dir), ["epoch-0004", "epoch-0005"])
    }

    func testResumeWithoutWeightsDirIsAClearError() throws {
        let file = scratch + "/plain.yml"
        try config(weights: scratch + "/w").replacingOccurrences(of: "checkpoint: {weights_dir: \(scratch)/w, max_to_keep: 2}", with: "")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let result = try run(["--config", file, "--resume"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.output.contains("--resume needs checkpoint.weights_dir"), result.output)
    }

    /// The disk filling up while the CSV log or the TensorBoard event file grows (an 8 KiB
    /// file-size limit, which the small model's checkpoint files stay under): a clear error
    /// naming the file, exit status 1, the newest checkpoint intact, and a resume that finishes
    /// once space is back.
    func testAFullDiskDuringTheLogsKeepsTheCheckpointAndResumes() throws {
        for (name, epochs, logs, culprit) in [
            ("tensorboard", 40, "summary: {dir: \(scratch)/tb-logs, summary_every: 1}", "events.out.tfevents"),
            ("csv", 300, "", "full-csv-csv.csv"),
        ] {
            let dir = scratch + "/full-" + name
            let file = dir + ".yml"
            try DigitsRunConfig.text(
                layers: ["type: dense, units: 10"], batchSize: 64,
                // No plot: its file grows too, and the log under test must be what fills the disk.
                training: "epochs: \(epochs), seed: 3, verbose: 0, plot: false" + (name == "csv" ? ", csv_log: \(dir)-csv.csv" : ""),
                weights: dir,
                extra: logs
            ).write(toFile: file, atomically: true, encoding: .utf8)
            let limited = try Subprocess.run(
                URL(fileURLWithPath: "/bin/bash"),
                ["-c", "ulimit -f 8; trap '' XFSZ; exec \"$0\" --config \"$1\"", Trainer.executable.path, file],
                mergingErrors: true)
            XCTAssertEqual(limited.status, 1, "\(name): \(limited.output)")
            XCTAssertTrue(limited.output.contains(culprit) && limited.output.contains("too large"), "\(name): \(limited.output)")
            let latest = try String(contentsOfFile: dir + "/latest", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertTrue(
                FileManager.default.fileExists(atPath: dir + "/" + latest + "/state.json"), "\(name): latest names \(latest)")
            XCTAssertLessThan(latest, String(format: "epoch-%04d", epochs), "\(name): the limit must stop the run early")
            let resumed = try run(["--config", file, "--resume"])
            XCTAssertEqual(resumed.status, 0, "\(name): \(resumed.output)")
            XCTAssertTrue(WeightsDirectoryEpochs(dir).contains(String(format: "epoch-%04d", epochs)), "\(name)")
        }
    }
}
