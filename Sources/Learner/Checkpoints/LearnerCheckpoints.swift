import Foundation

/// Saving and resuming a whole training run through a ``WeightsDirectory``.
///
/// What makes a resumed run continue exactly as an uninterrupted one: the weights, the
/// optimizer's buffers and step counts, the weight average, and the global step. Everything
/// else is a pure function of those and the seed: learning-rate schedules take the step, the
/// epoch's sample order is keyed by (seed, epoch), dropout masks by (seed, step).
extension SupervisedLearner {
    /// The training state to store after `epoch`.
    public func trainingState(epoch: Int, values: [String: Double] = [:]) -> TrainingState {
        TrainingState(epoch: epoch, globalStep: globalStep, seed: seed, learningRate: optimizer.learningRate,
                      optimizer: String(describing: type(of: optimizer)), config: checkpointConfig, values: values)
    }

    static let emaFile = "ema.safetensors"

    /// Saves model, optimizer, weight average and state into `directory` as the checkpoint of
    /// `state.epoch` (or under `name`, e.g. "best").
    public func saveCheckpoint(to directory: WeightsDirectory, state: TrainingState, name: String? = nil) throws {
        try directory.save(model: model, optimizer: optimizer, state: state, name: name) { folder in
            guard let ema, !ema.shadow.isEmpty else { return }
            var entries: [String: SafeTensors.Entry] = [:]
            for ((name, _), value) in zip(self.model.namedParameters, ema.shadow) { entries[name] = SafeTensors.Entry(value) }
            try SafeTensors.write(entries, to: folder + "/" + SupervisedLearner.emaFile)
        }
    }

    /// Restores a checkpoint folder: weights (strictly by name and shape), optimizer state,
    /// weight average and global step. Returns the stored state.
    @discardableResult
    public func restoreCheckpoint(from folder: String) throws -> TrainingState {
        let state = try WeightsDirectory.restore(folder, model: model, optimizer: optimizer)
        restoreGlobalStep(state.globalStep)
        let emaPath = folder + "/" + SupervisedLearner.emaFile
        if let ema, FileManager.default.fileExists(atPath: emaPath) {
            let (entries, _) = try SafeTensors.read(emaPath)
            var values: [Tensor] = []
            for (name, p) in model.namedParameters {
                guard let e = entries[name] else { throw CheckpointError.missingTensors(names: [name], path: emaPath) }
                guard e.shape == p.shape else { throw CheckpointError.shapeMismatch(tensor: name, expected: p.shape, found: e.shape, path: emaPath) }
                values.append(e.tensor.to(device))
            }
            ema.restore(values)
        }
        return state
    }

    /// The `startEpoch` that continues from the newest complete checkpoint of
    /// ``weightsDirectory`` (1 when there is none), after repairing what a crash left: the
    /// CLI's `--resume`. When the newest is a mid-epoch checkpoint (``checkpointEverySteps``),
    /// the next `fit` with that start epoch continues from it, within the epoch.
    public func resumeEpoch() throws -> Int {
        guard let directory = weightsDirectory else { return 1 }
        try directory.repair()
        guard let (name, state) = directory.newestCheckpoint() else { return 1 }
        pendingMidEpochResume = state.batchInEpoch == nil ? nil : directory.path + "/" + name
        return state.epoch + 1
    }

