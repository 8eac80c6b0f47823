import Foundation
import TestSupport
import XCTest
@testable import Learner

/// A run stopped after any epoch and resumed from its weights directory ends bit for bit where
/// the uninterrupted run ends (same seed), with dropout, Adam, a one-cycle schedule and a
/// weight average all in play.
final class ResumeTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = try Scratch.directory("tefla-resume", for: self).path
    }

    func learner(initSeed: UInt64, weights: String) -> SupervisedLearner {
        let model = Sequential([
            Dense(inputSize: 64, outputSize: 32, activation: .relu, seed: initSeed),
            Dropout(rate: 0.2),
            Dense(inputSize: 32, outputSize: 10, seed: initSeed + 1),
        ])
        let l = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-3), seed: 5)
        l.options.verbose = 0
        l.options.schedule = OneCycleLR(maxLR: 1e-2, totalSteps: 6 * 23)
        l.options.emaDecay = 0.9
        l.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: weights, maxToKeep: 3))
        return l
    }

    func testResumedRunEqualsUninterruptedRunBitForBit() throws {
        let train = try InMemoryDataset.load(directory: TrainingTests.digits + "/train", keys: FeatureKeys())
        let straight = learner(initSeed: 1, weights: scratch + "/a")
        let full = try straight.fit(training: train, epochs: 6, batchSize: 64)

        let first = learner(initSeed: 1, weights: scratch + "/b")
        _ = try first.fit(training: train, epochs: 3, batchSize: 64)
        // A new process would build its model from scratch: other initial weights must not matter.
        let resumed = learner(initSeed: 99, weights: scratch + "/b")
        XCTAssertEqual(try resumed.resumeEpoch(), 4)
        let rest = try resumed.fit(training: train, startEpoch: 4, epochs: 6, batchSize: 64)

        XCTAssertEqual(rest.epochs.map(\.trainLoss), Array(full.epochs[3...].map(\.trainLoss)))
        XCTAssertEqual(resumed.globalStep, straight.globalStep)
        for (a, b) in zip(straight.model.parameters, resumed.model.parameters) { XCTAssertEqual(a.value.scalars, b.value.scalars) }
        for (a, b) in zip(straight.ema!.shadow, resumed.ema!.shadow) { XCTAssertEqual(a.scalars, b.scalars) }
        XCTAssertEqual(WeightsDirectory(path: scratch + "/b").savedEpochs(), [4, 5, 6], "max_to_keep 3 keeps the newest")
    }

    func testStartEpochWithoutItsCheckpointNamesTheMissingFile() throws {
        let train = try InMemoryDataset.load(directory: TrainingTests.digits + "/train", keys: FeatureKeys())
        let l = learner(initSeed: 1, weights: scratch + "/c")
        XCTAssertThrowsError(try l.fit(training: train, startEpoch: 3, epochs: 4, batchSize: 64)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("epoch-0002/state.json"), text)
        }
    }

    func testResumeWithAnotherBatchSizeIsRefused() throws {
        let train = try InMemoryDataset.load(directory: TrainingTests.digits + "/train", keys: FeatureKeys())
        _ = try learner(initSeed: 1, weights: scratch + "/d").fit(training: train, epochs: 1, batchSize: 64)
        XCTAssertThrowsError(try learner(initSeed: 1, weights: scratch + "/d").fit(training: train, startEpoch: 2, epochs: 2, batchSize: 32)) { error in
            XCTAssertTrue("\(error)".contains("batch size"), "\(error)")
        }
    }

    func testMismatchedModelIsRefusedNamingParameterAndShapes() throws {
        let train = try InMemoryDataset.load(directory: TrainingTests.digits + "/train", keys: FeatureKeys())
        _ = try learner(initSeed: 1, weights: scratch + "/e").fit(training: train, epochs: 1, batchSize: 64)
        let other = SupervisedLearner(model: Sequential([Dense(inputSize: 64, outputSize: 16, activation: .relu), Dense(inputSize: 16, outputSize: 10)]),
                                      loss: .softmaxCrossEntropy(), optimizer: Adam(), seed: 5)
        other.options.verbose = 0
        other.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: scratch + "/e"))
        XCTAssertThrowsError(try other.fit(training: train, startEpoch: 2, epochs: 2, batchSize: 64)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("0.weight") && text.contains("[32, 64]") && text.contains("[16, 64]"), text)
        }
    }
}
