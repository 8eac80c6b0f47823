import Foundation

extension SupervisedLearner {
    /// Trains on the TFRecord shards in `dataDir` for epochs `startEpoch...epochs`
    /// (1-based, as tefla counts), evaluating on `validationDir` after each epoch.
    ///
    /// The records are fixed-size feature vectors read into memory once; for shards of encoded
    /// images pass an ``ImageDataSource`` to ``fit(_:validation:startEpoch:epochs:batchSize:dropLastBatch:iterationsPerEpoch:)``.
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
        guard training.count > 0 else { throw LearnerError.invalidArgument("the training set \(training.sources.first ?? "") is empty") }
        try checkFeatureSize(training)
        if let validation { try checkFeatureSize(validation) }
        return try fit(training, validation: validation, startEpoch: startEpoch, epochs: epochs, batchSize: batchSize,
                       dropLastBatch: dropLastBatch)
    }

    /// Trains for epochs `startEpoch...epochs` (1-based) on batches from `training`, measuring
    /// `validation` after each epoch: the loop every other `fit` runs.
    ///
    /// - Parameters:
    ///   - iterationsPerEpoch: batches per epoch (tefla's `n_iters_per_epoch`); by default one
    ///     pass over the data. More than a pass holds continues with a freshly shuffled pass.
    ///   - startEpoch: with a ``weightsDirectory``, a value above 1 continues from the checkpoint
    ///     of epoch `startEpoch − 1` (or from the mid-epoch checkpoint ``resumeEpoch()`` found).
    @discardableResult
    public func fit(_ training: any DataSource, validation: (any DataSource)? = nil, startEpoch: Int = 1, epochs: Int = 10,
                    batchSize: Int = 32, dropLastBatch: Bool = false, iterationsPerEpoch: Int? = nil) throws -> History {
        guard batchSize > 0 else { throw LearnerError.invalidArgument("batchSize must be > 0, got \(batchSize)") }
        guard startEpoch >= 1 else { throw LearnerError.invalidArgument("startEpoch counts from 1, got \(startEpoch)") }
        guard epochs >= startEpoch else {
            throw LearnerError.invalidArgument("epochs (\(epochs)) is less than startEpoch (\(startEpoch)): nothing to train")
        }
        let plan = try EpochPlan(source: training, batchSize: batchSize, dropLastBatch: dropLastBatch,
                                 iterationsPerEpoch: iterationsPerEpoch)
        let quiet = !writesCheckpoints
        let savedVerbose = verbose
        if quiet { verbose = 0 }
        defer { verbose = savedVerbose }

        // Ranks other than 0 run only the callbacks that must run on every replica (not the writers).
        let callbacks = quiet ? self.callbacks.filter(\.runsOnEveryRank) : self.callbacks
        // Per-batch reads are needed by a callback reading the loss, a batch closure, or the
        // replicas' summed loss; otherwise a GPU reads back only what is shown.
        let deferReads = (defersHostReads ?? (device != .cpu)) && gradientSynchronizer == nil && onBatchFinish == nil
            && !callbacks.contains(where: \.readsBatchLoss)
        globalStep = UInt64((startEpoch - 1) * plan.batchesPerEpoch)
        var position = try resumeFromWeightsDirectory(startEpoch: startEpoch, batchesPerEpoch: plan.batchesPerEpoch)
        try gradientSynchronizer?.broadcastInitialState(model)
        stopTraining = false
        var history = History()
        for callback in callbacks { try callback.onTrainBegin(self) }
        for epoch in startEpoch...epochs {
            let started = Date()
            for callback in callbacks { try callback.onEpochBegin(self, epoch: epoch) }
            var progress = EpochProgress(metrics: metrics)
            var firstBatch = 0
            if let resumed = position, resumed.epoch == epoch {
                firstBatch = resumed.batch
                progress.restore(resumed)
            }
            position = nil
            let batches = try plan.cursor(epoch: epoch, seed: seed, startBatch: firstBatch)
            var bar = verbose == 1
                ? makeProgressBar(epoch: epoch, epochs: epochs, batches: plan.batchesPerEpoch, started: started) : nil
            model.train()
            for b in firstBatch..<plan.batchesPerEpoch {
                applySchedule(step: Int(globalStep))  // before the hooks, so they see this step's rate
                for callback in callbacks { try callback.onBatchBegin(self, batch: b) }
                guard let batch = try batches.next() else { break }
                try trainGlobalBatch(batch, into: &progress)
                CrashPoint.stall(rank: gradientSynchronizer?.rank ?? 0, step: globalStep)
                let batchLoss = deferReads ? Float.nan : progress.flush()
                for callback in callbacks { try callback.onBatchEnd(self, batch: b, loss: batchLoss) }
                onBatchFinish?(self, b, batchLoss)
                if progress.pendingCount >= EpochProgress.maxPending { progress.flush() }
                bar?.update(batch: b + 1, samples: progress.seen) {
                    progress.flush()  // read back only when the bar is drawn
                    return [("loss", progress.meanLoss)] + SupervisedLearner.ordered(SupervisedLearner.values(of: progress.metrics))
                }
                if let every = checkpointEverySteps, every > 0, globalStep % UInt64(every) == 0, b + 1 < plan.batchesPerEpoch,
                   !quiet {
                    progress.flush()
                    try saveMidEpochCheckpoint(epoch: epoch, batchesDone: b + 1, progress: progress)
                }
                if stopTraining { break }
            }
            progress.flush()
            bar?.finish()
            let trainTime = Date().timeIntervalSince(started)
            let trainValues = SupervisedLearner.values(of: progress.metrics)
            var entry = EpochLog(epoch: epoch, trainLoss: progress.meanLoss, trainAccuracy: trainValues["accuracy"],
                                 validationLoss: nil, validationAccuracy: nil, seconds: 0,
                                 trainSamplesPerSecond: Double(progress.seenThisRun) / max(trainTime, 1e-9))
            entry.metrics = trainValues
            entry.learningRate = optimizer.learningRate
            entry.skipped = batches.skipped
            if let validation {
                let result = try measure(validation, batchSize: max(batchSize, 256))
                entry.validationLoss = result.loss
                entry.validationMetrics = result.metrics
                entry.validationAccuracy = result.metrics["accuracy"]
            }
            entry.seconds = Date().timeIntervalSince(started)
            history.epochs.append(entry)
            if verbose > 0 { log(SupervisedLearner.format(entry, of: epochs, showLearningRate: schedule != nil)) }
            if verbose > 0, let skipped = entry.skipped, skipped.count > 0 { log("Epoch \(epoch): corrupt records \(skipped)") }
            if !quiet { try saveToWeightsDirectory(entry) }
            for callback in callbacks { try callback.onEpochEnd(self, log: entry) }
            if stopTraining { break }
        }
        for callback in callbacks { try callback.onTrainEnd(self, history: history) }
        return history
    }

    /// One optimizer step on a global batch: this rank's share goes to the device (with its class
    /// weights), and its loss and outputs wait in `progress` to be read back.
    func trainGlobalBatch(_ batch: DataBatch, into progress: inout EpochProgress) throws {
        let n = batch.count
        var local = batch, share: Float = 1, offset = 0
        if let sync = gradientSynchronizer, sync.worldSize > 1 {
            // Contiguous shares, floor-split: rank r takes samples r·n/N ..< (r+1)·n/N.
            let range = (sync.rank * n / sync.worldSize)..<((sync.rank + 1) * n / sync.worldSize)
            local = batch.slice(range)
            share = Float(range.count) / Float(max(n, 1))
            offset = range.lowerBound
        }
        local = withClassWeights(local).to(device)
        var (value, outputs) = try optimizerStep(local, share: share, sampleOffset: offset)
        if let sync = gradientSynchronizer, sync.worldSize > 1 {
            value = Tensor(shape: [], scalars: [Float(try sync.allReduceSum([Double(value.scalar)])[0])])
        }
        progress.add(loss: value, samples: n, outputs: local.count > 0 ? outputs : nil, labels: local.labels)
    }

    /// `batch` with each sample's loss weighted by its class's ``classWeights`` entry (times any
    /// weight it already has).
    func withClassWeights(_ batch: DataBatch) -> DataBatch {
        guard let classWeights, batch.labels.rank == 1, batch.count > 0 else { return batch }
        let labels = batch.labels.scalars
        var weights = labels.map { label -> Float in
            let c = Int(label)
            return c >= 0 && c < classWeights.count ? classWeights[c] : 1
        }
        if let existing = batch.sampleWeights?.scalars { for i in weights.indices { weights[i] *= existing[i] } }
        return DataBatch(inputs: batch.inputs, labels: batch.labels,
                         sampleWeights: Tensor(shape: [batch.count], scalars: weights).to(batch.labels.device))
    }
}

