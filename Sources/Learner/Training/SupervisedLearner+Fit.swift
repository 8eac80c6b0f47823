import Foundation

extension SupervisedLearner {
    /// Trains on the TFRecord shards in `dataDir` for epochs `startEpoch...epochs`
    /// (1-based, as tefla counts), evaluating on `validationDir` after each epoch.
    ///
    /// What the records hold is read from the first one (``RecordContent``): fixed-size feature
    /// vectors are read into memory once (or from disk every epoch, when larger than
    /// ``TrainingOptions/dataMemoryBudget``); encoded JPEG or PNG images (tefla's `image/encoded`)
    /// are decoded on worker threads as ``TrainingOptions/images`` says, to `imageSize` when
    /// given (else the options' size, else the size every training image is stored at), the
    /// validation images to the same size.
    @discardableResult
    public func fit(
        dataDir: String, featureKeys: FeatureKeys, startEpoch: Int = 1, validationDir: String? = nil,
        epochs: Int = 10, batchSize: Int = 32, dropLastBatch: Bool = false, imageSize: ImageSize? = nil
    ) throws -> History {
        var images = options.images
        if let imageSize { images.size = imageSize }
        let data = try RecordData(
            training: dataDir, validation: validationDir, keys: featureKeys, images: images, memoryBudget: options.dataMemoryBudget)
        return try fit(
            data.training, validation: data.validation, startEpoch: startEpoch, epochs: epochs,
            batchSize: batchSize, dropLastBatch: dropLastBatch)
    }

    /// Trains on data already in memory.
    @discardableResult
    public func fit(
        training: InMemoryDataset, validation: InMemoryDataset? = nil, startEpoch: Int = 1, epochs: Int = 10,
        batchSize: Int = 32, dropLastBatch: Bool = false
    ) throws -> History {
        guard training.count > 0 else { throw LearnerError.invalidArgument("the training set \(training.sources.first ?? "") is empty") }
        return try fit(
            training, validation: validation, startEpoch: startEpoch, epochs: epochs, batchSize: batchSize,
            dropLastBatch: dropLastBatch)
    }

    /// Trains for epochs `startEpoch...epochs` (1-based) on batches from `training`, measuring
    /// `validation` after each epoch: the loop every other `fit` runs.
    ///
    /// - Parameters:
    ///   - training: the batches to train on.
    ///   - validation: measured after every epoch, when given.
    ///   - epochs: the last epoch to train.
    ///   - batchSize: samples per batch (per optimizer step).
    ///   - dropLastBatch: whether to leave out a pass's last batch when it is short.
    ///   - iterationsPerEpoch: batches per epoch (tefla's `n_iters_per_epoch`); by default one
    ///     pass over the data. More than a pass holds continues with a freshly shuffled pass.
    ///   - startEpoch: with a ``checkpoint``, a value above 1 continues from the checkpoint
    ///     of epoch `startEpoch − 1` (or from the mid-epoch checkpoint ``resumeEpoch()`` found).
    @discardableResult
    public func fit(
        _ training: any DataSource, validation: (any DataSource)? = nil, startEpoch: Int = 1, epochs: Int = 10,
        batchSize: Int = 32, dropLastBatch: Bool = false, iterationsPerEpoch: Int? = nil
    ) throws -> History {
        guard batchSize > 0 else { throw LearnerError.invalidArgument("batchSize must be > 0, got \(batchSize)") }
        guard startEpoch >= 1 else { throw LearnerError.invalidArgument("startEpoch counts from 1, got \(startEpoch)") }
        guard epochs >= startEpoch else {
            throw LearnerError.invalidArgument("epochs (\(epochs)) is less than startEpoch (\(startEpoch)): nothing to train")
        }
        let plan = try EpochPlan(
            source: training, batchSize: batchSize, dropLastBatch: dropLastBatch,
            iterationsPerEpoch: iterationsPerEpoch)
        // A model that does not fit its data fails here, before any hook opens a file or a step runs.
        let trainingChecked = try checkData(training, batchSize: batchSize, replica: replicaShare)
        if let validation { try checkData(validation, batchSize: batchSize) }
        let run = makeRun(plan, startEpoch: startEpoch, epochs: epochs)
        run.checksBatches = !trainingChecked
        self.run = run
        defer { self.run = nil }
        globalStep = UInt64((startEpoch - 1) * plan.batchesPerEpoch)
        stopTraining = false
        stoppedBySignal = nil
        stopsMidEpoch = false
        // The run's starting state, before any hook sees it: resumed, then the same on every replica.
        try run.each { try $0.onRunSetup(self) }
        try gradientSynchronizer?.broadcastInitialState(model)
        try run.each { try $0.onTrainBegin(self) }
        for epoch in startEpoch...epochs where !stopTraining {
            try trainEpoch(epoch, of: plan, training: training, validation: validation, in: run)
            if stopsMidEpoch { break }  // the resumed run finishes this epoch
            try run.each { try $0.onEpochEnd(self, log: run.history.epochs[run.history.epochs.count - 1]) }
        }
        try CUDAContext.throwIfFailed()
        try run.each { try $0.onTrainEnd(self, history: run.history) }
        return run.history
    }

