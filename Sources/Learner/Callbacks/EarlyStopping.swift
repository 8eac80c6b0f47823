import Foundation

/// Stops training when a monitored value stops improving (Keras' `EarlyStopping`).
///
/// After `patience` epochs in a row without an improvement larger than `minDelta` (at the
/// first such epoch when 0), sets `learner.stopTraining`. With `restoreBestWeights`, the model's
/// state at the best epoch (parameters and buffers: batch-norm running statistics too) is
/// copied and put back when training ends, and so is the weight average when one is kept.
public final class EarlyStopping: Callback {
    /// Works at epoch ends: batch losses need not be read back from the device.
    public var readsBatchLoss: Bool { false }

    public let monitor: String
    public let patience: Int
    public let mode: MonitorMode
    public let minDelta: Float
    public let restoreBestWeights: Bool
    public private(set) var best: Float?
    public private(set) var bestEpoch: Int?
    /// The epoch after which training was stopped, nil while it was not.
    public private(set) var stoppedEpoch: Int?
    private var wait = 0
    private var bestState: ModuleState?
    private var bestAverage: (shadow: [Tensor], updates: Int)?

    public init(
        monitor: String = "val_loss", patience: Int = 0, mode: MonitorMode? = nil, minDelta: Float = 0,
        restoreBestWeights: Bool = false
    ) {
        self.monitor = monitor
        self.patience = Swift.max(patience, 0)
        self.mode = mode ?? .auto(for: monitor)
        self.minDelta = Swift.abs(minDelta)
        self.restoreBestWeights = restoreBestWeights
    }

    public func onTrainBegin(_ learner: SupervisedLearner) {
        best = nil
        bestEpoch = nil
        stoppedEpoch = nil
        wait = 0
        bestState = nil
        bestAverage = nil
    }

    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        guard let value = log.value(named: monitor) else {
            throw LearnerError.invalidArgument(
                "EarlyStopping monitors '\(monitor)', which the epoch log lacks; it has \(log.valueNames.joined(separator: ", "))"
            )
        }
        if mode.isImprovement(value, over: best, minDelta: minDelta) {
            best = value
            bestEpoch = log.epoch
            wait = 0
            if restoreBestWeights {
                bestState = ModuleState(of: learner.model)
                bestAverage = learner.ema.map { ($0.shadow, $0.updates) }
            }
        } else {
            wait += 1
            if wait >= patience {
                stoppedEpoch = log.epoch
                learner.stopTraining = true
            }
        }
    }

    public func onTrainEnd(_ learner: SupervisedLearner, history: History) {
        guard restoreBestWeights, let bestState else { return }
        bestState.restore(into: learner.model)
        if let bestAverage, let ema = learner.ema { ema.restore(bestAverage.shadow, updates: bestAverage.updates) }
    }
}