/// How many batches an epoch has and where they come from.
struct EpochPlan {
    let source: any DataSource
    let batchSize: Int
    let dropLastBatch: Bool
    let batchesPerEpoch: Int
    /// Batches in one pass over the data, when the source knows its size.
    let batchesPerPass: Int?

    init(source: any DataSource, batchSize: Int, dropLastBatch: Bool, iterationsPerEpoch: Int?) throws {
        self.source = source
        self.batchSize = batchSize
        self.dropLastBatch = dropLastBatch
        batchesPerPass = source.sampleCount.map { batchCount(samples: $0, batchSize: batchSize, dropLastBatch: dropLastBatch) }
        if let perPass = batchesPerPass, perPass == 0 {
            throw LearnerError.invalidArgument(
                "the training data holds \(source.sampleCount ?? 0) samples: no batch of \(batchSize)"
                    + (dropLastBatch ? " (the last, short batch is dropped)" : ""))
        }
        if let iterations = iterationsPerEpoch {
            guard iterations > 0 else { throw LearnerError.invalidArgument("iterationsPerEpoch must be > 0, got \(iterations)") }
            batchesPerEpoch = iterations
        } else {
            guard let perPass = batchesPerPass else {
                throw LearnerError.invalidArgument("the training data does not know its size: give iterationsPerEpoch")
            }
            batchesPerEpoch = perPass
        }
    }

