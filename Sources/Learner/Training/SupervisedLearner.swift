import Foundation
import Logging

/// Trains a model on labelled examples: tefla's `SupervisedLearner`, Keras' `fit`.
///
/// ```swift
/// let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(), seed: 7)
/// let history = try learner.fit(dataDir: "Data/digits/train", featureKeys: FeatureKeys(input: "image", label: "label"),
///                               startEpoch: 1, validationDir: "Data/digits/val", epochs: 20, batchSize: 32)
/// ```
///
/// The learner holds the model, what trains it (loss, optimizer, ``TrainingOptions``) and the
/// run's position (``globalStep``). `fit`'s loop (SupervisedLearner+Fit.swift) steps through
/// batches and calls its components, the ``Callback``s, in ``Callback/order``: the progress
/// logger, the checkpointing (``checkpoint``) and the caller's callbacks.
public final class SupervisedLearner {
    public let model: Module
    public let loss: Loss
    public let optimizer: Optimizer
    /// Seeds shuffling and dropout; the same seed gives the same run.
    public let seed: UInt64
    /// Where the model's parameters live and the batches are computed.
    public let device: Device
    /// Measured over each epoch's training batches and on the validation set; defaults to the
    /// loss's ``TaskMode/defaultMetrics``.
    public var metrics: [any Metric]
    /// How the learner trains and reports; see ``TrainingOptions``.
    public var options: TrainingOptions {
        didSet { if options.emaDecay != oldValue.emaDecay { ema = options.emaDecay.map { WeightEMA(decay: $0) } } }
    }
    /// Hooks called by `fit`, in ``Callback/order`` (then in this order).
    public var callbacks: [Callback] = []
    /// Where `fit` saves checkpoints and resumes from (tefla's `weights_dir`): per epoch, the
    /// best, every N steps. A ``ModelCheckpoint`` among ``callbacks`` does the same.
    public var checkpoint: ModelCheckpoint?
    /// Data-parallel training: this learner is one replica of a group (see
    /// ``GradientSynchronizer``); `fit` gives it its share of every global batch. Rank 0 alone
    /// logs and writes checkpoints.
    public var gradientSynchronizer: (any GradientSynchronizer)?
    /// Optimizer steps taken so far (the key of each step's random draws and of the schedule).
    public internal(set) var globalStep: UInt64 = 0
    /// Set by a callback to end `fit` after the current batch.
    public var stopTraining = false
    /// The signal that stopped the last `fit` before its end (``StopOnSignal``), nil otherwise.
    public internal(set) var stoppedBySignal: Int32?
    /// Whether `fit` is stopping inside an epoch to be resumed there: the epoch's end (validation,
    /// its hooks and checkpoint) is left to the resumed run.
    var stopsMidEpoch = false
    /// The loss scale of fp16 training (``TrainingOptions/precision`` `.fp16`), made at its first
    /// step; nil before and in other precisions.
    public internal(set) var lossScaler: LossScaler?
    /// The moving average of the weights when ``TrainingOptions/emaDecay`` is set.
    public internal(set) var ema: WeightEMA?
    /// The run `fit` is in (its epoch, batch and running figures), nil outside `fit`.
    public internal(set) var run: FitRun?
    /// The global norm of the last step's gradients before clipping (when `clipNorm` is set).
    public internal(set) var lastGradientNorm: Float?
    /// Passes made by ``trainFromHost(data:target:batchSize:macroBatchSize:random:onMacroBatchFinish:)``
    /// and ``train(data:target:batchSize:random:)``: the key of their shuffles.
    public internal(set) var hostPasses = 0
    /// The model's per-sample output shape for each per-sample input shape it was checked on.
    var inferredShapes: [[Int]: [Int]] = [:]

    /// - Parameters:
    ///   - model: the model to train.
    ///   - loss: what training minimises.
    ///   - optimizer: how the parameters are updated.
    ///   - seed: seeds shuffling and dropout; the same seed gives the same run.
    ///   - device: `.cpu` or `.cuda(i)`; for a GPU call ``CUDAContext/use(device:memoryFraction:)`` first.
    ///     The model's parameters are moved there.
    ///   - options: how the learner trains and reports.
    public init(
        model: Module, loss: Loss, optimizer: Optimizer, seed: UInt64 = 0, device: Device = .cpu,
        options: TrainingOptions = TrainingOptions()
    ) {
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.seed = seed
        self.device = device
        self.options = options
        self.metrics = TaskMode(loss: loss).defaultMetrics
        ema = options.emaDecay.map { WeightEMA(decay: $0) }
        model.move(to: device)
    }

    /// A learner with the mode's default loss and metrics.
    public convenience init(
        model: Module, mode: TaskMode, optimizer: Optimizer, seed: UInt64 = 0, device: Device = .cpu,
        options: TrainingOptions = TrainingOptions()
    ) {
        self.init(model: model, loss: mode.defaultLoss, optimizer: optimizer, seed: seed, device: device, options: options)
        self.metrics = mode.defaultMetrics
    }

    /// Sends a message through ``TrainingOptions/logger`` (on data-parallel rank 0 alone).
    public func note(_ message: String, level: Logger.Level = .notice) {
        if writesCheckpoints { options.logger.log(level: level, "\(message)") }
    }

    /// Mean loss and accuracy (classification) over a data set, in evaluation mode.
    public func evaluate(_ data: any DataSource, batchSize: Int = 256) throws -> (loss: Float, accuracy: Float?) {
        let result = try evaluateMetrics(data, batchSize: batchSize, metrics: loss.isClassification ? [Accuracy()] : [])
        return (result.loss, result.metrics["accuracy"])
    }

    /// Mean loss and every metric (the learner's, unless given) over a data set, in evaluation
    /// mode, with the averaged weights when ``TrainingOptions/emaDecay`` is set. Throws what
    /// reading the data throws.
    public func evaluateMetrics(
        _ data: any DataSource, batchSize: Int = 256,
        metrics: [any Metric]? = nil
    ) throws -> (loss: Float, metrics: [String: Float]) {
        var measured = metrics ?? self.metrics
        for i in measured.indices { measured[i].reset() }
        var lossSum = 0.0, seen = 0
        let stream = try data.batches(BatchRequest(epoch: 1, batchSize: Swift.max(batchSize, 1), training: false, seed: seed))
        try withEvaluationWeights {
            try withoutGradients {
                var index = 0
                while let hostBatch = try stream.next() {
                    try checkBatch(hostBatch, data: data.dataDescription) {
                        (data as? InMemoryDataset)?.location(ofSample: index + $0) ?? "sample \(index + $0) of \(data.dataDescription)"
                    }
                    index += hostBatch.count
                    let batch = hostBatch.to(device)
                    let out = evaluationOutputs(batch.inputs)
                    lossSum += Double(try lossValue(out, batch.labels, sampleWeights: batch.sampleWeights).scalar) * Double(batch.count)
                    try CUDAContext.throwIfFailed()
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
        return try ema.withAveragedWeights(model, body)
    }

    /// Ends `fit` after the current step because of `signal`; `midEpoch`: without the epoch's end.
    func stop(bySignal signal: Int32, midEpoch: Bool) {
        stoppedBySignal = signal
        stopsMidEpoch = midEpoch
        stopTraining = true
    }

    // MARK: - Helpers

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
}
