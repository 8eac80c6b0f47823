import Foundation
import TestSupport
import XCTest

@testable import Learner

/// `fit` over the ``DataSource`` protocol: the in-memory and tensor sources, a source written
/// here, epochs of a set number of iterations, class weights, multi-label targets, and the
/// host-tensor entry points (`trainFromHost`, `train`, `trainOnBatch`).
final class DataSourceTests: XCTestCase {
    static func digitsTrain() throws -> InMemoryDataset {
        try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
    }

    static func digitsVal() throws -> InMemoryDataset {
        try InMemoryDataset.load(directory: DataTestFiles.digits + "/val", keys: FeatureKeys())
    }

    func mlp(seed: UInt64 = 3, outputs: Int = 10, dropout: Bool = false) -> Sequential {
        var layers: [Module] = [Dense(inputSize: 64, units: 32, activation: .relu, seed: seed)]
        if dropout { layers.append(Dropout(rate: 0.1)) }
        layers.append(Dense(inputSize: 32, units: outputs, seed: seed + 1))
        return Sequential(layers)
    }

    func learner(_ model: Module, loss: Loss = .softmaxCrossEntropy(), lr: Float = 1e-2) -> SupervisedLearner {
        let l = SupervisedLearner(model: model, loss: loss, optimizer: Adam(learningRate: lr), seed: 11)
        l.options.verbose = 0
        return l
    }

    func assertSameWeights(_ a: SupervisedLearner, _ b: SupervisedLearner, file: StaticString = #filePath, line: UInt = #line) {
        for (p, q) in zip(a.model.parameters, b.model.parameters) {
            XCTAssertEqual(p.value.scalars, q.value.scalars, file: file, line: line)
        }
    }

    /// A user's own source, written as a user would: batches produced by a generator closure
    /// over arrays, in a fixed order, with a per-sample weight.
    final class GeneratorSource: DataSource {
        let data: InMemoryDataset
        var requests: [BatchRequest] = []
        init(_ data: InMemoryDataset) { self.data = data }
        var sampleCount: Int? { data.count }

        final class Stream: BatchStream {
            let produce: () -> DataBatch?
            init(_ produce: @escaping () -> DataBatch?) { self.produce = produce }
            func next() throws -> DataBatch? { produce() }
        }

        func batches(_ request: BatchRequest) throws -> any BatchStream {
            requests.append(request)
            var b = request.startBatch
            let size = request.batchSize
            return Stream { [data] in
                let start = b * size
                guard start < data.count else { return nil }
                b += 1
                let rows = Array(start..<min(data.count, start + size))
                let batch = data.collate(rows)
                return DataBatch(
                    inputs: batch.inputs, labels: batch.labels,
                    sampleWeights: Tensor(shape: [rows.count], scalars: rows.map { Float(1 + $0 % 2) }))
            }
        }
    }

    func testAUserWrittenSourceTrainsTheDigits() throws {
        let source = GeneratorSource(try Self.digitsTrain())
        let l = learner(mlp())
        let history = try l.fit(source, validation: try Self.digitsVal(), epochs: 8, batchSize: 32)
        XCTAssertGreaterThan(history.epochs.last?.validationAccuracy ?? 0, 0.9)
        XCTAssertEqual(source.requests.count, 8, "one request per epoch")
        XCTAssertEqual(source.requests.map(\.epoch), Array(1...8))
        XCTAssertTrue(source.requests.allSatisfy { $0.training && $0.batchSize == 32 && $0.startBatch == 0 })
    }

    func testTensorSourceTakesTheStepsOfTheInMemorySource() throws {
        let data = try Self.digitsTrain()
        let tensors = TensorDataSource(
            inputs: Tensor(shape: [data.count, data.featureSize], scalars: data.inputs),
            labels: Tensor(shape: [data.count], scalars: data.labels))
        let a = learner(mlp(dropout: true)), b = learner(mlp(dropout: true))
        let ha = try a.fit(data, epochs: 3, batchSize: 50)
        let hb = try b.fit(tensors, epochs: 3, batchSize: 50)
        XCTAssertEqual(ha.epochs.map(\.trainLoss), hb.epochs.map(\.trainLoss))
        assertSameWeights(a, b)
    }

