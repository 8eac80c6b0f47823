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
            Dense(inputSize: 64, units: 32, activation: .relu, seed: initSeed),
            Dropout(rate: 0.2),
            Dense(inputSize: 32, units: 10, seed: initSeed + 1),
        ])
        let l = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-3), seed: 5)
        l.options.verbose = 0
        l.options.schedule = OneCycleLR(maxLR: 1e-2, totalSteps: 6 * 23)
        l.options.emaDecay = 0.9
        l.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: weights, maxToKeep: 3))
        return l
    }

    func testResumedRunEqualsUninterruptedRunBitForBit() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
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
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let l = learner(initSeed: 1, weights: scratch + "/c")
        XCTAssertThrowsError(try l.fit(training: train, startEpoch: 3, epochs: 4, batchSize: 64)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("epoch-0002/state.json"), text)
        }
    }

    func testResumeWithAnotherBatchSizeIsRefused() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        _ = try learner(initSeed: 1, weights: scratch + "/d").fit(training: train, epochs: 1, batchSize: 64)
        XCTAssertThrowsError(
            try learner(initSeed: 1, weights: scratch + "/d").fit(training: train, startEpoch: 2, epochs: 2, batchSize: 32)
        ) { error in
            XCTAssertTrue("\(error)".contains("batch size"), "\(error)")
        }
    }

    func testMismatchedModelIsRefusedNamingParameterAndShapes() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        _ = try learner(initSeed: 1, weights: scratch + "/e").fit(training: train, epochs: 1, batchSize: 64)
        let other = SupervisedLearner(
            model: Sequential([Dense(inputSize: 64, units: 16, activation: .relu), Dense(inputSize: 16, units: 10)]),
            loss: .softmaxCrossEntropy(), optimizer: Adam(), seed: 5)
        other.options.verbose = 0
        other.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: scratch + "/e"))
        XCTAssertThrowsError(try other.fit(training: train, startEpoch: 2, epochs: 2, batchSize: 64)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("0.weight") && text.contains("[32, 64]") && text.contains("[16, 64]"), text)
        }
    }
}

/// Checkpoints every N steps: a run that dies within an epoch resumes from the newest one and
/// ends bit for bit where the uninterrupted run ends, its resumed epoch logging the same
/// training loss and metrics.
extension ResumeTests {
    struct Killed: Error {}

    /// Stands in for `kill -9`: training stops at a batch, with no epoch-end checkpoint.
    final class DieAtStep: Callback {
        let step: UInt64
        init(step: UInt64) { self.step = step }
        func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws {
            if learner.globalStep == step { throw Killed() }
        }
    }

    /// ``learner(initSeed:weights:)`` checkpointing every 5 steps, with metrics whose statistics
    /// span the epoch.
    func stepCheckpointing(initSeed: UInt64, weights: String) -> SupervisedLearner {
        let l = learner(initSeed: initSeed, weights: weights)
        l.metrics = [Accuracy(), QuadraticWeightedKappa(classes: 10)]
        l.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: weights, maxToKeep: 2), everySteps: 5)
        return l
    }

    func testRunKilledWithinAnEpochResumesBitForBit() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let straight = stepCheckpointing(initSeed: 1, weights: scratch + "/a")
        let full = try straight.fit(train, epochs: 4, batchSize: 64)

        // 23 batches an epoch: step 57 is batch 11 of epoch 3; the newest checkpoint is step 55.
        let first = stepCheckpointing(initSeed: 1, weights: scratch + "/b")
        first.callbacks = [DieAtStep(step: 57)]
        XCTAssertThrowsError(try first.fit(train, epochs: 4, batchSize: 64)) { XCTAssertTrue($0 is Killed) }
        let directory = WeightsDirectory(path: scratch + "/b")
        XCTAssertEqual(try directory.newestCheckpoint()?.name, "step-0000000055")
        XCTAssertEqual(try directory.latest().map { URL(fileURLWithPath: $0).lastPathComponent }, "step-0000000055")
        XCTAssertEqual(directory.stepCheckpoints().count, 1, "only the newest mid-epoch checkpoint is kept")

        let resumed = stepCheckpointing(initSeed: 99, weights: scratch + "/b")
        XCTAssertEqual(try resumed.resumeEpoch(), 3)
        let rest = try resumed.fit(train, startEpoch: 3, epochs: 4, batchSize: 64)

        XCTAssertEqual(resumed.globalStep, straight.globalStep)
        for (a, b) in zip(straight.model.parameters, resumed.model.parameters) { XCTAssertEqual(a.value.scalars, b.value.scalars) }
        for (a, b) in zip(straight.ema!.shadow, resumed.ema!.shadow) { XCTAssertEqual(a.scalars, b.scalars) }
        XCTAssertEqual(rest.epochs.map(\.trainLoss), Array(full.epochs[2..<4].map(\.trainLoss)))
        XCTAssertEqual(rest.epochs.map(\.metrics), Array(full.epochs[2..<4].map(\.metrics)), "epoch 3's metrics span all its batches")
        XCTAssertEqual(directory.savedEpochs(), [3, 4])
        XCTAssertTrue(directory.stepCheckpoints().isEmpty, "an epoch's checkpoint retires the mid-epoch ones")
    }

    func testStartEpochAfterMidEpochCheckpointsDiscardsThem() throws {
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let first = stepCheckpointing(initSeed: 1, weights: scratch + "/c")
        first.callbacks = [DieAtStep(step: 30)]
        XCTAssertThrowsError(try first.fit(train, epochs: 3, batchSize: 64))
        let directory = WeightsDirectory(path: scratch + "/c")
        XCTAssertEqual(directory.stepCheckpoints().map(\.name), ["step-0000000025"], "the dying step saved nothing")
        // Asking for epoch 2 from its start (not --resume) would abandon the mid-epoch timeline:
        // refused, naming the checkpoint, and nothing is deleted ...
        let refused = stepCheckpointing(initSeed: 1, weights: scratch + "/c")
        XCTAssertThrowsError(try refused.fit(train, startEpoch: 2, epochs: 2, batchSize: 64)) { error in
            XCTAssertTrue("\(error)".contains("step-0000000025"), "\(error)")
        }
        XCTAssertEqual(directory.stepCheckpoints().map(\.name), ["step-0000000025"])
        // ... unless allowed.
        let again = stepCheckpointing(initSeed: 1, weights: scratch + "/c")
        again.checkpoint?.discardsNewerCheckpoints = true
        try again.fit(train, startEpoch: 2, epochs: 2, batchSize: 64)
        XCTAssertEqual(directory.savedEpochs(), [1, 2])
        XCTAssertTrue(directory.stepCheckpoints().isEmpty)
    }
}
