import Foundation
import XCTest

@testable import Learner

/// `fit` end to end on the embedded digits shards (what README command 1 does), its argument
/// checks and a regression run.
final class FitTests: XCTestCase {
    func makeLearner(seed: UInt64 = 7, dropout: Float = 0.1) -> SupervisedLearner {
        let model = Sequential([
            Dense(inputSize: 64, units: 128, activation: .relu, seed: seed),
            Dropout(rate: dropout),
            Dense(inputSize: 128, units: 10, seed: seed + 1),
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
        let history = try learner.fit(
            dataDir: DataTestFiles.digits + "/train", featureKeys: FeatureKeys(input: "image", label: "label"),
            startEpoch: 1, validationDir: DataTestFiles.digits + "/val", epochs: 20, batchSize: 32)
        XCTAssertEqual(history.epochs.map(\.epoch), Array(1...20))
        XCTAssertEqual(lines.count, 20)
        XCTAssertTrue(lines[0].hasPrefix("Epoch 1/20"), lines[0])
        XCTAssertTrue(lines[0].contains("val_accuracy"), lines[0])
        let final = try XCTUnwrap(history.lastValidationAccuracy)
        XCTAssertGreaterThanOrEqual(final, 0.95, "validation accuracy after 20 epochs")
        XCTAssertLessThan(history.epochs.last!.trainLoss, history.epochs.first!.trainLoss / 4)
    }

    func testSameSeedGivesIdenticalRun() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let a = try makeLearner().fit(training: train, epochs: 2)
        let b = try makeLearner().fit(training: train, epochs: 2)
        XCTAssertEqual(a.epochs.map(\.trainLoss), b.epochs.map(\.trainLoss))
        let c = try makeLearner(seed: 8).fit(training: train, epochs: 2)
        XCTAssertNotEqual(a.epochs.map(\.trainLoss), c.epochs.map(\.trainLoss))
    }

    func testStartEpochNumbersEpochsAndKeysShuffleByEpoch() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let history = try makeLearner().fit(training: train, startEpoch: 3, epochs: 4)
        XCTAssertEqual(history.epochs.map(\.epoch), [3, 4])
        XCTAssertEqual(
            SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 3),
            SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 3))
        XCTAssertNotEqual(
            SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 3),
            SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 4))
        XCTAssertEqual(SupervisedLearner.shuffledOrder(count: 100, seed: 1, epoch: 3).sorted(), Array(0..<100))
    }

    func testFitRejectsBadArguments() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        XCTAssertThrowsError(try makeLearner().fit(training: train, startEpoch: 0, epochs: 2)) { error in
            XCTAssertTrue("\(error)".contains("startEpoch"), "\(error)")
        }
        XCTAssertThrowsError(try makeLearner().fit(training: train, epochs: 2, batchSize: 0)) { error in
            XCTAssertTrue("\(error)".contains("batchSize"), "\(error)")
        }
        XCTAssertThrowsError(try makeLearner().fit(training: train, startEpoch: 5, epochs: 2))
    }

    func testFeatureSizeMismatchNamesBothSizes() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let model = Sequential([Dense(inputSize: 32, units: 10)])
        let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1))
        XCTAssertThrowsError(try learner.fit(training: train, epochs: 1)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("64") && text.contains("32"), text)
        }
    }

    func testMissingDirectoryAndMissingKeyAreNamed() {
        let learner = makeLearner()
        XCTAssertThrowsError(try learner.fit(dataDir: DataTestFiles.digits + "/nope", featureKeys: FeatureKeys())) { error in
            XCTAssertTrue("\(error)".contains("nope"), "\(error)")
        }
        XCTAssertThrowsError(
            try learner.fit(dataDir: DataTestFiles.digits + "/train", featureKeys: FeatureKeys(input: "pixels", label: "label"))
        ) { error in
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
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 1, seed: 1)]),
            loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1, momentum: 0.9), seed: 1)
        learner.options.verbose = 0
        let history = try learner.fit(training: data, epochs: 30, batchSize: 16)
        XCTAssertNil(history.epochs.last!.trainAccuracy)
        XCTAssertLessThan(history.epochs.last!.trainLoss, 1e-4)
        let w = learner.model.namedParameters[0].parameter.value.scalars
        XCTAssertEqual(w[0], 2, accuracy: 1e-2)
        XCTAssertEqual(w[1], -1, accuracy: 1e-2)
    }

    func testOneCycleOnDigitsReachesValidationAccuracy() throws {
        let keys = FeatureKeys(input: "image", label: "label")
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: keys)
        let val = try InMemoryDataset.load(directory: DataTestFiles.digits + "/val", keys: keys)
        let model = Sequential([
            Dense(inputSize: 64, units: 128, activation: .relu, seed: 7),
            Dense(inputSize: 128, units: 10, seed: 8),
        ])
        let learner = SupervisedLearner(
            model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1, momentum: 0.9),
            seed: 7)
        learner.options.verbose = 0
        let epochs = 8
        let batchSize = 32
        let steps = epochs * ((train.count + batchSize - 1) / batchSize)
        learner.options.schedule = OneCycleLR(maxLR: 0.2, totalSteps: steps)
        learner.metrics = [Accuracy(), TopKAccuracy(k: 3), PrecisionRecall(classes: 10)]
        learner.options.clipNorm = 5
        let history = try learner.fit(training: train, validation: val, epochs: epochs, batchSize: batchSize)
        let last = try XCTUnwrap(history.epochs.last)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(last.validationAccuracy), 0.95)
        XCTAssertGreaterThanOrEqual(last.validationMetrics["top_3_accuracy"]!, last.validationAccuracy!)
        XCTAssertNotNil(last.validationMetrics["recall_9"])
        XCTAssertLessThan(last.learningRate!, 1e-4, "one-cycle ends near maxLR/25/1e4")
    }
}
