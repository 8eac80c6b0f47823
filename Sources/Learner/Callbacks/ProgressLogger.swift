import Foundation

/// `fit`'s report: Keras' progress bar (``TrainingOptions/verbose`` 1) and the line per epoch
/// (1 and 2), through ``TrainingOptions/progressOutput`` and ``TrainingOptions/log``. `fit`
/// adds one to every run; it runs on data-parallel rank 0 alone.
final class ProgressLogger: Callback {
    var runsOnEveryRank: Bool { false }
    var readsBatchLoss: Bool { false }
    var order: Int { CallbackOrder.logging }
    private var bar: ProgressBar?

    func onEpochBegin(_ learner: SupervisedLearner, epoch: Int) {
        guard learner.options.verbose == 1, let run = learner.run else { return }
        let options = learner.options
        let terminal = options.progressOutput
        bar = ProgressBar(
            epoch: epoch, epochs: run.epochs, totalBatches: run.batchesPerEpoch, isTerminal: terminal != nil,
            started: run.epochStarted, write: terminal ?? options.log)
    }

    func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) {
        guard let run = learner.run else { return }
        bar?.update(batch: batch + 1, samples: run.progress.seen) { run.currentValues() }  // read back only when drawn
    }

    func onEpochEnd(_ learner: SupervisedLearner, log entry: EpochLog) {
        bar?.finish()
        bar = nil
        guard learner.options.verbose > 0, let run = learner.run else { return }
        learner.options.log(ProgressLogger.format(entry, of: run.epochs, showLearningRate: learner.activeSchedule != nil))
        if let skipped = entry.skipped, skipped.count > 0 { learner.options.log("Epoch \(entry.epoch): corrupt records \(skipped)") }
    }

    /// The epoch line (Keras' format): `Epoch 3/20 - 0.41s - loss: … - val_accuracy: …`.
    static func format(_ e: EpochLog, of total: Int, showLearningRate: Bool = false) -> String {
        var parts = ["Epoch \(e.epoch)/\(total)", String(format: "%.2fs", e.seconds), String(format: "loss: %.4f", e.trainLoss)]
        var train = SupervisedLearner.ordered(e.metrics)
        if e.metrics["accuracy"] == nil, let a = e.trainAccuracy { train.insert(("accuracy", a), at: 0) }
        for (name, value) in train { parts.append(String(format: "\(name): %.4f", value)) }
        if let l = e.validationLoss { parts.append(String(format: "val_loss: %.4f", l)) }
        var validation = SupervisedLearner.ordered(e.validationMetrics)
        if e.validationMetrics["accuracy"] == nil, let a = e.validationAccuracy { validation.insert(("accuracy", a), at: 0) }
        for (name, value) in validation { parts.append(String(format: "val_\(name): %.4f", value)) }
        if showLearningRate, let lr = e.learningRate { parts.append(String(format: "lr: %.3g", lr)) }
        parts.append(String(format: "%.0f samples/s", e.trainSamplesPerSecond))
        return parts.joined(separator: " - ")
    }
}
