import Foundation

/// The run a `fit` call is making, as its components see it (``SupervisedLearner/run``): its
/// length, where it stands, the epoch's running figures and the history so far (fastai's
/// `Learner` attributes during `fit`).
public final class FitRun {
    public let startEpoch: Int
    public let epochs: Int
    public let batchesPerEpoch: Int
    public let batchSize: Int
    /// The learning-rate schedule fitted to this run (``LearningRateSchedule/forRun(totalSteps:firstStep:)``):
    /// its length, and the epoch it starts at.
    public let schedule: (any LearningRateSchedule)?
    /// The epoch being trained (1-based).
    public internal(set) var epoch: Int
    /// The batch being trained within the epoch (0-based).
    public internal(set) var batch = 0
    /// The first batch this process trains in the current epoch (above 0 after a mid-epoch resume).
    public internal(set) var firstBatch = 0
    /// When the current epoch started.
    public internal(set) var epochStarted = Date()
    /// The epochs finished so far.
    public internal(set) var history = History()
    /// The epoch's training loss and metrics so far.
    var progress: EpochProgress
    /// Where in its epoch a mid-epoch resume continues; set by the checkpointing as the run begins.
    var resumePosition: ResumePosition?
    /// The components the loop calls, in order: progress logger, checkpointing, callbacks.
    let components: [Callback]
    /// Whether each batch's loss is read back as it ends (else only when shown or at the epoch's end).
    let readsEveryBatch: Bool
    /// Whether each training batch is checked before its step (not when `fit` checked every
    /// sample beforehand: data held in memory).
    var checksBatches = true

    init(
        plan: EpochPlan, startEpoch: Int, epochs: Int, schedule: (any LearningRateSchedule)?, metrics: [any Metric],
        components: [Callback], readsEveryBatch: Bool
    ) {
        self.startEpoch = startEpoch
        self.epochs = epochs
        batchesPerEpoch = plan.batchesPerEpoch
        batchSize = plan.batchSize
        self.schedule = schedule?.forRun(
            totalSteps: epochs * plan.batchesPerEpoch,
            firstStep: (startEpoch - 1) * plan.batchesPerEpoch)
        epoch = startEpoch
        progress = EpochProgress(metrics: metrics)
        self.components = components
        self.readsEveryBatch = readsEveryBatch
    }

    /// The run's length in optimizer steps (from epoch 1, whatever epoch it started at).
    public var totalSteps: Int { epochs * batchesPerEpoch }

    /// The epoch's mean training loss and metric values so far, in display order (reads back
    /// from the device whatever batches wait there).
    public func currentValues() -> [(String, Float)] {
        progress.flush()
        return [("loss", progress.meanLoss)] + SupervisedLearner.ordered(SupervisedLearner.values(of: progress.metrics))
    }

    /// Calls `hook` on every component in order.
    func each(_ hook: (Callback) throws -> Void) rethrows {
        for component in components { try hook(component) }
    }

    /// Starts `epoch`: a fresh running total, or the one a mid-epoch checkpoint saved.
    func begin(epoch: Int, metrics: [any Metric]) {
        self.epoch = epoch
        epochStarted = Date()
        progress = EpochProgress(metrics: metrics)
        firstBatch = 0
        if let resumed = resumePosition, resumed.epoch == epoch {
            firstBatch = resumed.batch
            progress.restore(resumed)
        }
        resumePosition = nil
        batch = firstBatch
    }
}
