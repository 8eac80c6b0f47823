import Foundation
import XCTest

@testable import Learner

/// Gradient clipping: by global norm and by value, and `clipNorm` bounding a step.
final class GradientClippingTests: XCTestCase {
    func testGlobalNormAndValueClipping() {
        let a = Parameter(Tensor([0, 0]))
        let b = Parameter(Tensor([0]))
        a.gradient = Tensor([3, 0])
        b.gradient = Tensor([4])
        let norm = GradientClipping.clipGlobalNorm([a, b], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-6)
        XCTAssertEqual(a.gradient!.scalars[0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.gradient!.scalars[0], 0.8, accuracy: 1e-5)
        GradientClipping.clipGlobalNorm([a, b], maxNorm: 10)
        XCTAssertEqual(b.gradient!.scalars[0], 0.8, accuracy: 1e-5, "under the limit: unchanged")
        a.gradient = Tensor([-3, 0.25])
        GradientClipping.clipValue([a], limit: 0.5)
        XCTAssertEqual(a.gradient!.scalars, [-0.5, 0.25])
    }

    func testClipNormBoundsTheStep() throws {
        // SGD lr 1 on one step: the update equals the clipped gradient.
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 1, units: 1, seed: 1)]), loss: .meanSquaredError,
            optimizer: SGD(learningRate: 1))
        l.options.clipNorm = 0.1
        let before = l.model.parameters.map { $0.value.copy().scalars }.flatMap { $0 }
        try l.trainStep(inputs: Tensor(shape: [1, 1], scalars: [100]), labels: Tensor([1000]))
        let after = l.model.parameters.map { $0.value.scalars }.flatMap { $0 }
        let moved = zip(before, after).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        XCTAssertEqual(moved, 0.1, accuracy: 1e-4)
        XCTAssertGreaterThan(l.lastGradientNorm!, 1000)
    }
}
