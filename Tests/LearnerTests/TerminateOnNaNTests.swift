import Foundation
import XCTest

@testable import Learner

/// TerminateOnNaN stops at the batch whose loss first went bad, and names it.
final class TerminateOnNaNTests: XCTestCase {
    /// A sane rate until `blowUpStep`, then an infinite one: that step's own loss is still
    /// finite, and the next step's, computed with infinite weights, is not.
    struct BlowUp: LearningRateSchedule {
        let blowUpStep: Int
        func learningRate(at step: Int) -> Float { step == blowUpStep ? .infinity : 0.05 }
    }

    final class BatchRecorder: Callback {
        var seen: [(epoch: Int, batch: Int, loss: Float)] = []
        var epoch = 0
        func onEpochBegin(_ learner: SupervisedLearner, epoch: Int) { self.epoch = epoch }
        func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) { seen.append((epoch, batch, loss)) }
    }

    func testStopsAtTheFirstNonFiniteLossAndNamesEpochAndBatch() throws {
        // 32 samples in batches of 4: 8 batches an epoch. Step index 10 (epoch 2, batch 2) takes
        // the infinite rate, so step index 11, epoch 2 batch 3 (global step 12), is the bad one.
        var g = RandomGenerator(seed: 9)
        let inputs: [Float] = (0..<96).map { _ in g.nextUniform() * 2 - 1 }
        let labels: [Float] = (0..<32).map { (i: Int) -> Float in
            let a: Float = inputs[3 * i], b: Float = inputs[3 * i + 1]
            return a - 2 * b + 0.5
        }
        let data = InMemoryDataset(inputs: inputs, labels: labels, featureSize: 3)
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 3, outputSize: 1, seed: 3)]), loss: .meanSquaredError,
            optimizer: SGD(learningRate: 0.05), seed: 2)
        learner.options.schedule = BlowUp(blowUpStep: 10)
        var lines: [String] = []
        learner.options.verbose = 2
        learner.options.log = { lines.append($0) }
        let stop = TerminateOnNaN()
        let recorder = BatchRecorder()
        learner.callbacks = [stop, recorder]
        let history = try learner.fit(training: data, epochs: 5, batchSize: 4)

        XCTAssertEqual(stop.badEpoch, 2)
        XCTAssertEqual(stop.badBatch, 3)
        XCTAssertEqual(stop.badStep, 12)
        XCTAssertEqual(recorder.seen.count, 12, "no batch runs after the bad one")
        let last = try XCTUnwrap(recorder.seen.last)
        XCTAssertEqual(last.epoch, 2)
        XCTAssertEqual(last.batch, 3)
        XCTAssertFalse(last.loss.isFinite)
        XCTAssertTrue(recorder.seen.dropLast().allSatisfy { $0.loss.isFinite }, "\(recorder.seen)")
        XCTAssertEqual(history.epochs.count, 2)
        let message = try XCTUnwrap(stop.message)
        XCTAssertTrue(message.contains("epoch 2, batch 3 (global step 12)"), message)
        XCTAssertTrue(lines.contains(message), "\(lines)")

        // The weights are now non-finite: a second run with the same callback forgets the first
        // and stops at its very first batch.
        learner.options.schedule = nil
        try learner.fit(training: data, epochs: 3, batchSize: 4)
        XCTAssertEqual(stop.badEpoch, 1)
        XCTAssertEqual(stop.badBatch, 0)
        XCTAssertEqual(stop.badStep, 1)
    }
}
