/// What the model predicts, which fixes its default loss and metrics.
public enum TaskMode: Sendable, Equatable {
    /// One class of several: softmax cross-entropy, accuracy.
    case classification
    /// Any number of labels: sigmoid cross-entropy; a label is predicted when its sigmoid
    /// exceeds `threshold` (accuracy_thresh, fbeta).
    case multiLabel(threshold: Float = 0.5)
    /// Real-valued targets: mean squared error; MAE, RMSE, R².
    case regression

    public var defaultLoss: Loss {
        switch self {
        case .classification: return .softmaxCrossEntropy()
        case .multiLabel: return .sigmoidCrossEntropy
        case .regression: return .meanSquaredError
        }
    }

    public var defaultMetrics: [any Metric] {
        switch self {
        case .classification: return [Accuracy()]
        case .multiLabel(let t): return [AccuracyThresh(threshold: t), FBeta(beta: 2, threshold: t)]
        case .regression: return [MeanAbsoluteError(), RootMeanSquaredError(), RSquared()]
        }
    }

    /// The mode a loss implies: its labels say.
    public init(loss: Loss) {
        switch loss.target {
        case .classIndices: self = .classification
        case .binary: self = .multiLabel()
        case .values: self = .regression
        }
    }
}
