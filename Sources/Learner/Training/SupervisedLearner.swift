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
    public internal(set) var globalStep: UInt64 = 0
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
    /// Test-time augmentation: ``evaluate(_:batchSize:)``, ``evaluateMetrics(_:batchSize:metrics:)``
    /// and ``predict(_:)`` average the predictions for each image and its mirror image.
    public var testTimeFlip = false
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
    /// Also save a checkpoint every this many optimizer steps within an epoch, so a run killed
    /// mid-epoch resumes from there (nil: at epoch ends only). Only the newest such checkpoint is
    /// kept; epoch checkpoints follow ``WeightsDirectory/maxToKeep``.
    public var checkpointEverySteps: Int?
    /// Multiplies each sample's loss by the weight of its class (Keras' `class_weight`;
    /// classification with index labels). Classes beyond the array weigh 1.
    public var classWeights: [Float]?
    /// Data-parallel training: this learner is one replica of a group (see
    /// ``GradientSynchronizer``); `fit` gives it its share of every global batch. Rank 0 alone
    /// logs and writes checkpoints.
    public var gradientSynchronizer: (any GradientSynchronizer)?
    /// Whether `fit` leaves each batch's loss and outputs on the device and reads them back only
    /// when they are shown (the progress bar, at most about ten times a second), at checkpoints
    /// and at the epoch's end, so a GPU is not made to wait for the host every step. nil: on for
    /// GPUs, off on the CPU (where reading costs nothing). Batches are read at once whatever
    /// this says while a callback reads every batch's loss (``Callback/readsBatchLoss``), with
    /// ``onBatchFinish`` set, or in a replica group.
    public var defersHostReads: Bool?
    /// Called after every training batch of `fit` (PuzzleLib's `onBatchFinish`).
    public var onBatchFinish: ((_ learner: SupervisedLearner, _ batch: Int, _ loss: Float) -> Void)?
    /// Passes made by ``trainFromHost(data:target:batchSize:macroBatchSize:random:onMacroBatchFinish:)``
    /// and ``train(data:target:batchSize:random:)``: the key of their shuffles.
    public internal(set) var hostPasses = 0
    var bestCheckpointValue: Float?
    /// A mid-epoch checkpoint found by ``resumeEpoch()``, restored by the next `fit`.
    var pendingMidEpochResume: String?

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

    /// One optimizer step on a batch; returns the batch loss and the model's outputs.
    ///
    /// Applies the schedule (for step index `globalStep`), clips the gradients and updates the
    /// weight average when those are configured. With a ``gradientSynchronizer`` every rank must
    /// call it with its own share of the global batch (``fit`` does that).
    @discardableResult
    public func trainStep(inputs: Tensor, labels: Tensor, sampleWeights: Tensor? = nil) -> (loss: Float, outputs: Tensor) {
        do {
            let (loss, outputs) = try optimizerStep(DataBatch(inputs: inputs.to(device), labels: labels.to(device),
                                                              sampleWeights: sampleWeights?.to(device)), share: 1, sampleOffset: 0)
            return (loss.scalar, outputs)
        } catch {
            preconditionFailure("trainStep: \(error)")
        }
    }

    /// The step behind ``trainStep(inputs:labels:sampleWeights:)`` and ``fit``: `batch` (on the
    /// device) is this rank's part of the global batch, `share` its fraction of the global
    /// batch's samples (the loss is scaled by it so gradients sum over ranks to the global
    /// mean's), `sampleOffset` the global position of its first sample (the key of per-sample
    /// random draws). Returns the scaled loss (whose sum over ranks is the global batch's loss),
    /// still on the device, and the outputs.
    func optimizerStep(_ batch: DataBatch, share: Float, sampleOffset: Int) throws -> (loss: Tensor, outputs: Tensor) {
        applySchedule(step: Int(globalStep))
        globalStep += 1
        model.train()
        model.setRandomKey(seed: seed, step: globalStep, sampleOffset: sampleOffset)
        let parameters = model.parameters.filter { !$0.isFrozen }
        if let overlapped = gradientSynchronizer as? any OverlappedGradientSynchronizer, accumulationSteps <= 1, batch.count > 0 {
            // Each gradient bucket's all-reduce starts while the backward pass goes on.
            let outputs = model(batch.inputs)
            var value = loss(outputs, batch.labels, sampleWeights: batch.sampleWeights)
            if share != 1 { value = value * share }
            try overlapped.backward(value, parameters: parameters)
            return finishStep(parameters, loss: value.detached(), outputs: outputs)
        }
        let (value, outputs, grads): (Tensor, Tensor, [Tensor])
        if batch.count == 0 {
            // A rank whose share of a short last batch is empty contributes nothing.
            (value, outputs, grads) = (Tensor.zeros([], on: device), batch.inputs, parameters.map { Tensor.zeros($0.shape, on: device) })
        } else {
            (value, outputs, grads) = accumulatedGradients(inputs: batch.inputs, labels: batch.labels,
                                                           sampleWeights: batch.sampleWeights, parameters: parameters,
                                                           scale: share)
        }
        for (p, g) in zip(parameters, grads) { p.gradient = g }
        try gradientSynchronizer?.allReduceGradients(parameters)
        return finishStep(parameters, loss: value, outputs: outputs)
    }

    /// Clipping, the optimizer's update and the weight average, once every gradient is set.
    private func finishStep(_ parameters: [Parameter], loss value: Tensor, outputs: Tensor) -> (loss: Tensor, outputs: Tensor) {
        if let clipValue { GradientClipping.clipValue(parameters, limit: clipValue) }
        if let clipNorm { lastGradientNorm = GradientClipping.clipGlobalNorm(parameters, maxNorm: clipNorm) }
        optimizer.step(parameters)
        for p in parameters { p.gradient = nil }
        ema?.update(model.parameters)
        return (value, outputs.detached())
    }

    /// Loss, outputs and gradients of one batch, the loss multiplied by `scale`; with
    /// ``accumulationSteps`` k > 1 the batch runs
    /// as k slices whose gradients are summed, each slice's mean loss weighted by its share of
    /// the batch, so the update equals that of the whole batch in one piece (up to rounding and
    /// batch statistics) while activations are held for one slice at a time.
    private func accumulatedGradients(inputs: Tensor, labels: Tensor, sampleWeights: Tensor?,
                                      parameters: [Parameter], scale: Float) -> (Tensor, Tensor, [Tensor]) {
        let n = inputs.shape.first ?? 1
        let k = Swift.min(Swift.max(accumulationSteps, 1), n)
        if k == 1 {
            let outputs = model(inputs)
            var value = loss(outputs, labels, sampleWeights: sampleWeights)
            if scale != 1 { value = value * scale }
            return (value.detached(), outputs, gradients(of: value, wrt: parameters.map(\.value)))
        }
        var total: Tensor?
        var outputs: [Tensor] = []
        var summed: [Tensor] = []
        for part in 0..<k {
            let range = (part * n / k)..<((part + 1) * n / k)
            let out = model(inputs.slice(alongAxis: 0, range).detached())
            let value = loss(out, labels.slice(alongAxis: 0, range).detached(),
                             sampleWeights: sampleWeights?.slice(alongAxis: 0, range).detached()) * (scale * Float(range.count) / Float(n))
            let grads = gradients(of: value, wrt: parameters.map(\.value))
            summed = summed.isEmpty ? grads : withoutGradients { zip(summed, grads).map { $0 + $1 } }
            total = withoutGradients { total.map { $0 + value.detached() } ?? value.detached() }
            outputs.append(out.detached())
        }
        return (total ?? Tensor.zeros([], on: device), Tensor.concatenate(outputs, alongAxis: 0), summed)
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
    public func evaluate(_ data: any DataSource, batchSize: Int = 256) -> (loss: Float, accuracy: Float?) {
        let result = evaluateMetrics(data, batchSize: batchSize, metrics: loss.isClassification ? [Accuracy()] : [])
        return (result.loss, result.metrics["accuracy"])
    }

    /// Mean loss and every metric (the learner's, unless given) over a data set, in evaluation
    /// mode, with the averaged weights when ``emaDecay`` is set.
    public func evaluateMetrics(_ data: any DataSource, batchSize: Int = 256,
                                metrics: [any Metric]? = nil) -> (loss: Float, metrics: [String: Float]) {
        do {
            return try measure(data, batchSize: batchSize, metrics: metrics)
        } catch {
            preconditionFailure("evaluation data: \(error)")
        }
    }

    /// ``evaluateMetrics(_:batchSize:metrics:)`` that passes on the data's errors.
    public func measure(_ data: any DataSource, batchSize: Int = 256,
                        metrics: [any Metric]? = nil) throws -> (loss: Float, metrics: [String: Float]) {
        var measured = metrics ?? self.metrics
        for i in measured.indices { measured[i].reset() }
        var lossSum = 0.0, seen = 0
        let stream = try data.batches(BatchRequest(epoch: 1, batchSize: Swift.max(batchSize, 1), training: false, seed: seed))
        try withEvaluationWeights {
            try withoutGradients {
                while let batch = try stream.next()?.to(device) {
                    let out = evaluationOutputs(batch.inputs)
                    lossSum += Double(loss(out, batch.labels, sampleWeights: batch.sampleWeights).scalar) * Double(batch.count)
                    seen += batch.count
                    for i in measured.indices { measured[i].update(outputs: out, labels: batch.labels) }
                }
            }
        }
        return (Float(lossSum / Double(Swift.max(seen, 1))), SupervisedLearner.values(of: measured))
    }

    /// The model's outputs for a batch, in evaluation mode (with the averaged weights when kept).
    public func predict(_ inputs: Tensor) -> Tensor {
        withEvaluationWeights { withoutGradients { evaluationOutputs(inputs) } }
    }

    /// Runs `body` in evaluation mode, with the EMA weights swapped in when kept.
    func withEvaluationWeights<R>(_ body: () throws -> R) rethrows -> R {
        model.eval()
        defer { model.train() }
        guard let ema else { return try body() }
        return try ema.withAveragedWeights(model.parameters, body)
    }

    // MARK: - Helpers

    func checkFeatureSize(_ data: InMemoryDataset) throws {
        guard let first = model.namedParameters.first(where: { $0.name.hasSuffix("weight") })?.parameter,
              first.shape.count == 2 else { return }
        if first.shape[1] != data.featureSize {
            throw LearnerError.featureSizeMismatch(expected: first.shape[1], got: data.featureSize,
                                                   source: data.sources.first.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? "data")
        }
    }

    /// The epoch's sample order: a Fisher–Yates shuffle keyed by (seed, epoch) alone, so a
    /// resumed run sees the same order.
    /// Pass `pass` > 0 of an epoch (an epoch of more batches than the data holds) gets its own order.
    public static func shuffledOrder(count: Int, seed: UInt64, epoch: Int, pass: Int = 0) -> [Int] {
        var generator = RandomGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(epoch) ^ (UInt64(pass) << 40))
        var order = Array(0..<count)
        order.shuffle(using: &generator)
        return order
    }

    /// The samples at `indices` (``InMemoryDataset/collate(_:)``) on this learner's device.
    public func deviceBatch(_ data: InMemoryDataset, _ indices: [Int]) -> (Tensor, Tensor) {
        let b = data.collate(indices).to(device)
        return (b.inputs, b.labels)
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
