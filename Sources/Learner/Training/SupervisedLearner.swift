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
    /// 0: silent, 1: a live progress bar per epoch (Keras), 2: one line per epoch.
    public var verbose: Int = 2
    /// Where epoch lines go (standard output by default).
    public var log: (String) -> Void = { line in
        print(line)
        fflush(stdout)
    }
    /// Where the live progress bar of `verbose` 1 is drawn (text without newlines); nil sends
    /// plain progress lines to ``log`` instead. Standard output when it is a terminal.
    public var progressOutput: ((String) -> Void)? = SupervisedLearner.terminalOutput()
    /// Optimizer steps taken so far (the key of each step's random draws and of the schedule).
    public private(set) var globalStep: UInt64 = 0
    /// Where the model's parameters live and the batches are computed.
    public let device: Device

    /// Sets `optimizer.learningRate` (and momentum/β₁ where it cycles it) before every step.
    public var schedule: (any LearningRateSchedule)?
    /// The momentum the schedule set for the current step, nil without a cycling schedule.
    public private(set) var scheduledMomentum: Float?
    /// Measured over each epoch's training batches and on the validation set; defaults to the
    /// loss's ``TaskMode/defaultMetrics``.
    public var metrics: [any Metric]
    /// Hooks called by `fit`, in order.
    public var callbacks: [Callback] = []
    /// Set by a callback to end `fit` after the current batch.
    public var stopTraining = false
    /// Scales gradients so their global L2 norm is at most this (nil: off).
    public var clipNorm: Float?
    /// Clamps each gradient element to ±this (nil: off).
    public var clipValue: Float?
    /// Keeps an exponential moving average of the weights with this decay, used by
    /// ``evaluate(_:batchSize:)`` and ``predict(_:)`` (nil: off).
    public var emaDecay: Float? {
        didSet { ema = emaDecay.map { WeightEMA(decay: $0) } }
    }
    /// The moving average of the weights when ``emaDecay`` is set.
    public internal(set) var ema: WeightEMA?
    /// The global norm of the last step's gradients before clipping (when `clipNorm` is set).
    public private(set) var lastGradientNorm: Float?
    /// Where `fit` saves a checkpoint after every epoch and resumes from when `startEpoch` > 1
    /// (tefla's `weights_dir`, with `max_to_keep` on the directory).
    public var weightsDirectory: WeightsDirectory?
    /// Gradient accumulation: each batch runs as this many slices, summed before one optimizer
    /// step (the update of the whole batch with the memory of a slice).
    public var accumulationSteps = 1
    /// Also keep the checkpoint with the best value of ``checkpointMonitor`` as `best/`.
    public var saveBestCheckpoint = false
    /// The value that decides the best checkpoint (Keras names: `val_loss`, `val_accuracy`, ...).
    public var checkpointMonitor = "val_loss"
    /// The resolved configuration stored with each checkpoint (the CLI sets it).
    public var checkpointConfig: String?
    var bestCheckpointValue: Float?

    /// - Parameter device: `.cpu` or `.cuda(i)`; for a GPU call ``CUDAContext/use(device:memoryFraction:)`` first.
    ///   The model's parameters are moved there.
    public init(model: Module, loss: Loss, optimizer: Optimizer, seed: UInt64 = 0, device: Device = .cpu) {
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.seed = seed
        self.device = device
        self.metrics = TaskMode(loss: loss).defaultMetrics
        model.move(to: device)
    }

    /// A learner with the mode's default loss and metrics.
    public convenience init(model: Module, mode: TaskMode, optimizer: Optimizer, seed: UInt64 = 0, device: Device = .cpu) {
        self.init(model: model, loss: mode.defaultLoss, optimizer: optimizer, seed: seed, device: device)
        self.metrics = mode.defaultMetrics
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

        let batchesPerEpoch = SupervisedLearner.batchesPerEpoch(count: training.count, batchSize: batchSize,
                                                                 dropLastBatch: dropLastBatch)
        globalStep = UInt64((startEpoch - 1) * batchesPerEpoch)
        try resumeFromWeightsDirectory(startEpoch: startEpoch)
        stopTraining = false
        var history = History()
        for callback in callbacks { try callback.onTrainBegin(self) }
        for epoch in startEpoch...epochs {
            let started = Date()
            for callback in callbacks { try callback.onEpochBegin(self, epoch: epoch) }
            let order = SupervisedLearner.shuffledOrder(count: training.count, seed: seed, epoch: epoch)
            var lossSum = 0.0, seen = 0
            var epochMetrics = metrics
            for i in epochMetrics.indices { epochMetrics[i].reset() }
            var bar = verbose == 1 ? makeProgressBar(epoch: epoch, epochs: epochs, batches: batchesPerEpoch, started: started) : nil
            model.train()
            for b in 0..<batchesPerEpoch {
                applySchedule(step: Int(globalStep))  // before the hooks, so they see this step's rate
                for callback in callbacks { try callback.onBatchBegin(self, batch: b) }
                let indices = Array(order[(b * batchSize)..<min(training.count, (b + 1) * batchSize)])
                let (x, y) = deviceBatch(training, indices)
                let (batchLoss, predictions) = trainStep(inputs: x, labels: y)
                lossSum += Double(batchLoss) * Double(indices.count)
                seen += indices.count
                for i in epochMetrics.indices { epochMetrics[i].update(outputs: predictions, labels: y) }
                for callback in callbacks { try callback.onBatchEnd(self, batch: b, loss: batchLoss) }
                let runningLoss = Float(lossSum / Double(seen))
                bar?.update(batch: b + 1, samples: seen) {
                    [("loss", runningLoss)] + SupervisedLearner.ordered(SupervisedLearner.values(of: epochMetrics))
                }
                if stopTraining { break }
            }
            bar?.finish()
            let trainTime = Date().timeIntervalSince(started)
            let trainValues = SupervisedLearner.values(of: epochMetrics)
            var entry = EpochLog(epoch: epoch, trainLoss: Float(lossSum / Double(max(seen, 1))),
                                 trainAccuracy: trainValues["accuracy"],
                                 validationLoss: nil, validationAccuracy: nil, seconds: 0,
                                 trainSamplesPerSecond: Double(seen) / max(trainTime, 1e-9))
            entry.metrics = trainValues
            entry.learningRate = optimizer.learningRate
            if let validation {
                let result = evaluateMetrics(validation, batchSize: max(batchSize, 256))
                entry.validationLoss = result.loss
                entry.validationMetrics = result.metrics
                entry.validationAccuracy = result.metrics["accuracy"]
            }
            entry.seconds = Date().timeIntervalSince(started)
            history.epochs.append(entry)
            if verbose > 0 { log(SupervisedLearner.format(entry, of: epochs, showLearningRate: schedule != nil)) }
            try saveToWeightsDirectory(entry)
            for callback in callbacks { try callback.onEpochEnd(self, log: entry) }
            if stopTraining { break }
        }
        for callback in callbacks { try callback.onTrainEnd(self, history: history) }
        return history
    }

    /// One optimizer step on a batch; returns the batch loss and the model's outputs.
    ///
    /// Applies the schedule (for step index `globalStep`), clips the gradients and updates the
    /// weight average when those are configured.
    @discardableResult
    public func trainStep(inputs: Tensor, labels: Tensor, sampleWeights: Tensor? = nil) -> (loss: Float, outputs: Tensor) {
        applySchedule(step: Int(globalStep))
        globalStep += 1
        model.train()
        model.setRandomKey(seed: seed, step: globalStep)
        let parameters = model.parameters.filter { !$0.isFrozen }
        let (value, outputs, grads) = accumulatedGradients(inputs: inputs, labels: labels, sampleWeights: sampleWeights,
                                                           parameters: parameters)
        for (p, g) in zip(parameters, grads) { p.gradient = g }
        if let clipValue { GradientClipping.clipValue(parameters, limit: clipValue) }
        if let clipNorm { lastGradientNorm = GradientClipping.clipGlobalNorm(parameters, maxNorm: clipNorm) }
        optimizer.step(parameters)
        for p in parameters { p.gradient = nil }
        ema?.update(model.parameters)
        return (value, outputs.detached())
    }

    /// Loss, outputs and gradients of one batch; with ``accumulationSteps`` k > 1 the batch runs
    /// as k slices whose gradients are summed, each slice's mean loss weighted by its share of
    /// the batch, so the update equals that of the whole batch in one piece (up to rounding and
    /// batch statistics) while activations are held for one slice at a time.
    private func accumulatedGradients(inputs: Tensor, labels: Tensor, sampleWeights: Tensor?,
                                      parameters: [Parameter]) -> (Float, Tensor, [Tensor]) {
        let n = inputs.shape.first ?? 1
        let k = Swift.min(Swift.max(accumulationSteps, 1), n)
        if k == 1 {
            let outputs = model(inputs)
            let value = loss(outputs, labels, sampleWeights: sampleWeights)
            return (value.scalar, outputs, gradients(of: value, wrt: parameters.map(\.value)))
        }
        var total: Float = 0
        var outputs: [Tensor] = []
        var summed: [Tensor] = []
        for part in 0..<k {
            let range = (part * n / k)..<((part + 1) * n / k)
            let out = model(inputs.slice(alongAxis: 0, range).detached())
            let value = loss(out, labels.slice(alongAxis: 0, range).detached(),
                             sampleWeights: sampleWeights?.slice(alongAxis: 0, range).detached()) * (Float(range.count) / Float(n))
            let grads = gradients(of: value, wrt: parameters.map(\.value))
            summed = summed.isEmpty ? grads : withoutGradients { zip(summed, grads).map { $0 + $1 } }
            total += value.scalar
            outputs.append(out.detached())
        }
        return (total, Tensor.concatenate(outputs, alongAxis: 0), summed)
    }

    /// Puts the step counter back (LR finder).
    func restoreGlobalStep(_ step: UInt64) { globalStep = step }

    /// Sets the optimizer's learning rate (and momentum) to the schedule's values at `step`.
    public func applySchedule(step: Int) {
        guard let schedule else { return }
        optimizer.learningRate = schedule.learningRate(at: step)
        if let m = schedule.momentum(at: step) {
            optimizer.setScheduledMomentum(m)
            scheduledMomentum = m
        }
    }

    /// Mean loss and accuracy (classification) over a data set, in evaluation mode.
    public func evaluate(_ data: InMemoryDataset, batchSize: Int = 256) -> (loss: Float, accuracy: Float?) {
        let result = evaluateMetrics(data, batchSize: batchSize, metrics: loss.isClassification ? [Accuracy()] : [])
        return (result.loss, result.metrics["accuracy"])
    }

    /// Mean loss and every metric (the learner's, unless given) over a data set, in evaluation
    /// mode, with the averaged weights when ``emaDecay`` is set.
    public func evaluateMetrics(_ data: InMemoryDataset, batchSize: Int = 256,
                                metrics: [any Metric]? = nil) -> (loss: Float, metrics: [String: Float]) {
        var measured = metrics ?? self.metrics
        for i in measured.indices { measured[i].reset() }
        var lossSum = 0.0
        withEvaluationWeights {
            withoutGradients {
                var start = 0
                while start < data.count {
                    let indices = Array(start..<min(data.count, start + max(batchSize, 1)))
                    let (x, y) = deviceBatch(data, indices)
                    let out = model(x)
                    lossSum += Double(loss(out, y).scalar) * Double(indices.count)
                    for i in measured.indices { measured[i].update(outputs: out, labels: y) }
                    start += max(batchSize, 1)
                }
            }
        }
        return (Float(lossSum / Double(max(data.count, 1))), SupervisedLearner.values(of: measured))
    }

    /// The model's outputs for a batch, in evaluation mode (with the averaged weights when kept).
    public func predict(_ inputs: Tensor) -> Tensor {
        withEvaluationWeights { withoutGradients { model(inputs) } }
    }

    /// Runs `body` in evaluation mode, with the EMA weights swapped in when kept.
    func withEvaluationWeights<R>(_ body: () -> R) -> R {
        model.eval()
        defer { model.train() }
        guard let ema else { return body() }
        return ema.withAveragedWeights(model.parameters, body)
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
    public func deviceBatch(_ data: InMemoryDataset, _ indices: [Int]) -> (Tensor, Tensor) {
        let (x, y) = SupervisedLearner.batch(data, indices)
        return (x.to(device), y.to(device))
    }

    static func correctCount(_ outputs: Tensor, _ labels: Tensor) -> Int {
        let predicted = outputs.argmax(alongAxis: -1).scalars
        let truth = labels.scalars
        return zip(predicted, truth).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
    }

    static func batchesPerEpoch(count: Int, batchSize: Int, dropLastBatch: Bool) -> Int {
        dropLastBatch ? count / batchSize : (count + batchSize - 1) / batchSize
    }

    /// Every metric's values, merged into one dictionary.
    static func values(of metrics: [any Metric]) -> [String: Float] {
        var result: [String: Float] = [:]
        for m in metrics { result.merge(m.values()) { _, new in new } }
        return result
    }

    /// Metric values in display order: accuracy first, then by name.
    static func ordered(_ values: [String: Float]) -> [(String, Float)] {
        values.sorted { a, b in
            if (a.key == "accuracy") != (b.key == "accuracy") { return a.key == "accuracy" }
            return a.key < b.key
        }.map { ($0.key, $0.value) }
    }

    /// Standard output as a progress stream when it is a terminal, else nil.
    static func terminalOutput() -> ((String) -> Void)? {
        guard isatty(STDOUT_FILENO) != 0 else { return nil }
        return { text in
            fputs(text, stdout)
            fflush(stdout)
        }
    }

    func makeProgressBar(epoch: Int, epochs: Int, batches: Int, started: Date) -> ProgressBar {
        if let progressOutput {
            return ProgressBar(epoch: epoch, epochs: epochs, totalBatches: batches, isTerminal: true, started: started,
                               write: progressOutput)
        }
        let log = self.log
        return ProgressBar(epoch: epoch, epochs: epochs, totalBatches: batches, isTerminal: false, started: started,
                           write: log)
    }

    /// The epoch line of `verbose` 2 (Keras' format): `Epoch 3/20 - 0.41s - loss: … - val_accuracy: …`.
    static func format(_ e: EpochLog, of total: Int, showLearningRate: Bool = false) -> String {
        var parts = ["Epoch \(e.epoch)/\(total)", String(format: "%.2fs", e.seconds), String(format: "loss: %.4f", e.trainLoss)]
        var train = ordered(e.metrics)
        if e.metrics["accuracy"] == nil, let a = e.trainAccuracy { train.insert(("accuracy", a), at: 0) }
        for (name, value) in train { parts.append(String(format: "\(name): %.4f", value)) }
        if let l = e.validationLoss { parts.append(String(format: "val_loss: %.4f", l)) }
        var validation = ordered(e.validationMetrics)
        if e.validationMetrics["accuracy"] == nil, let a = e.validationAccuracy { validation.insert(("accuracy", a), at: 0) }
        for (name, value) in validation { parts.append(String(format: "val_\(name): %.4f", value)) }
        if showLearningRate, let lr = e.learningRate { parts.append(String(format: "lr: %.3g", lr)) }
        parts.append(String(format: "%.0f samples/s", e.trainSamplesPerSecond))
        return parts.joined(separator: " - ")
    }
}
