import Foundation
import TestSupport
import XCTest

@testable import Learner

/// Dense and convolution layers declared by their outputs alone take their input sizes from
/// shape inference: `build(inputShape:)`, `fit`'s first batch, or their first input.
final class LazyLayerTests: XCTestCase {
    static func model() -> Sequential {
        Sequential([
            Reshape([1, 8, 8]),
            Conv2D(outputChannels: 16, kernelSize: 3, padding: .same, activation: .relu, seed: 1),
            MaxPool2D(kernelSize: 2),
            Conv2D(outputChannels: 16, kernelSize: 3, padding: .same, groups: 4, activation: .relu, seed: 2),
            Flatten(),
            Dense(units: 32, activation: .relu, seed: 3),
            Dense(units: 10, seed: 4),
        ])
    }

    func testBuildGivesEachLayerItsInputSize() throws {
        let model = Self.model()
        XCTAssertFalse((model.layers[1] as? Conv2D)?.isBuilt ?? true)
        XCTAssertEqual(model.parameterCount, 16 + 16 + 32 + 10, "only the biases exist before the build")
        XCTAssertEqual(try model.build(inputShape: [64]), [10])
        XCTAssertEqual((model.layers[1] as? Conv2D)?.inputChannels, 1)
        XCTAssertEqual((model.layers[3] as? Conv2D)?.weight.shape, [16, 4, 3, 3])
        XCTAssertEqual((model.layers[5] as? Dense)?.inputSize, 16 * 4 * 4)
        XCTAssertEqual(model.parameterCount, 16 * 9 + 16 + 16 * 4 * 9 + 16 + 256 * 32 + 32 + 32 * 10 + 10)
        // The same seeds give the weights the sized declarations give.
        let sized = Dense(inputSize: 256, units: 32, activation: .relu, seed: 3)
        XCTAssertEqual((model.layers[5] as? Dense)?.weight.value.scalars, sized.weight.value.scalars)
        XCTAssertTrue(try model.summary(inputShape: [64]).contains("Total params: \(model.parameterCount)"))
    }

    func testALazyModelTrainsThroughFitToTheSizedModelsAccuracy() throws {
        let train = try DataSourceTests.digitsTrain(), val = try DataSourceTests.digitsVal()
        let learner = SupervisedLearner(model: Self.model(), loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 1)
        learner.options.verbose = 0
        let history = try learner.fit(train, validation: val, epochs: 4, batchSize: 32)
        XCTAssertGreaterThan(history.epochs.last?.validationAccuracy ?? 0, 0.9)
    }

    func testTheFirstInputBuildsADirectCall() {
        let dense = Dense(units: 3, seed: 9)
        let y = dense(Tensor.ones([2, 5]))
        XCTAssertEqual(y.shape, [2, 3])
        XCTAssertEqual(dense.inputSize, 5)
        XCTAssertEqual(dense.namedParameters.map(\.name), ["weight", "bias"])
    }

    func testAShapeThatCannotBuildIsNamed() {
        let model = Sequential([Dense(units: 4), Conv2D(outputChannels: 2, kernelSize: 3)])
        XCTAssertThrowsError(try model.build(inputShape: [3, 8, 8])) { error in
            XCTAssertEqual("\(error)", "layer '0' (Dense(→4)): takes flat [features] per sample, gets [3, 8, 8] (flatten it first)")
        }
        let grouped = Sequential([Conv2D(outputChannels: 4, kernelSize: 1, groups: 2)])
        XCTAssertThrowsError(try grouped.build(inputShape: [3, 8, 8])) { error in
            XCTAssertTrue("\(error)".contains("2 groups must divide the 3 input channels"), "\(error)")
        }
    }

    func testWeightsOfABuiltModelRoundTrip() throws {
        let dir = try Scratch.directory("tefla-lazy", for: self)
        let model = Self.model()
        try model.build(inputShape: [64])
        let path = dir.appendingPathComponent("w.safetensors").path
        try model.saveWeights(to: path)
        let fresh = Self.model()
        try fresh.build(inputShape: [64])
        _ = try fresh.loadWeights(from: path)
        let x = Tensor.ones([2, 64])
        XCTAssertEqual(fresh(x).scalars, model(x).scalars)
    }
}
