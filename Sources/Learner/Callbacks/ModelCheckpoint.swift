import Foundation

/// The one checkpointing mechanism of `fit` (Keras' `ModelCheckpoint`, tefla's `weights_dir`):
/// saves the whole training state into a ``WeightsDirectory`` after every `everyEpochs`
/// epochs, as `best/` when the monitored value improves, and every `everySteps` optimizer steps
/// within an epoch; and resumes from it when `fit` starts after epoch 1.
///
/// Set it as ``SupervisedLearner/checkpoint`` or add it to the callbacks. Every data-parallel
/// replica resumes from it; rank 0 alone writes.
public final class ModelCheckpoint: Callback {
    public var readsBatchLoss: Bool { false }
    public var order: Int { CallbackOrder.checkpointing }

    public let directory: WeightsDirectory
    /// The value that decides the best checkpoint (Keras names: `val_loss`, `val_accuracy`, ...).
    public let monitor: String
    public let mode: MonitorMode
    /// Also keep the checkpoint of the best monitored value as `best/`.
    public let saveBest: Bool
    /// Save a checkpoint every this many epochs (nil: none but `best/` and step checkpoints).
    public let everyEpochs: Int?
    /// Also save a checkpoint every this many optimizer steps within an epoch, so a run killed
    /// mid-epoch resumes from there (nil: at epoch ends only). Only the newest such checkpoint
    /// is kept; epoch checkpoints follow ``WeightsDirectory/maxToKeep``.
    public let everySteps: Int?
    /// The resolved configuration stored with each checkpoint (the CLI sets it).
    public var config: String?
    /// Whether a run started after epoch 1 may delete the checkpoints newer than the one it
    /// continues from (the abandoned timeline); without it such a run is refused, naming them
    /// (the CLI's `--force`).
    public var discardsNewerCheckpoints = false
    /// The best monitored value so far; saved with every checkpoint, so a resumed run's `best/`
    /// is replaced only by a better epoch than any before the resume.
    public private(set) var best: Float?
    /// A mid-epoch checkpoint ``prepareResume()`` found, restored by the next `fit`.
    private var pendingMidEpoch: String?
    /// The step of the last checkpoint this run saved (a step is saved once).
    private var lastSavedStep: UInt64?

    public init(
        directory: WeightsDirectory, monitor: String = "val_loss", mode: MonitorMode? = nil, saveBest: Bool = false,
        everyEpochs: Int? = 1, everySteps: Int? = nil, config: String? = nil
    ) {
        self.directory = directory
        self.monitor = monitor
        self.mode = mode ?? .auto(for: monitor)
        self.saveBest = saveBest
        self.everyEpochs = everyEpochs.map { Swift.max($0, 1) }
        self.everySteps = everySteps.flatMap { $0 > 0 ? $0 : nil }
        self.config = config
    }

    private var bestKey: String { "best_" + monitor }

    // MARK: - Saving

    public func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws {
        guard let every = everySteps, let run = learner.run, learner.globalStep % UInt64(every) == 0, batch + 1 < run.batchesPerEpoch
        else { return }
        try saveMidEpoch(learner, batch: batch)
    }

