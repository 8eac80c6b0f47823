import Foundation

/// Trains a model on labelled examples: tefla's `SupervisedLearner`, Keras' `fit`.
///
/// ```swift
/// let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(), seed: 7)
/// let history = try learner.fit(dataDir: "Data/digits/train", featureKeys: FeatureKeys(input: "image", label: "label"),
///                               startEpoch: 1, validationDir: "Data/digits/val", epochs: 20, batchSize: 32)
/// ```
public final class SupervisedLearner {
    public let model: Module
    public let loss: Loss
    public let optimizer: Optimizer
    /// Seeds shuffling and dropout; the same seed gives the same run.
    public let seed: UInt64
    /// 0: silent, 2: one line per epoch.
    public var verbose: Int = 2
    /// Where epoch lines go (standard output by default).
    public var log: (String) -> Void = { line in
        print(line)
        fflush(stdout)
    }
    /// Optimizer steps taken so far (the key of each step's random draws).
    public private(set) var globalStep: UInt64 = 0
    /// Where the model's parameters live and the batches are computed.
    public let device: Device

    /// - Parameter device: `.cpu` or `.cuda(i)`; for a GPU call ``CUDAContext/use(device:memoryFraction:)`` first.
    ///   The model's parameters are moved there.
    public init(model: Module, loss: Loss, optimizer: Optimizer, seed: UInt64 = 0, device: Device = .cpu) {
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.seed = seed
        self.device = device
        model.move(to: device)
    }

    /// Trains on the TFRecord shards in `dataDir` for epochs `startEpoch...epochs`
    /// (1-based, as tefla counts), evaluating on `validationDir` after each epoch.
    @discardableResult
    public func fit(dataDir: String, featureKeys: FeatureKeys, startEpoch: Int = 1, validationDir: String? = nil,
                    epochs: Int = 10, batchSize: Int = 32, dropLastBatch: Bool = false) throws -> History {
        let training = try InMemoryDataset.load(directory: dataDir, keys: featureKeys)
        let validation = try validationDir.map { try InMemoryDataset.load(directory: $0, keys: featureKeys) }
        return try fit(training: training, validation: validation, startEpoch: startEpoch, epochs: epochs,
                       batchSize: batchSize, dropLastBatch: dropLastBatch)
    }

    /// Trains on data already in memory.
    @discardableResult
    public func fit(training: InMemoryDataset, validation: InMemoryDataset? = nil, startEpoch: Int = 1, epochs: Int = 10,
                    batchSize: Int = 32, dropLastBatch: Bool = false) throws -> History {
        guard batchSize > 0 else { throw LearnerError.invalidArgument("batchSize must be > 0, got \(batchSize)") }
        guard startEpoch >= 1 else { throw LearnerError.invalidArgument("startEpoch counts from 1, got \(startEpoch)") }
        guard epochs >= startEpoch else {
            throw LearnerError.invalidArgument("epochs (\(epochs)) is less than startEpoch (\(startEpoch)): nothing to train")
        }
        guard training.count > 0 else { throw LearnerError.invalidArgument("the training set \(training.sources.first ?? "") is empty") }
        try checkFeatureSize(training)
        if let validation { try checkFeatureSize(validation) }

        let batchesPerEpoch = dropLastBatch ? training.count / batchSize : (training.count + batchSize - 1) / batchSize
        globalStep = UInt64((startEpoch - 1) * batchesPerEpoch)
        var history = History()
        for epoch in startEpoch...epochs {
            let started = Date()
            let order = SupervisedLearner.shuffledOrder(count: training.count, seed: seed, epoch: epoch)
            var lossSum = 0.0, correct = 0, seen = 0
            model.train()
            for b in 0..<batchesPerEpoch {
                let indices = Array(order[(b * batchSize)..<min(training.count, (b + 1) * batchSize)])
                let (x, y) = deviceBatch(training, indices)
                let (batchLoss, predictions) = trainStep(inputs: x, labels: y)
                lossSum += Double(batchLoss) * Double(indices.count)
                seen += indices.count
                if loss.isClassification { correct += SupervisedLearner.correctCount(predictions, y) }
            }
            let trainTime = Date().timeIntervalSince(started)
            var entry = EpochLog(epoch: epoch, trainLoss: Float(lossSum / Double(seen)),
                                 trainAccuracy: loss.isClassification ? Float(correct) / Float(seen) : nil,
                                 validationLoss: nil, validationAccuracy: nil, seconds: 0,
                                 trainSamplesPerSecond: Double(seen) / max(trainTime, 1e-9))
            if let validation {
                let result = evaluate(validation, batchSize: max(batchSize, 256))
                entry.validationLoss = result.loss
                entry.validationAccuracy = result.accuracy
            }
            entry.seconds = Date().timeIntervalSince(started)
            history.epochs.append(entry)
            if verbose > 0 { log(SupervisedLearner.format(entry, of: epochs)) }
        }
        return history
    }

