/// Saves the learner's state; the checkpoint module implements it (safetensors + resume JSON).
public protocol CheckpointWriter: AnyObject {
    /// Writes the state after `log.epoch`; `isBest` says whether the monitored value improved.
    func save(_ learner: SupervisedLearner, log: EpochLog, isBest: Bool) throws
}

/// Calls a ``CheckpointWriter`` after each epoch, or only when `monitor` improves with
/// `saveBestOnly` (Keras' `ModelCheckpoint`); the hook where checkpointing plugs into `fit`.
public final class ModelCheckpoint: Callback {
    /// Writes files: rank 0 alone runs it in data-parallel training.
    public var runsOnEveryRank: Bool { false }
    /// Works at epoch ends: batch losses need not be read back from the device.
    public var readsBatchLoss: Bool { false }

    public let writer: CheckpointWriter
    public let monitor: String
    public let mode: MonitorMode
    public let saveBestOnly: Bool
    /// Save every `every` epochs (when not `saveBestOnly`).
    public let every: Int
    public private(set) var best: Float?

    public init(
        writer: CheckpointWriter, monitor: String = "val_loss", mode: MonitorMode? = nil,
        saveBestOnly: Bool = false, every: Int = 1
    ) {
        self.writer = writer
        self.monitor = monitor
        self.mode = mode ?? .auto(for: monitor)
        self.saveBestOnly = saveBestOnly
        self.every = Swift.max(every, 1)
    }

    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        let value = log.value(named: monitor)
        var isBest = false
        if let value, mode.isImprovement(value, over: best, minDelta: 0) {
            best = value
            isBest = true
        }
        if saveBestOnly ? isBest : log.epoch % every == 0 {
            try writer.save(learner, log: log, isBest: isBest)
        }
    }
}