    /// The batches of `epoch` from batch `startBatch` on, across passes when the epoch is longer
    /// than one.
    func cursor(epoch: Int, seed: UInt64, startBatch: Int) throws -> PassCursor {
        try PassCursor(plan: self, epoch: epoch, seed: seed, startBatch: startBatch)
    }
}

/// Walks an epoch's batches, opening the next pass over the data when one ends.
final class PassCursor {
    private let plan: EpochPlan
    private let epoch: Int
    private let seed: UInt64
    private var pass: Int
    private var stream: any BatchStream
    private var batchesThisPass = 0
    /// Corrupt records skipped in the passes already finished.
    private var skippedBefore: SkipReport?

    /// Corrupt records skipped so far this epoch, over every pass (nil when the source skips none).
    var skipped: SkipReport? {
        guard let current = stream.skipped else { return skippedBefore }
        var all = skippedBefore ?? SkipReport()
        all.errors += current.errors
        return all
    }

    init(plan: EpochPlan, epoch: Int, seed: UInt64, startBatch: Int) throws {
        self.plan = plan
        self.epoch = epoch
        self.seed = seed
        var skip = startBatch
        if let perPass = plan.batchesPerPass, perPass > 0 {
            pass = startBatch / perPass
            skip = startBatch % perPass
        } else {
            pass = 0
        }
        stream = try plan.source.batches(BatchRequest(epoch: epoch, pass: pass, batchSize: plan.batchSize, training: true,
                                                      seed: seed, dropLastBatch: plan.dropLastBatch, startBatch: skip))
        batchesThisPass = skip
    }

    func next() throws -> DataBatch? {
        if let batch = try stream.next() {
            batchesThisPass += 1
            return batch
        }
        guard batchesThisPass > 0 else { return nil }  // an empty pass: the data ran dry
        skippedBefore = skipped
        pass += 1
        batchesThisPass = 0
        stream = try plan.source.batches(BatchRequest(epoch: epoch, pass: pass, batchSize: plan.batchSize, training: true,
                                                      seed: seed, dropLastBatch: plan.dropLastBatch))
        return try next()
    }
}

/// The running loss and metrics of an epoch's training batches. Batches wait on the device
/// (loss, outputs, labels) until ``flush()`` reads them back and adds them in order, so the
/// values are the same however often it is called.
struct EpochProgress {
    var lossSum = 0.0
    var seen = 0
    /// Samples trained since this process started the epoch (for samples/s after a resume).
    var seenThisRun = 0
    var metrics: [any Metric]
    private var pending: [(loss: Tensor, samples: Int, outputs: Tensor?, labels: Tensor)] = []
    /// Batches held at most before they are read back (their outputs hold device memory).
    static let maxPending = 64

    init(metrics: [any Metric]) {
        self.metrics = metrics
        for i in self.metrics.indices { self.metrics[i].reset() }
    }

    var pendingCount: Int { pending.count }

    mutating func add(loss: Tensor, samples: Int, outputs: Tensor?, labels: Tensor) {
        pending.append((loss, samples, outputs, labels))
        seenThisRun += samples
    }

    /// Reads the waiting batches back (their losses in one transfer) and adds them; returns the
    /// last one's loss (NaN when none was waiting).
    @discardableResult
    mutating func flush() -> Float {
        guard !pending.isEmpty else { return .nan }
        let losses = pending.count == 1 ? [pending[0].loss.scalar]
            : Tensor.concatenate(pending.map { $0.loss.reshaped(to: [1]) }, alongAxis: 0).scalars
        for (batch, loss) in zip(pending, losses) {
            lossSum += Double(loss) * Double(batch.samples)
            seen += batch.samples
            if let outputs = batch.outputs {
                for i in metrics.indices { metrics[i].update(outputs: outputs, labels: batch.labels) }
            }
        }
        pending.removeAll(keepingCapacity: true)
        return losses.last ?? .nan
    }

    var meanLoss: Float { Float(lossSum / Double(max(seen, 1))) }

    /// The metrics' statistics as JSON, by position (metrics that are not `Codable` are left out).
    func metricStates() -> [String] {
        metrics.map { metric in
            guard let encodable = metric as? any Encodable,
                  let data = try? JSONEncoder().encode(encodable) else { return "" }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Continues the epoch a mid-epoch checkpoint stopped in.
    mutating func restore(_ position: ResumePosition) {
        lossSum = position.lossSum
        seen = position.seen
        for (i, state) in position.metricStates.enumerated() where i < metrics.count && !state.isEmpty {
            if let restored = EpochProgress.decode(state, like: metrics[i]) { metrics[i] = restored }
        }
    }

    private static func decode(_ json: String, like metric: any Metric) -> (any Metric)? {
        guard let type = type(of: metric) as? any (Metric & Decodable).Type else { return nil }
        return try? JSONDecoder().decode(type, from: Data(json.utf8))
    }
}

/// Where a run resumed from a mid-epoch checkpoint stands in its epoch.
struct ResumePosition {
    var epoch: Int
    /// Batches of `epoch` already trained.
    var batch: Int
    var lossSum: Double
    var seen: Int
    var metricStates: [String]
}