    /// One optimizer step on a batch; returns the batch loss and the model's outputs.
    @discardableResult
    public func trainStep(inputs: Tensor, labels: Tensor, sampleWeights: Tensor? = nil) -> (loss: Float, outputs: Tensor) {
        globalStep += 1
        model.train()
        model.setRandomKey(seed: seed, step: globalStep)
        let parameters = model.parameters.filter { !$0.isFrozen }
        let outputs = model(inputs)
        let value = loss(outputs, labels, sampleWeights: sampleWeights)
        let grads = gradients(of: value, wrt: parameters.map(\.value))
        for (p, g) in zip(parameters, grads) { p.gradient = g }
        optimizer.step(parameters)
        for p in parameters { p.gradient = nil }
        return (value.scalar, outputs.detached())
    }

    /// Mean loss and accuracy (classification) over a data set, in evaluation mode.
    public func evaluate(_ data: InMemoryDataset, batchSize: Int = 256) -> (loss: Float, accuracy: Float?) {
        model.eval()
        defer { model.train() }
        var lossSum = 0.0, correct = 0
        withoutGradients {
            var start = 0
            while start < data.count {
                let indices = Array(start..<min(data.count, start + batchSize))
                let (x, y) = deviceBatch(data, indices)
                let out = model(x)
                lossSum += Double(loss(out, y).scalar) * Double(indices.count)
                if loss.isClassification { correct += SupervisedLearner.correctCount(out, y) }
                start += batchSize
            }
        }
        return (Float(lossSum / Double(max(data.count, 1))), loss.isClassification ? Float(correct) / Float(max(data.count, 1)) : nil)
    }

    /// The model's outputs for a batch, in evaluation mode.
    public func predict(_ inputs: Tensor) -> Tensor {
        model.eval()
        defer { model.train() }
        return withoutGradients { model(inputs) }
    }

    // MARK: - Helpers

    private func checkFeatureSize(_ data: InMemoryDataset) throws {
        guard let first = model.namedParameters.first(where: { $0.name.hasSuffix("weight") })?.parameter,
              first.shape.count == 2 else { return }
        if first.shape[1] != data.featureSize {
            throw LearnerError.featureSizeMismatch(expected: first.shape[1], got: data.featureSize,
                                                   source: data.sources.first.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? "data")
        }
    }

    /// The epoch's sample order: a Fisher–Yates shuffle keyed by (seed, epoch) alone, so a
    /// resumed run sees the same order.
    static func shuffledOrder(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var generator = RandomGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(epoch))
        var order = Array(0..<count)
        order.shuffle(using: &generator)
        return order
    }

    /// Collates the samples at `indices` into contiguous [B, featureSize] inputs and [B] labels.
    static func batch(_ data: InMemoryDataset, _ indices: [Int]) -> (Tensor, Tensor) {
        let d = data.featureSize
        let x = Storage(count: indices.count * d)
        let y = Storage(count: indices.count)
        data.inputs.withUnsafeBufferPointer { src in
            for (row, i) in indices.enumerated() {
                (x.pointer + row * d).update(from: src.baseAddress! + i * d, count: d)
                y.pointer[row] = data.labels[i]
            }
        }
        return (Tensor(shape: [indices.count, d], storage: x), Tensor(shape: [indices.count], storage: y))
    }

    /// A batch on this learner's device.
    func deviceBatch(_ data: InMemoryDataset, _ indices: [Int]) -> (Tensor, Tensor) {
        let (x, y) = SupervisedLearner.batch(data, indices)
        return (x.to(device), y.to(device))
    }

    static func correctCount(_ outputs: Tensor, _ labels: Tensor) -> Int {
        let predicted = outputs.argmax(alongAxis: -1).scalars
        let truth = labels.scalars
        return zip(predicted, truth).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
    }

    static func format(_ e: EpochLog, of total: Int) -> String {
        var parts = ["Epoch \(e.epoch)/\(total)", String(format: "%.2fs", e.seconds), String(format: "loss: %.4f", e.trainLoss)]
        if let a = e.trainAccuracy { parts.append(String(format: "accuracy: %.4f", a)) }
        if let l = e.validationLoss { parts.append(String(format: "val_loss: %.4f", l)) }
        if let a = e.validationAccuracy { parts.append(String(format: "val_accuracy: %.4f", a)) }
        parts.append(String(format: "%.0f samples/s", e.trainSamplesPerSecond))
        return parts.joined(separator: " - ")
    }
}
