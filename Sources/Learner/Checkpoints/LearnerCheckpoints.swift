import Foundation

/// Saving and restoring a learner's whole training state.
///
/// What makes a resumed run continue exactly as an uninterrupted one: the weights and buffers,
/// the optimizer's buffers and step counts, the weight average and its update count, fp16's
/// loss scale, and the global step. Everything else is a pure function of those and the seed: learning-rate
/// schedules take the step, the epoch's sample order is keyed by (seed, epoch), dropout masks by
/// (seed, step). ``ModelCheckpoint`` decides when to save and where to resume from.
extension SupervisedLearner {
    /// The training state to store after `epoch`.
    public func trainingState(epoch: Int, values: [String: Double] = [:], config: String? = nil) -> TrainingState {
        var state = TrainingState(
            epoch: epoch, globalStep: globalStep, seed: seed, learningRate: optimizer.learningRate,
            optimizer: String(describing: type(of: optimizer)), config: config, values: values)
        state.emaUpdates = ema?.updates
        if let lossScaler, options.precision == .fp16 {
            state.lossScale = lossScaler.scale
            state.lossScaleGrowthTracker = lossScaler.growthTracker
        }
        return state
    }

    static let emaFile = "ema.safetensors"

    /// Saves model, optimizer, weight average and state into `directory` as the checkpoint of
    /// `state.epoch` (or under `name`, e.g. "best").
    public func saveCheckpoint(to directory: WeightsDirectory, state: TrainingState, name: String? = nil) throws {
        try directory.save(model: model, optimizer: optimizer, state: state, name: name) { folder in
            guard let ema, !ema.shadow.isEmpty else { return }
            var entries: [String: SafeTensors.Entry] = [:]
            for ((name, _), value) in zip(self.model.namedParametersAndBuffers, ema.shadow) { entries[name] = SafeTensors.Entry(value) }
            try SafeTensors.write(entries, to: folder + "/" + SupervisedLearner.emaFile)
        }
    }

    /// Restores a checkpoint folder: weights (strictly by name and shape), optimizer state,
    /// weight average and global step. Returns the stored state.
    @discardableResult
    public func restoreCheckpoint(from folder: String) throws -> TrainingState {
        let state = try WeightsDirectory.restore(folder, model: model, optimizer: optimizer)
        globalStep = state.globalStep
        if let scale = state.lossScale, let scaler = lossScalerForStep() {
            scaler.restore(scale: scale, growthTracker: state.lossScaleGrowthTracker ?? 0)
        }
        let emaPath = folder + "/" + SupervisedLearner.emaFile
        if let ema, FileManager.default.fileExists(atPath: emaPath) {
            let (entries, _) = try SafeTensors.read(emaPath)
            let parameterNames = Set(model.namedParameters.map(\.name))
            var values: [Tensor] = []
            for (name, p) in model.namedParametersAndBuffers {
                guard let e = entries[name] else {
                    // An average saved before buffers were averaged starts them from the model's.
                    guard !parameterNames.contains(name) else { throw CheckpointError.missingTensors(names: [name], path: emaPath) }
                    values.append(p.value.copy())
                    continue
                }
                guard e.shape == p.shape else {
                    throw CheckpointError.shapeMismatch(tensor: name, expected: p.shape, found: e.shape, path: emaPath)
                }
                values.append(e.tensor.to(device))
            }
            ema.restore(values, updates: state.emaUpdates ?? Int(state.globalStep))
        }
        return state
    }

    /// The checkpointing of this learner: ``checkpoint``, else a ``ModelCheckpoint`` among the callbacks.
    var checkpointing: ModelCheckpoint? {
        checkpoint ?? callbacks.lazy.compactMap { $0 as? ModelCheckpoint }.first
    }

    /// The `startEpoch` that continues from the newest complete checkpoint (1 when there is
    /// none), after repairing what a crash left: the CLI's `--resume`. When the newest is a
    /// mid-epoch checkpoint, the next `fit` with that start epoch continues from it, within the epoch.
    public func resumeEpoch() throws -> Int {
        try checkpointing?.prepareResume() ?? 1
    }
}
