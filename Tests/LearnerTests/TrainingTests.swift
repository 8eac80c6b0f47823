import Foundation
import XCTest
@testable import Learner

/// End-to-end training on the embedded digits shards: what README command 1 does.
final class TrainingTests: XCTestCase {
    static let digits = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Data/digits").path

    func makeLearner(seed: UInt64 = 7, dropout: Float = 0.1) -> SupervisedLearner {
        let model = Sequential([
            Dense(inputSize: 64, outputSize: 128, activation: .relu, seed: seed),
            Dropout(rate: dropout),
            Dense(inputSize: 128, outputSize: 10, seed: seed + 1),
        ])
        let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 2e-3), seed: seed)
        learner.options.verbose = 0
        return learner
    }

    func testDigitsMLPReachesValidationAccuracy() throws {
        let learner = makeLearner()
        var lines: [String] = []
        learner.options.verbose = 2
        learner.options.log = { lines.append($0) }
        let history = try learner.fit(dataDir: Self.digits + "/train", featureKeys: FeatureKeys(input: "image", label: "label"),
                                      startEpoch: 1, validationDir: Self.digits + "/val", epochs: 20, batchSize: 32)
        XCTAssertEqual(history.epochs.map(\.epoch), Array(1...20))
        XCTAssertEqual(lines.count, 20)
        XCTAssertTrue(lines[0].hasPrefix("Epoch 1/20"), lines[0])
        XCTAssertTrue(lines[0].contains("val_accuracy"), lines[0])
        let final = try XCTUnwrap(history.lastValidationAccuracy)
        XCTAssertGreaterThanOrEqual(final, 0.95, "validation accuracy after 20 epochs")
        XCTAssertLessThan(history.epochs.last!.trainLoss, history.epochs.first!.trainLoss / 4)
    }

    func testSameSeedGivesIdenticalRun() throws {
        let train = try InMemoryDataset.load(directory: Self.digits + "/train", keys: FeatureKeys())
        let a = try makeLearner().fit(training: train, epochs: 2)
        let b = try makeLearner().fit(training: train, epochs: 2)
        XCTAssertEqual(a.epochs.map(\.trainLoss), b.epochs.map(\.trainLoss))
        let c = try makeLearner(seed: 8).fit(training: train, epochs: 2)
        XCTAssertNotEqual(a.epochs.map(\.trainLoss), c.epochs.map(\.trainLoss))
    }

    func testStartEpochNumbersEpochsAndKeysShuffleByEpoch() throws {
        let train = try InMemoryDataset.load(directory: Self.digits + "/train", keys: FeatureKeys())
        let history = try makeLearner().fit(training: train, startEpoch: 3, epochs: 4)
        XCTAssertEqual(history.epochs.map(\.epoch), [3, 4])
        XCTAssertEqual(SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 3),
                       SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 3))
        XCTAssertNotEqual(SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 3),
                          SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 4))
        XCTAssertEqual(SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 3).sorted(), Array(0..<100))
    }

    func testFitRejectsBadArguments() throws {
        let train = try InMemoryDataset.load(directory: Self.digits + "/train", keys: FeatureKeys())
        XCTAssertThrowsError(try makeLearner().fit(training: train, startEpoch: 0, epochs: 2)) { error in
            XCTAssertTrue("\(error)".contains("startEpoch"), "\(error)")
        }
        XCTAssertThrowsError(try makeLearner().fit(training: train, epochs: 2, batchSize: 0)) { error in
            XCTAssertTrue("\(error)".contains("batchSize"), "\(error)")
        }
        XCTAssertThrowsError(try makeLearner().fit(training: train, startEpoch: 5, epochs: 2))
    }

    func testFeatureSizeMismatchNamesBothSizes() throws {
        let train = try InMemoryDataset.load(directory: Self.digits + "/train", keys: FeatureKeys())
        let model = Sequential([Dense(inputSize: 32, outputSize: 10)])
        let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1))
        XCTAssertThrowsError(try learner.fit(training: train, epochs: 1)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("64") && text.contains("32"), text)
        }
    }

    func testMissingDirectoryAndMissingKeyAreNamed() {
        let learner = makeLearner()
        XCTAssertThrowsError(try learner.fit(dataDir: Self.digits + "/nope", featureKeys: FeatureKeys())) { error in
            XCTAssertTrue("\(error)".contains("nope"), "\(error)")
        }
        XCTAssertThrowsError(try learner.fit(dataDir: Self.digits + "/train", featureKeys: FeatureKeys(input: "pixels", label: "label"))) { error in
            XCTAssertTrue("\(error)".contains("pixels"), "\(error)")
        }
    }

    func testRegressionWithMeanSquaredErrorLearnsALinearMap() throws {
        // y = 2·x0 − x1 + 0.5 from 256 samples; a linear model must fit it closely.
        var g = RandomGenerator(seed: 3)
        var inputs: [Float] = [], labels: [Float] = []
        for _ in 0..<256 {
            let a = g.nextUniform() * 2 - 1, b = g.nextUniform() * 2 - 1
            inputs += [a, b]
            labels.append(2 * a - b + 0.5)
        }
        let data = InMemoryDataset(inputs: inputs, labels: labels, featureSize: 2, sources: ["synthetic"])
        let learner = SupervisedLearner(model: Sequential([Dense(inputSize: 2, outputSize: 1, seed: 1)]),
                                        loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1, momentum: 0.9), seed: 1)
        learner.options.verbose = 0
        let history = try learner.fit(training: data, epochs: 30, batchSize: 16)
        XCTAssertNil(history.epochs.last!.trainAccuracy)
        XCTAssertLessThan(history.epochs.last!.trainLoss, 1e-4)
        let w = learner.model.namedParameters[0].parameter.value.scalars
        XCTAssertEqual(w[0], 2, accuracy: 1e-2)
        XCTAssertEqual(w[1], -1, accuracy: 1e-2)
    }
}

final class AccumulationTests: XCTestCase {
    func testAccumulatingFourSlicesGivesTheUpdateOfTheWholeBatch() throws {
        var g = RandomGenerator(seed: 21)
        let x = Tensor.randomNormal([32, 12], generator: &g)
        let y = Tensor(shape: [32], scalars: (0..<32).map { Float($0 % 5) })
        let w = Tensor(shape: [32], scalars: (0..<32).map { 0.5 + Float($0 % 3) })
        func run(_ k: Int, steps: Int = 3) -> [[Float]] {
            let model = Sequential([Dense(inputSize: 12, outputSize: 16, activation: .tanh, seed: 1), Dense(inputSize: 16, outputSize: 5, seed: 2)])
            let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.5, momentum: 0.9), seed: 1)
            learner.options.accumulationSteps = k
            for _ in 0..<steps { learner.trainStep(inputs: x, labels: y, sampleWeights: w) }
            return model.parameters.map(\.value.scalars)
        }
        let whole = run(1), sliced = run(4), uneven = run(5)
        for (a, b) in zip(whole, sliced) { for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) } }
        for (a, b) in zip(whole, uneven) { for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) } }
        // The comparison is not vacuous: the steps moved the weights well beyond the tolerance.
        let initial = run(1, steps: 0)
        XCTAssertGreaterThan(zip(initial[0], whole[0]).map { abs($0 - $1) }.max() ?? 0, 1e-2)
    }
}
