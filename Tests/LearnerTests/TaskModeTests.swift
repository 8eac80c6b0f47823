import Foundation
import XCTest

@testable import Learner

/// Task modes and their default losses, metrics and activations.
final class TaskModeTests: XCTestCase {
    func testModesHaveTheirDefaults() throws {
        XCTAssertEqual(TaskMode.multiLabel(threshold: 0.3).defaultMetrics.map(\.name), ["accuracy_thresh", "fbeta"])
        XCTAssertEqual(TaskMode.regression.defaultMetrics.map(\.name), ["mae", "rmse", "r2"])
        XCTAssertTrue(TaskMode.classification.defaultLoss.isClassification)
        XCTAssertEqual(TaskMode(loss: .sigmoidCrossEntropy), .multiLabel())
        // Multi-label training through trainStep with 0/1 target rows.
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 3, seed: 2)]), mode: .multiLabel(),
            optimizer: Adam(learningRate: 0.05))
        let x = Tensor(shape: [4, 2], scalars: [1, 0, 0, 1, 1, 1, 0, 0])
        let y = Tensor(shape: [4, 3], scalars: [1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1])
        for _ in 0..<300 { try l.trainStep(inputs: x, labels: y) }
        var m = AccuracyThresh()
        m.update(outputs: l.predict(x), labels: y)
        XCTAssertEqual(m.values()["accuracy_thresh"], 1)
    }
}
