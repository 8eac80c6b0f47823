import Foundation
import TestSupport
import XCTest

@testable import Learner

final class CallbackTests: XCTestCase {
    /// Two linearly separable classes in 2-D: trains in a few epochs.
    func blobs(_ n: Int = 64, seed: UInt64 = 3) -> InMemoryDataset {
        var g = RandomGenerator(seed: seed)
        var inputs: [Float] = []
        var labels: [Float] = []
        for i in 0..<n {
            let c = Float(i % 2)
            inputs += [c * 2 - 1 + (g.nextUniform() - 0.5) * 0.5, (g.nextUniform() - 0.5)]
            labels.append(c)
        }
        return InMemoryDataset(inputs: inputs, labels: labels, featureSize: 2)
    }

    func learner(_ lr: Float = 0.1) -> SupervisedLearner {
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 2, seed: 4)]), loss: .softmaxCrossEntropy(),
            optimizer: SGD(learningRate: lr), seed: 1)
        l.options.verbose = 0
        return l
    }

    final class Recorder: Callback {
        var events: [String] = []
        func onTrainBegin(_ learner: SupervisedLearner) { events.append("train_begin") }
        func onTrainEnd(_ learner: SupervisedLearner, history: History) {
            events.append("train_end \(history.epochs.count)")
        }
        func onEpochBegin(_ learner: SupervisedLearner, epoch: Int) { events.append("epoch_begin \(epoch)") }
        func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) { events.append("epoch_end \(log.epoch)") }
        func onBatchBegin(_ learner: SupervisedLearner, batch: Int) { events.append("batch_begin \(batch)") }
        func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) { events.append("batch_end \(batch)") }
    }

    func testHooksAreCalledInOrder() throws {
        let l = learner()
        let r = Recorder()
        l.callbacks = [r]
        try l.fit(training: blobs(8), epochs: 2, batchSize: 4)
        XCTAssertEqual(
            r.events,
            [
                "train_begin",
                "epoch_begin 1", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1", "epoch_end 1",
                "epoch_begin 2", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1", "epoch_end 2",
                "train_end 2",
            ])
    }

    func testEarlyStoppingStopsAndRestoresBestWeights() throws {
        let l = learner()
        // A synthetic monitored value: best at epoch 2, then worse.
        let values: [Float] = [0.5, 0.2, 0.3, 0.4, 0.6, 0.1]
        var weightsAtEpoch: [Int: [Float]] = [:]
        let stopper = EarlyStopping(monitor: "custom", patience: 2, mode: .min, restoreBestWeights: true)
        final class Inject: Callback {
            let values: [Float]
            let next: EarlyStopping
            var record: (Int, [Float]) -> Void
            init(_ values: [Float], _ next: EarlyStopping, record: @escaping (Int, [Float]) -> Void) {
                self.values = values
                self.next = next
                self.record = record
            }
            func onTrainBegin(_ learner: SupervisedLearner) { next.onTrainBegin(learner) }
            func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
                var log = log
                log.metrics["custom"] = values[log.epoch - 1]
                record(log.epoch, learner.model.parameters[0].value.scalars)
                try next.onEpochEnd(learner, log: log)
            }
            func onTrainEnd(_ learner: SupervisedLearner, history: History) {
                next.onTrainEnd(learner, history: history)
            }
        }
        l.callbacks = [Inject(values, stopper) { weightsAtEpoch[$0] = $1 }]
        let history = try l.fit(training: blobs(), epochs: 6, batchSize: 8)
        XCTAssertEqual(history.epochs.count, 4, "stops after 2 epochs without improvement on epoch 2")
        XCTAssertEqual(stopper.bestEpoch, 2)
        XCTAssertEqual(stopper.stoppedEpoch, 4)
        XCTAssertEqual(l.model.parameters[0].value.scalars, weightsAtEpoch[2])
        XCTAssertNotEqual(weightsAtEpoch[4], weightsAtEpoch[2])
    }

    func testEarlyStoppingOnUnknownKeyNamesTheKeys() {
        let l = learner()
        l.callbacks = [EarlyStopping(monitor: "val_acc")]
        XCTAssertThrowsError(try l.fit(training: blobs(), validation: blobs(), epochs: 2)) { error in
            XCTAssertTrue("\(error)".contains("val_accuracy"), "\(error)")
        }
        XCTAssertEqual(MonitorMode.auto(for: "val_accuracy"), .max)
        XCTAssertEqual(MonitorMode.auto(for: "val_loss"), .min)
    }

    func testCSVLoggerWritesOneRowPerEpoch() throws {
        let path = try Scratch.directory("tefla-csv", for: self).appendingPathComponent("log.csv").path
        let l = learner()
        l.callbacks = [CSVLogger(path: path)]
        try l.fit(training: blobs(), validation: blobs(), epochs: 3, batchSize: 16)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(lines[0], "epoch,loss,accuracy,val_loss,val_accuracy,lr")
        XCTAssertTrue(lines[3].hasPrefix("3,"), String(lines[3]))
        XCTAssertEqual(lines[3].split(separator: ",").count, 6)
    }

    func testCSVLoggerContinuesTheRunItResumes() throws {
        let dir = try Scratch.directory("tefla-csv", for: self)
        let path = dir.appendingPathComponent("log.csv").path
        func run(startEpoch: Int, epochs: Int) throws -> [String] {
            let l = learner()
            l.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: dir.appendingPathComponent("w").path))
            l.checkpoint?.discardsNewerCheckpoints = true
            l.callbacks = [CSVLogger(path: path)]
            try l.fit(training: blobs(), validation: blobs(), startEpoch: startEpoch, epochs: epochs, batchSize: 16)
            return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        }
        let straight = try run(startEpoch: 1, epochs: 4)
        // The same run stopped after epoch 4 and resumed from the end of epoch 2 (epochs 3 and 4 again):
        // one header, one row per epoch, and the rows of an identical run.
        let resumed = try run(startEpoch: 3, epochs: 4)
        XCTAssertEqual(resumed.map { $0.prefix { $0 != "," } }, ["epoch", "1", "2", "3", "4"])
        XCTAssertEqual(resumed.map { $0.split(separator: ",").count }, Array(repeating: 6, count: 5))
        XCTAssertEqual(resumed[0], straight[0])
        // A fresh run starts the file anew.
        try? FileManager.default.removeItem(atPath: dir.appendingPathComponent("w").path)
        XCTAssertEqual(try run(startEpoch: 1, epochs: 1).count, 2)
    }

    func testTerminateOnNaNStopsAtTheBadBatch() throws {
        let l = learner(1e30)  // diverges to inf/NaN within a few steps
        let data = InMemoryDataset(
            inputs: (0..<64).map { Float($0) * 1e3 }, labels: (0..<32).map { Float($0 % 2) },
            featureSize: 2)
        let stop = TerminateOnNaN()
        var batches = 0
        l.callbacks = [stop, LambdaCallback(batchEnd: { _, _, _ in batches += 1 })]
        let history = try l.fit(training: data, epochs: 50, batchSize: 4)
        let bad = try XCTUnwrap(stop.badStep)
        XCTAssertEqual(Int(bad), batches)
        XCTAssertLessThan(history.epochs.count, 50)
        XCTAssertFalse(history.epochs.last!.trainLoss.isFinite)
    }

    func testModelCheckpointSavesTheBestOnlyWhenAsked() throws {
        let dir = try Scratch.directory("tefla-best", for: self).path
        let l = learner()
        var improvedAt: [Int] = []
        var best = Float.infinity
        l.callbacks = [
            ModelCheckpoint(directory: WeightsDirectory(path: dir), monitor: "loss", saveBest: true, everyEpochs: nil),
            LambdaCallback(epochEnd: { _, log in
                if log.trainLoss < best { improvedAt.append(log.epoch) }
                best = min(best, log.trainLoss)
            }),
        ]
        let history = try l.fit(training: blobs(), epochs: 4, batchSize: 16)
        XCTAssertEqual(history.epochs.count, 4)
        let state = try WeightsDirectory.readState(dir + "/best")
        XCTAssertEqual(state.epoch, improvedAt.last)
        XCTAssertEqual(state.values["loss"].map(Float.init), best)
        XCTAssertEqual(WeightsDirectory(path: dir).savedEpochs(), [], "no epoch checkpoints with everyEpochs nil")
    }

    func testTheBestValueSurvivesAResume() throws {
        let dir = try Scratch.directory("tefla-best", for: self).path
        // Monitoring the training loss for its maximum: the first epoch is the best, and later ones never are.
        func run() -> SupervisedLearner {
            let l = learner()
            l.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: dir), monitor: "loss", mode: .max, saveBest: true)
            return l
        }
        try run().fit(training: blobs(), epochs: 3, batchSize: 16)
        XCTAssertEqual(try WeightsDirectory.readState(dir + "/best").epoch, 1)
        let resumed = run()
        XCTAssertEqual(try resumed.resumeEpoch(), 4)
        try resumed.fit(training: blobs(), startEpoch: 4, epochs: 5, batchSize: 16)
        XCTAssertEqual(try WeightsDirectory.readState(dir + "/best").epoch, 1, "the resumed run knew epoch 1's value")
        XCTAssertEqual(WeightsDirectory(path: dir).savedEpochs(), [1, 2, 3, 4, 5])
    }
}