    /// Trains one epoch's batches and measures the validation set; appends the epoch's log to the run's history.
    private func trainEpoch(
        _ epoch: Int, of plan: EpochPlan, training: any DataSource, validation: (any DataSource)?, in run: FitRun
    ) throws {
        run.begin(epoch: epoch, metrics: metrics)
        try run.each { try $0.onEpochBegin(self, epoch: epoch) }
        let replica = training.readsReplicaShares ? replicaShare : nil
        let batches = try plan.cursor(epoch: epoch, seed: seed, startBatch: run.firstBatch, replica: replica)
        model.train()
        for b in run.firstBatch..<plan.batchesPerEpoch where !stopTraining {
            run.batch = b
            applySchedule(step: Int(globalStep))  // before the hooks, so they see this step's rate
            try run.each { try $0.onBatchBegin(self, batch: b) }
            guard let batch = try batches.next() else { break }
            if run.checksBatches {
                try checkBatch(batch, data: training.dataDescription) {
                    "sample \($0) of batch \(b + 1) of epoch \(epoch) from \(training.dataDescription)"
                }
            }
            try trainGlobalBatch(batch, into: &run.progress)
            CrashPoint.stall(rank: gradientSynchronizer?.rank ?? 0, step: globalStep)
            let batchLoss = run.readsEveryBatch ? run.progress.flush() : .nan
            try run.each { try $0.onBatchEnd(self, batch: b, loss: batchLoss) }
            run.progress.flushIfFull()
        }
        run.progress.flush()
        if stopsMidEpoch { return }
        let trainTime = Date().timeIntervalSince(run.epochStarted)
        var entry = EpochLog(
            epoch: epoch, trainLoss: run.progress.meanLoss, trainAccuracy: nil, validationLoss: nil,
            validationAccuracy: nil, seconds: 0,
            trainSamplesPerSecond: Double(run.progress.seenThisRun) / max(trainTime, 1e-9))
        // Each replica measured its share of every global batch: add them up first.
        if let sync = gradientSynchronizer { try mergeAcrossReplicas(&run.progress.metrics, sync) }
        entry.metrics = SupervisedLearner.values(of: run.progress.metrics)
        entry.trainAccuracy = entry.metrics["accuracy"]
        entry.learningRate = optimizer.learningRate
        entry.skipped = batches.skipped
        if let validation {
            let result = try evaluateMetrics(validation, batchSize: max(plan.batchSize, 256))
            entry.validationLoss = result.loss
            entry.validationMetrics = result.metrics
            entry.validationAccuracy = result.metrics["accuracy"]
        }
        entry.seconds = Date().timeIntervalSince(run.epochStarted)
        run.history.epochs.append(entry)
    }

    /// The run's state and components: the progress logger and the checkpointing (rank 0 alone
    /// logs and writes), then the callbacks, ordered by ``Callback/order``.
    private func makeRun(_ plan: EpochPlan, startEpoch: Int, epochs: Int) -> FitRun {
        var components: [Callback] = [ProgressLogger()]
        if let checkpoint, !callbacks.contains(where: { $0 === checkpoint }) { components.append(checkpoint) }
        components += callbacks
        if !writesCheckpoints { components = components.filter(\.runsOnEveryRank) }
        let ordered = components.enumerated().sorted { ($0.element.order, $0.offset) < ($1.element.order, $1.offset) }.map(\.element)
        // Per-batch reads are needed by a callback reading the loss or the replicas' summed loss;
        // otherwise a GPU reads back only what is shown.
        let defers = (options.defersHostReads ?? (device != .cpu)) && gradientSynchronizer == nil
        return FitRun(
            plan: plan, startEpoch: startEpoch, epochs: epochs, schedule: options.schedule, metrics: metrics,
            components: ordered, readsEveryBatch: !defers || ordered.contains(where: \.readsBatchLoss))
    }

    /// This data-parallel replica's part of every batch, for sources that read only it; nil
    /// without replicas.
    var replicaShare: ReplicaShare? {
        guard let sync = gradientSynchronizer, sync.worldSize > 1 else { return nil }
        return ReplicaShare(rank: sync.rank, count: sync.worldSize)
    }

    /// Whether this learner writes logs and checkpoints: data-parallel rank 0 alone does.
    var writesCheckpoints: Bool { (gradientSynchronizer?.rank ?? 0) == 0 }
}