    func testIterationsPerEpochRunsThatManyStepsAcrossPasses() throws {
        let data = InMemoryDataset(
            inputs: (0..<40).map { Float($0 % 7) / 7 }, labels: (0..<20).map { Float($0 % 2) },
            featureSize: 2)
        let model = Sequential([Dense(inputSize: 2, units: 2, seed: 1)])
        let l = learner(model)
        var batchesSeen: [Int] = []
        l.callbacks = [LambdaCallback(batchEnd: { _, batch, _ in batchesSeen.append(batch) })]
        // 20 samples in batches of 8: 3 batches a pass, so 7 iterations take 3 passes.
        try l.fit(data, epochs: 2, batchSize: 8, iterationsPerEpoch: 7)
        XCTAssertEqual(l.globalStep, 14)
        XCTAssertEqual(batchesSeen, Array(0..<7) + Array(0..<7))
        XCTAssertThrowsError(try learner(model).fit(data, epochs: 1, batchSize: 8, iterationsPerEpoch: 0))
    }

    func testClassWeightsScaleEachSamplesLoss() throws {
        let x = Tensor(shape: [4, 3], scalars: [0.1, 0.2, 0.3, -0.5, 0.4, 0.0, 0.3, 0.3, -0.2, 1.0, -1.0, 0.5])
        let y = Tensor(shape: [4], scalars: [0, 1, 2, 1])
        let weights: [Float] = [2, 0.5, 1]
        let a = learner(Sequential([Dense(inputSize: 3, units: 3, seed: 4)]), lr: 0.1)
        a.options.classWeights = weights
        let lossA = try a.trainOnBatch(inputs: x, labels: y)
        let b = learner(Sequential([Dense(inputSize: 3, units: 3, seed: 4)]), lr: 0.1)
        let lossB = try b.trainOnBatch(inputs: x, labels: y, sampleWeights: Tensor(shape: [4], scalars: [2, 0.5, 1, 0.5]))
        XCTAssertEqual(lossA, lossB)
        assertSameWeights(a, b)
        let c = learner(Sequential([Dense(inputSize: 3, units: 3, seed: 4)]), lr: 0.1)
        XCTAssertNotEqual(try c.trainOnBatch(inputs: x, labels: y), lossA, "the weights change the loss")
    }

    func testMultiLabelTargetsTrainThroughFit() throws {
        // Three attributes of each digit: even, at least 5, and a loop in its shape (0, 6, 8, 9).
        let digits = try Self.digitsTrain(), val = try Self.digitsVal()
        func attributes(_ d: InMemoryDataset) -> InMemoryDataset {
            let rows = d.labels.flatMap { label -> [Float] in
                let c = Int(label)
                return [c % 2 == 0 ? 1 : 0, c >= 5 ? 1 : 0, [0, 6, 8, 9].contains(c) ? 1 : 0]
            }
            return InMemoryDataset(inputs: d.inputs, labels: rows, featureSize: d.featureSize, labelSize: 3)
        }
        let train = attributes(digits), check = attributes(val)
        XCTAssertEqual(train.labelSize, 3)
        let l = SupervisedLearner(model: mlp(outputs: 3), mode: .multiLabel(), optimizer: Adam(learningRate: 1e-2), seed: 2)
        l.options.verbose = 0
        let history = try l.fit(train, validation: check, epochs: 10, batchSize: 32)
        let thresh = try XCTUnwrap(history.epochs.last?.validationMetrics["accuracy_thresh"])
        XCTAssertGreaterThan(thresh, 0.9, "per-attribute accuracy on held-out digits")
    }

    func testTrainFromHostTakesTheStepsOfFit() throws {
        let data = try Self.digitsTrain(), val = try Self.digitsVal()
        let x = Tensor(shape: [data.count, data.featureSize], scalars: data.inputs)
        let y = Tensor(shape: [data.count], scalars: data.labels)
        let viaFit = learner(mlp(dropout: true))
        let history = try viaFit.fit(data, validation: val, epochs: 6, batchSize: 32)

        let viaHost = learner(mlp(dropout: true))
        var macroBatches = 0
        for _ in 1...6 {
            try viaHost.trainFromHost(data: x, target: y, batchSize: 32, macroBatchSize: 300) { _, _ in macroBatches += 1 }
        }
        XCTAssertEqual(macroBatches, 6 * 5, "1437 samples in macrobatches of 288 (9 batches of 32)")
        assertSameWeights(viaFit, viaHost)
        let accuracy = try viaHost.evaluate(val).accuracy ?? 0
        XCTAssertEqual(accuracy, history.epochs.last?.validationAccuracy ?? -1)
        XCTAssertGreaterThan(accuracy, 0.9)
    }

