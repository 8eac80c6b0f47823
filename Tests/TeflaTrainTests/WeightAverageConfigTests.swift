import Foundation
import TestSupport
import XCTest

/// `training.ema_decay` end to end: the weight average of a one-cycle CNN run, warmed up and
/// carrying batch-norm statistics, validates as well as the raw weights it averages.
final class WeightAverageConfigTests: XCTestCase {
    func testTheAverageOfAOneCycleCNNRunValidatesLikeItsRawWeights() throws {
        let weights = try Scratch.directory("tefla-cli-ema", for: self).path
        let config = ["--config", "Configs/digits-png-cnn.yml", "--override", "checkpoint.weights_dir=\(weights)"]
        let train = try Trainer.run(config + ["--override", "training.ema_decay=0.99", "--verbose", "2"])
        XCTAssertEqual(train.status, 0, train.error)
        // The epoch lines' validation goes through the average; the checkpoint holds both.
        func accuracy(_ extra: [String]) throws -> Float {
            let run = try Trainer.run(["evaluate"] + config + extra)
            XCTAssertEqual(run.status, 0, run.error)
            return try XCTUnwrap(run.output.components(separatedBy: "accuracy: ").last.flatMap { Float($0.prefix(6)) }, run.output)
        }
        let averaged = try accuracy(["--override", "training.ema_decay=0.99"])
        let raw = try accuracy([])
        XCTAssertGreaterThanOrEqual(raw, 0.97, train.output)
        XCTAssertGreaterThanOrEqual(averaged, raw - 0.01, "the average within 1% of the raw weights:\n\(train.output)")
        let fourth = try XCTUnwrap(
            train.output.components(separatedBy: "Epoch 4/12").last?
                .components(separatedBy: "val_accuracy: ").dropFirst().first.flatMap { Float($0.prefix(6)) })
        XCTAssertGreaterThanOrEqual(fourth, 0.5, "warmed up, the average follows the weights early in the run:\n\(train.output)")
    }
}
