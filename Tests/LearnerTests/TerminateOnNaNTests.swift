import Foundation
import Logging
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
            model: Sequential([Dense(inputSize: 3, units: 1, seed: 3)]), loss: .meanSquaredError,
            optimizer: SGD(learningRate: 0.05), seed: 2)
        learner.options.schedule = BlowUp(blowUpStep: 10)
        let messages = MessageRecorder()
        learner.options.verbose = 0
        learner.options.logger = Logger(label: "test") { _ in messages }
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
        XCTAssertEqual(messages.lines, ["warning: " + message], "the stop goes through the library's logger")

        // The weights are now non-finite: a second run with the same callback forgets the first
        // and stops at its very first batch.
        learner.options.schedule = nil
        try learner.fit(training: data, epochs: 3, batchSize: 4)
        XCTAssertEqual(stop.badEpoch, 1)
        XCTAssertEqual(stop.badBatch, 0)
        XCTAssertEqual(stop.badStep, 1)
    }
}

/// A swift-log handler that keeps each message as `level: text` (notices without the level).
// @unchecked Sendable: a test logs from the one thread that runs `fit`, and reads `lines`
// after `fit` has returned on that thread.
final class MessageRecorder: LogHandler, @unchecked Sendable {
    var lines: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.append(event.level == .notice ? event.message.description : "\(event.level): \(event.message)")
    }
}
