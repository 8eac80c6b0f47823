import Foundation
import Learner
import TestSupport
import XCTest

/// The built `tefla-train` executable, run as a user would.
final class CommandLineTests: XCTestCase {
    func testTrainsDigitsFromTheShippedConfig() throws {
        let result = try Trainer.run(["--config", "Configs/digits-mlp.yml", "--epochs", "8", "--gpu", "-1"])
        XCTAssertEqual(result.status, 0, result.error)
        let epochLines = result.output.split(separator: "\n").filter { $0.hasPrefix("Epoch ") }
        XCTAssertEqual(epochLines.count, 8, result.output)
        XCTAssertTrue(result.output.contains("final val_accuracy"), result.output)
    }

    func testBadConfigExitsWithCode2AndNamesTheLine() throws {
        let file = try Scratch.directory("tefla-bad", for: self).appendingPathComponent("bad.yml")
        try "model:\n  layers:\n    - {type: dense, units: 10}\ndata:\n  train_dir: Data/digits/train\n  bach_size: 4\n".write(
            to: file, atomically: true, encoding: .utf8)
        let result = try Trainer.run(["--config", file.path])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.error.contains("line 6, column 3: data.bach_size"), result.error)
    }

    func testUnusableGPUGivesAClearErrorNotACrash() throws {
        guard CUDAContext.deviceCount == 0 else { throw XCTSkip("a CUDA GPU is present: the no-GPU path cannot be exercised") }
        let result = try Trainer.run(["--config", "Configs/digits-mlp.yml", "--gpu", "0"])
        XCTAssertEqual(result.status, 2, result.error)
        XCTAssertTrue(result.error.contains("--gpu 0:"), result.error)
        // cuInit runs for real (or libcuda is missing) and reports no device.
        XCTAssertTrue(result.error.contains("CUDA") || result.error.contains("libcuda"), result.error)
        let version = try Trainer.run(["--version"])
        XCTAssertTrue(version.output.contains("CUDA support: built in"), version.output)
        do {
            // Which convolution engine a GPU run would use: the built-in kernels when cuDNN is absent.
            var environment = ProcessInfo.processInfo.environment
            environment["TEFLA_LIBCUDNN"] = "/nonexistent/libcudnn.so.9"
            let without = try Trainer.run(["--version"], environment: environment)
            XCTAssertTrue(without.output.contains("GPU convolutions: built-in kernels (no cuDNN library found)"), without.output)
            environment["TEFLA_LIBCUDNN"] = nil
            environment["TEFLA_CUDNN"] = "0"
            let off = try Trainer.run(["--version"], environment: environment)
            XCTAssertTrue(off.output.contains("GPU convolutions: built-in kernels"), off.output)
        }
    }

    func testVersionAndHelp() throws {
        let version = try Trainer.run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.output.contains("tefla-train 0.1.0"), version.output)
        let help = try Trainer.run(["--help"])
        XCTAssertTrue(help.output.contains("--gpu"), help.output)
        XCTAssertTrue(help.output.contains("Examples:"), help.output)
    }

    func testStartEpochKeepsNewerCheckpointsUnlessForced() throws {
        let weights = try Scratch.directory("tefla-force", for: self).path
        let run = [
            "--config", "Configs/digits-mlp.yml", "--epochs", "3", "--verbose", "0", "--override", "checkpoint.weights_dir=\(weights)",
        ]
        XCTAssertEqual(try Trainer.run(run).status, 0)
        let refused = try Trainer.run(run + ["--start-epoch", "2"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertFalse(refused.signaled)
        XCTAssertTrue(refused.error.contains("newer than epoch 1 (epoch-0002, epoch-0003)"), refused.error)
        XCTAssertEqual(WeightsDirectory(path: weights).savedEpochs(), [1, 2, 3], "nothing deleted")
        let forced = try Trainer.run(run + ["--start-epoch", "2", "--force"])
        XCTAssertEqual(forced.status, 0, forced.error)
        XCTAssertEqual(WeightsDirectory(path: weights).savedEpochs(), [1, 2, 3], "epochs 2 and 3 trained again")
    }
}
