import Foundation
import XCTest

@testable import Learner

/// The learning-rate finder: its sweep, suggested range, plot and smoothing.
final class LRFinderTests: XCTestCase {
    func testSweepDivergesSuggestsARangeAndRestoresTheModel() throws {
        let keys = FeatureKeys(input: "image", label: "label")
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: keys)
        let model = Sequential([
            Dense(inputSize: 64, units: 64, activation: .relu, seed: 1),
            Dense(inputSize: 64, units: 10, seed: 2),
        ])
        let sgd = SGD(learningRate: 0.05, momentum: 0.9)
        let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: sgd, seed: 3)
        learner.options.verbose = 0
        learner.options.emaDecay = 0.9
        try learner.fit(training: train, epochs: 1)  // optimizer state exists before the sweep
        let averaged = try XCTUnwrap(learner.ema).shadow.map(\.scalars)
        let weights = model.parameters.map { $0.value.scalars }
        let momentum = sgd.state.values.map {
            $0.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
        }
        let step = learner.globalStep
        let result = try learner.findLearningRate(training: train, startLR: 1e-5, endLR: 100, iterations: 120)
        XCTAssertTrue(result.diverged)
        XCTAssertLessThan(result.learningRates.count, 120)
        XCTAssertEqual(Double(result.learningRates[1] / result.learningRates[0]), pow(1e7, 1.0 / 119), accuracy: 1e-4)
        XCTAssertEqual(model.parameters.map { $0.value.scalars }, weights)
        XCTAssertEqual(
            sgd.state.values.map { $0.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) } }, momentum
        )
        XCTAssertEqual(learner.globalStep, step)
        XCTAssertEqual(try XCTUnwrap(learner.ema).shadow.map(\.scalars), averaged)
        XCTAssertEqual(sgd.learningRate, 0.05)
        let range = result.suggestedRange
        XCTAssertLessThanOrEqual(range.lower, range.upper)
        XCTAssertGreaterThan(range.lower, 1e-5)
        XCTAssertLessThan(range.upper, 10)
        let svg = result.svg()
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("<polyline") && svg.contains("1e-3"), svg)
        // Smoothing: s₀ is the first loss, s₁ the bias-corrected mean of the first two.
        XCTAssertEqual(result.smoothedLosses[0], result.losses[0], accuracy: 1e-5)
        let a1 = 0.98 * 0.02 * Double(result.losses[0]) + 0.02 * Double(result.losses[1])
        XCTAssertEqual(Double(result.smoothedLosses[1]), a1 / (1 - 0.98 * 0.98), accuracy: 1e-4)
    }
}