    /// Saves the run's position after batch `batch` of the current epoch (once per step): a
    /// resumed run continues with the next batch, its epoch's running loss and metrics intact.
    public func saveMidEpoch(_ learner: SupervisedLearner, batch: Int) throws {
        guard let run = learner.run, learner.writesCheckpoints, lastSavedStep != learner.globalStep else { return }
        run.progress.flush()
        var state = learner.trainingState(epoch: run.epoch - 1, values: bestValues, config: config)
        state.batchInEpoch = batch + 1
        state.epochLossSum = run.progress.lossSum
        state.epochSamples = run.progress.seen
        state.metricStates = run.progress.metricStates()
        try learner.saveCheckpoint(to: directory, state: state)
        lastSavedStep = learner.globalStep
    }

    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        var improved = false
        if let value = log.value(named: monitor), mode.isImprovement(value, over: best, minDelta: 0) {
            best = value
            improved = true
        }
        guard learner.writesCheckpoints else { return }
        if let every = everyEpochs, log.epoch % every == 0 { try saveEpochEnd(learner, log: log) }
        if saveBest && improved {
            try learner.saveCheckpoint(to: directory, state: epochState(learner, log: log), name: "best")
        }
    }

    /// Saves the checkpoint of the epoch `log` ends (once per step).
    public func saveEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        guard learner.writesCheckpoints, lastSavedStep != learner.globalStep else { return }
        try learner.saveCheckpoint(to: directory, state: epochState(learner, log: log))
        lastSavedStep = learner.globalStep
    }

    /// The training state at the end of the epoch `log` describes, with its values and the best so far.
    private func epochState(_ learner: SupervisedLearner, log: EpochLog) -> TrainingState {
        var values = bestValues
        for name in log.valueNames { if let v = log.value(named: name) { values[name] = Double(v) } }
        return learner.trainingState(epoch: log.epoch, values: values, config: config)
    }

    private var bestValues: [String: Double] { best.map { [bestKey: Double($0)] } ?? [:] }

    // MARK: - Resuming

    /// The `startEpoch` that continues from the newest complete checkpoint (1 when there is
    /// none), after repairing what a crash left; remembers a mid-epoch checkpoint for the next `fit`.
    func prepareResume() throws -> Int {
        try directory.repair()
        guard let (name, state) = try directory.newestCheckpoint() else { return 1 }
        pendingMidEpoch = state.batchInEpoch == nil ? nil : directory.path + "/" + name
        return state.epoch + 1
    }

    /// As the run is set up, before any other hook: a run starting after epoch 1
    /// continues from the checkpoint of epoch `startEpoch − 1` (or from the mid-epoch
    /// checkpoint ``SupervisedLearner/resumeEpoch()`` chose), and later checkpoints (an abandoned timeline) are
    /// removed. A fresh run never overwrites another run's checkpoints.
    public func onRunSetup(_ learner: SupervisedLearner) throws {
        best = nil
        lastSavedStep = nil
        let midEpoch = pendingMidEpoch
        pendingMidEpoch = nil
        guard let run = learner.run else { return }
        let startEpoch = run.startEpoch
        if let folder = midEpoch {
            let state = try WeightsDirectory.readState(folder)
            if state.epoch + 1 == startEpoch, let batch = state.batchInEpoch {
                let expectedStep = UInt64((startEpoch - 1) * run.batchesPerEpoch + batch)
                try restore(folder, into: learner, expectingStep: expectedStep, what: "batch \(batch) of epoch \(startEpoch)")
                if learner.writesCheckpoints {
                    try directory.discard(after: state, keeping: URL(fileURLWithPath: folder).lastPathComponent)
                }
                run.resumePosition = ResumePosition(
                    epoch: startEpoch, batch: batch, lossSum: state.epochLossSum ?? 0,
                    seen: state.epochSamples ?? 0, metricStates: state.metricStates ?? [])
                return
            }
        }
        guard startEpoch > 1 else {
            let saved = directory.savedEpochs()
            if !saved.isEmpty || !directory.stepCheckpoints().isEmpty
                || FileManager.default.fileExists(atPath: directory.path + "/latest")
            {
                throw LearnerError.invalidArgument(
                    "\(directory.path) already holds checkpoints (epochs \(saved.map(String.init).joined(separator: ", "))):"
                        + " resume from them (tefla-train --resume, or fit(startEpoch:)) or choose another weights directory")
            }
            return
        }
        let folder = directory.folder(epoch: startEpoch - 1)
        guard FileManager.default.fileExists(atPath: folder + "/" + WeightsDirectory.stateFile) else {
            throw CheckpointError.missingFile(
                path: folder + "/" + WeightsDirectory.stateFile,
                reason: "startEpoch \(startEpoch) continues from the checkpoint of epoch \(startEpoch - 1), which is not there"
                    + " (saved epochs: \(directory.savedEpochs().map(String.init).joined(separator: ", ")))")
        }
        let newer = directory.checkpoints(after: startEpoch - 1)
        guard newer.isEmpty || discardsNewerCheckpoints else {
            throw LearnerError.invalidArgument(
                "\(directory.path) holds checkpoints newer than epoch \(startEpoch - 1) (\(newer.joined(separator: ", "))):"
                    + " starting at epoch \(startEpoch) would delete them; resume from the newest (tefla-train --resume),"
                    + " or allow it (--force, ModelCheckpoint.discardsNewerCheckpoints)")
        }
        try restore(folder, into: learner, expectingStep: learner.globalStep, what: "epoch \(startEpoch - 1)")
        if learner.writesCheckpoints { try directory.discard(after: startEpoch - 1) }
    }

    /// Restores `folder`, checking that it is at the step this data and batch size put `what` at,
    /// and takes up the best value it saved.
    private func restore(
        _ folder: String, into learner: SupervisedLearner, expectingStep expectedStep: UInt64,
        what: String
    ) throws {
        let state = try learner.restoreCheckpoint(from: folder)
        guard state.globalStep == expectedStep else {
            throw LearnerError.invalidArgument(
                "\(folder): the checkpoint is at step \(state.globalStep), but \(what) of this data and batch size"
                    + " ends at step \(expectedStep); resume with the data and batch size of the saved run")
        }
        if state.seed != learner.seed {
            learner.note("\(folder) was saved by a run with seed \(state.seed); this run uses seed \(learner.seed)")
        }
        best = state.values[bestKey].map(Float.init)
    }
}
