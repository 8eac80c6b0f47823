import Foundation
import Learner
import TestSupport
import XCTest

@testable import tefla_train

/// `training.precision`, `training.loss_scale` and `--precision`: values reach the learner,
/// mistakes name their line, and an fp16 run from the command line checkpoints its loss scale.
extension TrainingConfigTests {
    func testPrecisionAndLossScaleReachTheOptions() throws {
        let plain = try TrainConfig.parse(yaml: head, file: "p.yml").trainingOptions(verbose: 0)
        XCTAssertEqual(plain.precision, .fp32)
        XCTAssertEqual(plain.lossScaling, LossScaling())
        let yaml =
            head + """
                training:
                  precision: fp16
                  loss_scale: {initial: 1024, growth_factor: 4, backoff_factor: 0.25, growth_interval: 50, dynamic: false}
                """
        let options = try TrainConfig.parse(yaml: yaml, file: "p.yml").trainingOptions(verbose: 0)
        XCTAssertEqual(options.precision, .fp16)
        XCTAssertEqual(
            options.lossScaling, LossScaling(initialScale: 1024, growthFactor: 4, backoffFactor: 0.25, growthInterval: 50, dynamic: false))
        let bf16 = try TrainConfig.parse(yaml: head + "training: {precision: bf16}\n", file: "p.yml")
        XCTAssertEqual(bf16.trainingOptions(verbose: 0).precision, .bf16)
    }

    func testMistakesNameTheirLines() {
        let yaml =
            head + """
                training:
                  precision: fp_16
                  loss_scale:
                    initial: 0
                    backoff_factor: 2
                    growth_intervall: 5
                """
        XCTAssertThrowsError(try TrainConfig.parse(yaml: yaml, file: "bad.yml")) { error in
            guard let error = error as? ConfigError else { return XCTFail("\(error)") }
            let text = error.description
            let byPath = Dictionary(error.issues.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertTrue(byPath["training.precision"]?.message.contains("fp32, bf16, fp16") ?? false, text)
            XCTAssertTrue(byPath["training.precision"]?.message.contains("did you mean 'fp16'") ?? false, text)
            XCTAssertEqual(byPath["training.precision"]?.line, 10)
            XCTAssertTrue(byPath["training.loss_scale.initial"]?.message.contains("> 0") ?? false, text)
            XCTAssertEqual(byPath["training.loss_scale.initial"]?.line, 12)
            XCTAssertTrue(byPath["training.loss_scale.backoff_factor"]?.message.contains("< 1") ?? false, text)
            XCTAssertTrue(
                byPath["training.loss_scale.growth_intervall"]?.message.contains("did you mean 'growth_interval'") ?? false, text)
        }
    }

    /// `--precision fp16` overrides the config: the run trains, and its checkpoint holds the
    /// loss scale; `--precision` outside the three formats is refused before any work.
    func testCommandLinePrecisionOverridesTheConfig() throws {
        let dir = try Scratch.directory("tefla-precision", for: self)
        let file = dir.appendingPathComponent("c.yml")
        try
            (head + """
                training: {epochs: 2, precision: bf16}
                checkpoint: {weights_dir: \(dir.path)/weights}
                """).write(to: file, atomically: true, encoding: .utf8)
        let result = try Trainer.run(["--config", file.path, "--verbose", "2", "--precision", "fp16"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("Epoch 2/2"), result.output)
        let state = try JSONDecoder().decode(
            TrainingState.self, from: Data(contentsOf: URL(fileURLWithPath: dir.path + "/weights/epoch-0002/state.json")))
        XCTAssertEqual(state.lossScale, 65536, "fp16 keeps the loss scale in the checkpoint")
        let bad = try Trainer.run(["--config", file.path, "--precision", "fp8"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.error.contains("fp8"), bad.error)
    }
}