    /// Called by `fit` once its step count is set: a run starting after epoch 1 with a weights
    /// directory continues from the checkpoint of epoch `startEpoch − 1` (or from the mid-epoch
    /// checkpoint ``resumeEpoch()`` chose), and later checkpoints (an abandoned timeline) are
    /// removed. Returns where in its epoch a mid-epoch resume continues.
    func resumeFromWeightsDirectory(startEpoch: Int, batchesPerEpoch: Int) throws -> ResumePosition? {
        let midEpoch = pendingMidEpochResume
        pendingMidEpochResume = nil
        guard let directory = weightsDirectory else { return nil }
        if let folder = midEpoch {
            let state = try WeightsDirectory.readState(folder)
            if state.epoch + 1 == startEpoch, let batch = state.batchInEpoch {
                let expectedStep = UInt64((startEpoch - 1) * batchesPerEpoch + batch)
                try restore(folder, expectingStep: expectedStep, what: "batch \(batch) of epoch \(startEpoch)")
                if writesCheckpoints { try directory.discard(after: state, keeping: URL(fileURLWithPath: folder).lastPathComponent) }
                globalStep = expectedStep
                return ResumePosition(epoch: startEpoch, batch: batch, lossSum: state.epochLossSum ?? 0,
                                      seen: state.epochSamples ?? 0, metricStates: state.metricStates ?? [])
            }
        }
        guard startEpoch > 1 else {
            // A fresh run never overwrites another run's checkpoints silently.
            let saved = directory.savedEpochs()
            if !saved.isEmpty || !directory.stepCheckpoints().isEmpty
                || FileManager.default.fileExists(atPath: directory.path + "/latest") {
                throw LearnerError.invalidArgument(
                    "\(directory.path) already holds checkpoints (epochs \(saved.map(String.init).joined(separator: ", "))):"
                        + " resume from them (tefla-train --resume, or fit(startEpoch:)) or choose another weights directory")
            }
            return nil
        }
        let folder = directory.folder(epoch: startEpoch - 1)
        guard FileManager.default.fileExists(atPath: folder + "/" + WeightsDirectory.stateFile) else {
            throw CheckpointError.missingFile(
                path: folder + "/" + WeightsDirectory.stateFile,
                reason: "startEpoch \(startEpoch) continues from the checkpoint of epoch \(startEpoch - 1), which is not there"
                    + " (saved epochs: \(directory.savedEpochs().map(String.init).joined(separator: ", ")))")
        }
        try restore(folder, expectingStep: globalStep, what: "epoch \(startEpoch - 1)")
        if writesCheckpoints { try directory.discard(after: startEpoch - 1) }
        return nil
    }

    /// Restores `folder`, checking that it is at the step this data and batch size put `what` at.
    private func restore(_ folder: String, expectingStep expectedStep: UInt64, what: String) throws {
        let state = try restoreCheckpoint(from: folder)
        guard state.globalStep == expectedStep else {
            throw LearnerError.invalidArgument(
                "\(folder): the checkpoint is at step \(state.globalStep), but \(what) of this data and batch size"
                    + " ends at step \(expectedStep); resume with the data and batch size of the saved run")
        }
        if state.seed != seed, verbose > 0 {
            log("note: \(folder) was saved by a run with seed \(state.seed); this run uses seed \(seed)")
        }
    }

    /// Whether this learner writes to the weights directory: data-parallel rank 0 alone does.
    var writesCheckpoints: Bool { (gradientSynchronizer?.rank ?? 0) == 0 }

    /// Called by `fit` every ``checkpointEverySteps`` steps: a checkpoint within `epoch`, after
    /// `batchesDone` of its batches, with the epoch's running loss and metric statistics.
    func saveMidEpochCheckpoint(epoch: Int, batchesDone: Int, progress: EpochProgress) throws {
        guard let directory = weightsDirectory else { return }
        var state = trainingState(epoch: epoch - 1)
        state.batchInEpoch = batchesDone
        state.epochLossSum = progress.lossSum
        state.epochSamples = progress.seen
        state.metricStates = progress.metricStates()
        try saveCheckpoint(to: directory, state: state)
    }

    /// Called by `fit` after each epoch's log.
    func saveToWeightsDirectory(_ entry: EpochLog) throws {
        guard let directory = weightsDirectory else { return }
        var values: [String: Double] = [:]
        for name in entry.valueNames { if let v = entry.value(named: name) { values[name] = Double(v) } }
        let state = trainingState(epoch: entry.epoch, values: values)
        try saveCheckpoint(to: directory, state: state)
        if saveBestCheckpoint, let value = entry.value(named: checkpointMonitor),
           MonitorMode.auto(for: checkpointMonitor).isImprovement(value, over: bestCheckpointValue, minDelta: 0) {
            bestCheckpointValue = value
            try saveCheckpoint(to: directory, state: state, name: "best")
        }
    }
}

/// A ``CheckpointWriter`` for ``ModelCheckpoint``: saves into a weights directory.
public final class WeightsDirectoryWriter: CheckpointWriter {
    public let directory: WeightsDirectory

    public init(_ directory: WeightsDirectory) { self.directory = directory }

    public func save(_ learner: SupervisedLearner, log: EpochLog, isBest: Bool) throws {
        try learner.saveCheckpoint(to: directory, state: learner.trainingState(epoch: log.epoch), name: isBest ? "best" : nil)
    }
}
