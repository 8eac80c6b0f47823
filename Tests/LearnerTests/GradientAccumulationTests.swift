import Foundation
import XCTest

@testable import Learner

/// Gradient accumulation: slices of a batch add up to the update of the whole batch.
final class GradientAccumulationTests: XCTestCase {
    func testAccumulatingFourSlicesGivesTheUpdateOfTheWholeBatch() throws {
        var g = RandomGenerator(seed: 21)
        let x = Tensor.randomNormal([32, 12], generator: &g)
        let y = Tensor(shape: [32], scalars: (0..<32).map { Float($0 % 5) })
        let w = Tensor(shape: [32], scalars: (0..<32).map { 0.5 + Float($0 % 3) })
        func run(_ k: Int, steps: Int = 3) throws -> [[Float]] {
            let model = Sequential([
                Dense(inputSize: 12, units: 16, activation: .tanh, seed: 1), Dense(inputSize: 16, units: 5, seed: 2),
            ])
            let learner = SupervisedLearner(
                model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.5, momentum: 0.9), seed: 1)
            learner.options.accumulationSteps = k
            for _ in 0..<steps { try learner.trainStep(inputs: x, labels: y, sampleWeights: w) }
            return model.parameters.map(\.value.scalars)
        }
        let whole = try run(1), sliced = try run(4), uneven = try run(5)
        for (a, b) in zip(whole, sliced) { for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) } }
        for (a, b) in zip(whole, uneven) { for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) } }
        // The comparison is not vacuous: the steps moved the weights well beyond the tolerance.
        let initial = try run(1, steps: 0)
        XCTAssertGreaterThan(zip(initial[0], whole[0]).map { abs($0 - $1) }.max() ?? 0, 1e-2)
    }
}