    func testTrainOnDeviceTensorsCutsBatchesInOrder() throws {
        let data = try Self.digitsTrain()
        let x = Tensor(shape: [data.count, data.featureSize], scalars: data.inputs)
        let y = Tensor(shape: [data.count], scalars: data.labels)
        let a = learner(mlp()), b = learner(mlp())
        let loss = try a.train(data: x, target: y, batchSize: 64, random: false)
        var start = 0
        while start < data.count {
            let range = start..<min(data.count, start + 64)
            try b.trainOnBatch(inputs: x.slice(alongAxis: 0, range), labels: y.slice(alongAxis: 0, range))
            start += 64
        }
        assertSameWeights(a, b)
        XCTAssertTrue(loss.isFinite && loss > 0)
    }

    func testBalancedEpochsDrawClassesWithTheScheduledProbabilities() throws {
        // 900 samples of class 0 and 100 of class 1: q = (0.9, 0.1).
        let labels = (0..<1000).map { Float($0 < 900 ? 0 : 1) }
        let data = InMemoryDataset(inputs: (0..<2000).map { Float($0 % 13) / 13 }, labels: labels, featureSize: 2)
        let balanced = try BalancedDataset(data, classCount: 2, epochs: 5)
        func classOneShare(_ request: BatchRequest) throws -> Double {
            let stream = try balanced.batches(request)
            var ones = 0.0, total = 0.0
            while let batch = try stream.next() {
                ones += Double(batch.labels.scalars.filter { $0 == 1 }.count)
                total += Double(batch.count)
            }
            XCTAssertEqual(total, 1000)
            return ones / total
        }
        // p(e) = u + (e − 1)/E · (q − u): 0.5 at epoch 1, 0.34 at 3, 0.18 at 5; 4σ of 1000 draws ≤ 0.064.
        for (epoch, expected) in [(1, 0.5), (3, 0.34), (5, 0.18)] {
            let share = try classOneShare(BatchRequest(epoch: epoch, batchSize: 100, training: true, seed: 3))
            XCTAssertEqual(share, expected, accuracy: 4 * (expected * (1 - expected) / 1000).squareRoot(), "epoch \(epoch)")
        }
        XCTAssertEqual(
            try classOneShare(BatchRequest(epoch: 1, batchSize: 100, training: false, seed: 3)), 0.1,
            "validation batches are the data as it is")

        // A run resumed at epoch 3 draws epoch 3's samples: it ends where the straight run ends.
        let dir = try Scratch.directory("tefla-balanced", for: self).path
        func run(_ weights: String) -> SupervisedLearner {
            let l = learner(Sequential([Dense(inputSize: 2, units: 2, seed: 8)]))
            l.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: weights))
            return l
        }
        let straight = run(dir + "/a")
        try straight.fit(balanced, epochs: 5, batchSize: 100)
        try run(dir + "/b").fit(balanced, epochs: 2, batchSize: 100)
        let resumed = run(dir + "/b")
        XCTAssertEqual(try resumed.resumeEpoch(), 3)
        try resumed.fit(balanced, startEpoch: 3, epochs: 5, batchSize: 100)
        assertSameWeights(straight, resumed)
    }

    /// Records the losses `onBatchEnd` receives; says whether it reads them.
    final class LossRecorder: Callback {
        let reads: Bool
        var losses: [Float] = []
        init(reads: Bool) { self.reads = reads }
        var readsBatchLoss: Bool { reads }
        func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws { losses.append(loss) }
    }

    func testDeferredHostReadsLogWhatImmediateReadsLog() throws {
        let data = try Self.digitsTrain(), val = try Self.digitsVal()
        let immediate = learner(mlp(dropout: true)), deferred = learner(mlp(dropout: true))
        immediate.options.defersHostReads = false
        deferred.options.defersHostReads = true
        let seen = LossRecorder(reads: true), unseen = LossRecorder(reads: false)
        immediate.callbacks = [seen]
        deferred.callbacks = [unseen, EarlyStopping(monitor: "val_loss", patience: 5)]
        deferred.options.verbose = 1
        var drawn: [String] = []
        deferred.options.progressOutput = { drawn.append($0) }
        deferred.options.log = { _ in }
        let a = try immediate.fit(data, validation: val, epochs: 3, batchSize: 16)
        let b = try deferred.fit(data, validation: val, epochs: 3, batchSize: 16)
        XCTAssertEqual(a.epochs.map(\.trainLoss), b.epochs.map(\.trainLoss))
        XCTAssertEqual(a.epochs.map(\.metrics), b.epochs.map(\.metrics))
        XCTAssertEqual(a.epochs.map(\.validationLoss), b.epochs.map(\.validationLoss))
        assertSameWeights(immediate, deferred)
        XCTAssertEqual(seen.losses.count, 3 * 90)
        XCTAssertTrue(seen.losses.allSatisfy(\.isFinite), "a callback that reads losses gets every one")
        XCTAssertTrue(unseen.losses.allSatisfy(\.isNaN), "nothing was read back for callbacks that read no loss")
        XCTAssertFalse(drawn.isEmpty, "the bar still shows running values")
    }

    func testMacroBatchesCutOnTheDeviceGiveTheBatchesOfTheSource() throws {
        let data = try Self.digitsTrain()
        for drop in [false, true] {
            let plain = learner(mlp(dropout: true)), macro = learner(mlp(dropout: true))
            let a = try plain.fit(data, epochs: 2, batchSize: 50, dropLastBatch: drop)
            let b = try macro.fit(
                MacroBatchedSource(data, batchesPerMacroBatch: 4, device: macro.device), epochs: 2,
                batchSize: 50, dropLastBatch: drop)
            XCTAssertEqual(a.epochs.map(\.trainLoss), b.epochs.map(\.trainLoss), "dropLastBatch \(drop)")
            XCTAssertEqual(plain.globalStep, macro.globalStep)
            assertSameWeights(plain, macro)
        }
        // From batch 6 of a pass: the second macrobatch's third slice.
        let source = MacroBatchedSource(data, batchesPerMacroBatch: 4, device: .cpu)
        let request = BatchRequest(epoch: 3, batchSize: 50, training: true, seed: 2, startBatch: 6)
        var direct = request
        direct.startBatch = 6
        let want = try XCTUnwrap(try data.batches(direct).next()), got = try XCTUnwrap(try source.batches(request).next())
        XCTAssertEqual(got.inputs.scalars, want.inputs.scalars)
        XCTAssertEqual(got.labels.scalars, want.labels.scalars)
    }

    func testCorruptImageRecordsAreSkippedCountedAndReportedPerEpoch() throws {
        // The PNG digits' validation shard with one data byte of record 3 flipped.
        let source = URL(fileURLWithPath: DataTestFiles.digits + "-png/val/digits-png-val-00000-of-00001.tfrecord")
        var bytes = [UInt8](try Data(contentsOf: source))
        var offset = 0
        for _ in 0..<3 { offset += 12 + Int(bytes[offset]) + Int(bytes[offset + 1]) << 8 + 4 }
        bytes[offset + 12 + 40] ^= 0x5A
        let dir = try Scratch.directory("tefla-skip", for: self)
        let shard = dir.appendingPathComponent("damaged.tfrecord")
        try Data(bytes).write(to: shard)

        var options = ImagePipelineOptions(
            batchSize: 32, height: 32, width: 32, channels: 1,
            keys: FeatureKeys(input: "image/encoded", label: "image/class/label"))
        let model = Sequential([Flatten(), Dense(inputSize: 1024, units: 10, seed: 1)])
        XCTAssertThrowsError(try learner(model).fit(try ImageDataSource(files: [shard.path], options: options), epochs: 1)) {
            XCTAssertTrue("\($0)".contains("record 3") && "\($0)".contains("damaged.tfrecord"), "\($0)")
        }
        options.skipCorrupt = true
        let l = learner(model)
        var lines: [String] = []
        l.options.verbose = 2
        l.options.log = { lines.append($0) }
        let history = try l.fit(try ImageDataSource(files: [shard.path], options: options), epochs: 2, batchSize: 32)
        for epoch in history.epochs {
            XCTAssertEqual(epoch.skipped?.count, 1, "epoch \(epoch.epoch)")
        }
        XCTAssertEqual(l.globalStep, 2 * 12, "359 good records in batches of 32, each epoch")
        XCTAssertTrue(
            lines.contains { $0.hasPrefix("Epoch 2: corrupt records 1 skipped: ") && $0.contains("damaged.tfrecord") }, "\(lines)")
    }
}
