/// Hooks into `fit` (Keras' `Callback`, fastai's callbacks).
///
/// Each hook is called with the learner, which callbacks may read and steer (`stopTraining`, `optimizer.learningRate`, the model's
/// parameters). Every hook has an empty default, so a callback implements only what it needs.
///
/// Order per run: `trainBegin`, then per epoch `epochBegin`, per batch `batchBegin`/`batchEnd`,
/// `epochEnd` (after validation, with the full ``EpochLog``), and finally `trainEnd`.
/// Hooks may throw: the error ends `fit` and is rethrown to its caller.
///
/// `fit` calls its components for each hook in ``order`` (ties in the order they were given):
/// the progress logger (``CallbackOrder/logging``), the caller's callbacks
/// (``CallbackOrder/standard``), then the checkpointing (``CallbackOrder/checkpointing``).
/// While a hook runs, ``SupervisedLearner/run`` says where the run stands.
public protocol Callback: AnyObject {
    /// Called as `fit` sets the run up, before any other hook and before data-parallel replicas
    /// take rank 0's state: a component that sets the run's starting state (``ModelCheckpoint``
    /// resumes from a checkpoint) does it here.
    func onRunSetup(_ learner: SupervisedLearner) throws
    func onTrainBegin(_ learner: SupervisedLearner) throws
    func onTrainEnd(_ learner: SupervisedLearner, history: History) throws
    func onEpochBegin(_ learner: SupervisedLearner, epoch: Int) throws
    func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws
    func onBatchBegin(_ learner: SupervisedLearner, batch: Int) throws
    /// `loss` is the batch's training loss; `learner.globalStep` counts this step. NaN when no
    /// callback of the run reads batch losses (every one says `readsBatchLoss` false) and `fit`
    /// defers reading them from the GPU (``TrainingOptions/defersHostReads``).
    func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws
    /// Whether ``onBatchEnd(_:batch:loss:)`` uses `loss`: true (the default) makes `fit` read every
    /// batch's loss back from the device as it ends.
    var readsBatchLoss: Bool { get }
    /// In data-parallel training, whether every replica runs this callback (true: callbacks that
    /// steer training, like early stopping, must decide alike everywhere) or rank 0 alone (false:
    /// callbacks that write files or logs).
    var runsOnEveryRank: Bool { get }
    /// Where this callback runs among `fit`'s components for each hook: lower first.
    var order: Int { get }
}

extension Callback {
    public func onRunSetup(_ learner: SupervisedLearner) throws {}
    public func onTrainBegin(_ learner: SupervisedLearner) throws {}
    public func onTrainEnd(_ learner: SupervisedLearner, history: History) throws {}
    public func onEpochBegin(_ learner: SupervisedLearner, epoch: Int) throws {}
    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {}
    public func onBatchBegin(_ learner: SupervisedLearner, batch: Int) throws {}
    public func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws {}
    public var readsBatchLoss: Bool { true }
    public var runsOnEveryRank: Bool { true }
    public var order: Int { CallbackOrder.standard }
}

/// The places of `fit`'s own components among the callbacks (fastai's `Callback.order`).
public enum CallbackOrder {
    /// The epoch line and progress bar: an epoch is logged before anything acts on it.
    public static let logging = -100
    /// The default of every other callback.
    public static let standard = 0
    /// Checkpoints come last: a checkpoint holds the state after every callback acted, and a
    /// callback that fails (throws) keeps a bad state from being saved.
    public static let checkpointing = 100
}

/// Whether a monitored value improves when it goes down (`loss`) or up (`accuracy`).
public enum MonitorMode: String, Sendable {
    case min, max
    /// Keras' `auto`: max for names containing accuracy, kappa, fbeta, precision, recall or r2; else min.
    public static func auto(for name: String) -> MonitorMode {
        ["acc", "kappa", "fbeta", "precision", "recall", "r2"].contains { name.contains($0) } ? .max : .min
    }

    func isImprovement(_ value: Float, over best: Float?, minDelta: Float) -> Bool {
        guard let best else { return !value.isNaN }
        switch self {
        case .min: return value < best - minDelta
        case .max: return value > best + minDelta
        }
    }
}
