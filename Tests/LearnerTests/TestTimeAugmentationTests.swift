import Foundation
import XCTest

@testable import Learner

/// Test-time augmentation by flips: predictions averaged over each image and its mirror image.
final class TestTimeAugmentationTests: XCTestCase {
    func testFlipReversesEachRowOnItsDevice() {
        let x = Tensor(shape: [1, 2, 2, 3], scalars: (0..<12).map(Float.init))
        XCTAssertEqual(x.flippedHorizontally().scalars, [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9])
        XCTAssertEqual(x.flippedHorizontally().flippedHorizontally().scalars, x.scalars)
    }

    func testFlipAveragedPredictionsAreMirrorInvariantAndAverageTheProbabilities() {
        var g = RandomGenerator(seed: 5)
        let x = Tensor.randomNormal([4, 2, 6, 6], generator: &g)
        let model = Sequential([
            Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 3, padding: .same, seed: 2), Flatten(),
            Dense(inputSize: 3 * 36, units: 5, seed: 3),
        ])
        let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1))
        let plain = learner.predict(x), mirrored = learner.predict(x.flippedHorizontally())
        XCTAssertNotEqual(plain.scalars, mirrored.scalars, "the model itself is not mirror-symmetric")

        learner.options.testTimeFlip = true
        let averaged = learner.predict(x).softmax().scalars
        let mirroredAveraged = learner.predict(x.flippedHorizontally()).softmax().scalars
        let expected = zip(plain.softmax().scalars, mirrored.softmax().scalars).map { ($0 + $1) / 2 }
        for (a, b) in zip(averaged, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        for (a, b) in zip(averaged, mirroredAveraged) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }
}
