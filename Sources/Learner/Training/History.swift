/// What one epoch measured.
public struct EpochLog: Sendable, Equatable {
    /// 1-based epoch number (as tefla counts).
    public var epoch: Int
    public var trainLoss: Float
    /// Arg-max accuracy on the training batches (classification only).
    public var trainAccuracy: Float?
    public var validationLoss: Float?
    public var validationAccuracy: Float?
    /// Wall-clock seconds of the epoch, validation included.
    public var seconds: Double
    public var trainSamplesPerSecond: Double
    /// Every metric over the epoch's training batches, by key (`accuracy`, `top_5_accuracy`, `mae`…).
    public var metrics: [String: Float] = [:]
    /// The same metrics on the validation set, by the same keys (shown with a `val_` prefix).
    public var validationMetrics: [String: Float] = [:]
    /// The learning rate of the epoch's last step.
    public var learningRate: Float?
    /// Training records the data source skipped as corrupt this epoch (``ImagePipelineOptions/skipCorrupt``),
    /// with the files and reasons.
    public var skipped: SkipReport?

    /// A logged value by its Keras name: `loss`, `val_loss`, `lr`, a metric key or `val_` + a metric key.
    public func value(named name: String) -> Float? {
        switch name {
        case "loss": return trainLoss
        case "val_loss": return validationLoss
        case "lr", "learning_rate": return learningRate
        case "accuracy" where metrics["accuracy"] == nil: return trainAccuracy
        case "val_accuracy" where validationMetrics["accuracy"] == nil: return validationAccuracy
        default:
            if name.hasPrefix("val_") { return validationMetrics[String(name.dropFirst(4))] }
            return metrics[name]
        }
    }

    /// Names of every value this log holds, in display order: loss, metrics, validation, lr.
    public var valueNames: [String] {
        var names = ["loss"]
        var trainKeys = metrics.keys.sorted()
        if trainAccuracy != nil && !trainKeys.contains("accuracy") { trainKeys.insert("accuracy", at: 0) }
        names += trainKeys
        if validationLoss != nil { names.append("val_loss") }
        var validationKeys = validationMetrics.keys.sorted()
        if validationAccuracy != nil && !validationKeys.contains("accuracy") { validationKeys.insert("accuracy", at: 0) }
        names += validationKeys.map { "val_" + $0 }
        if learningRate != nil { names.append("lr") }
        return names
    }
}

/// Every epoch's measurements, returned by `fit` (Keras' `History`).
public struct History: Sendable {
    public var epochs: [EpochLog] = []
    /// Epochs of an earlier run that a plot continues (``HistoryPlot`` on resume).
    var carriedPlotRows: [(epoch: Int, values: [String: Double])] = []

    public init(epochs: [EpochLog] = []) { self.epochs = epochs }

    public var lastValidationAccuracy: Float? { epochs.last?.validationAccuracy }
    public var bestValidationAccuracy: Float? { epochs.compactMap(\.validationAccuracy).max() }

    /// One logged value across epochs (`history["val_loss"]`), nil where an epoch lacks it.
    public subscript(name: String) -> [Float?] { epochs.map { $0.value(named: name) } }
}
