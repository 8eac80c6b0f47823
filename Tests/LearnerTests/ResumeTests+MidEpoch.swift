import Foundation
import XCTest
@testable import Learner

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
        let train = try InMemoryDataset.load(directory: TrainingTests.digits + "/train", keys: FeatureKeys())
        let straight = stepCheckpointing(initSeed: 1, weights: scratch + "/a")
        let full = try straight.fit(train, epochs: 4, batchSize: 64)

        // 23 batches an epoch: step 57 is batch 11 of epoch 3; the newest checkpoint is step 55.
        let first = stepCheckpointing(initSeed: 1, weights: scratch + "/b")
        first.callbacks = [DieAtStep(step: 57)]
        XCTAssertThrowsError(try first.fit(train, epochs: 4, batchSize: 64)) { XCTAssertTrue($0 is Killed) }
        let directory = WeightsDirectory(path: scratch + "/b")
        XCTAssertEqual(directory.newestCheckpoint()?.name, "step-0000000055")
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
        let train = try InMemoryDataset.load(directory: TrainingTests.digits + "/train", keys: FeatureKeys())
        let first = stepCheckpointing(initSeed: 1, weights: scratch + "/c")
        first.callbacks = [DieAtStep(step: 30)]
        XCTAssertThrowsError(try first.fit(train, epochs: 3, batchSize: 64))
        let directory = WeightsDirectory(path: scratch + "/c")
        XCTAssertEqual(directory.stepCheckpoints().map(\.name), ["step-0000000025"], "the dying step saved nothing")
        // Asking for epoch 2 from its start (not --resume) abandons the mid-epoch timeline.
        let again = stepCheckpointing(initSeed: 1, weights: scratch + "/c")
        try again.fit(train, startEpoch: 2, epochs: 2, batchSize: 64)
        XCTAssertEqual(directory.savedEpochs(), [1, 2])
        XCTAssertTrue(directory.stepCheckpoints().isEmpty)
    }
}
