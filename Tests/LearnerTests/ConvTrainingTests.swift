import Foundation
import XCTest

@testable import Learner

/// A CNN trained end to end by `SupervisedLearner` on the 8×8 digits (flat [N, 64] inputs
/// reshaped to [N, 1, 8, 8] by a `Lambda`).
final class ConvTrainingTests: XCTestCase {
    func testSmallCNNLearnsTheDigits() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let validation = try InMemoryDataset.load(directory: DataTestFiles.digits + "/val", keys: FeatureKeys())
        let model = Sequential([
            Lambda("to NCHW") { $0.reshaped(to: [-1, 1, 8, 8]) * (1 / 16) },
            Zoo.smallCNN(inputChannels: 1, classes: 10),
        ])
        let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 3)
        learner.options.verbose = 0
        let history = try learner.fit(training: train, validation: validation, epochs: 3, batchSize: 32)
        let accuracy = try XCTUnwrap(history.lastValidationAccuracy)
        print("smallCNN on the digits: validation accuracy \(history.epochs.map(\.validationAccuracy))")
        XCTAssertGreaterThanOrEqual(accuracy, 0.9, "validation accuracy after 3 epochs: \(history.epochs.map(\.validationAccuracy))")
    }
}
