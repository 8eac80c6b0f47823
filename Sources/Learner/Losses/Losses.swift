/// A training objective mapping (predictions, labels, optional per-sample weights) to a scalar.
/// The cross-entropies are tensor ops (Tensor/CrossEntropyOps.swift) with fused backward rules.
public enum Loss: Sendable {
    /// Multi-class classification from logits and integer labels.
    case softmaxCrossEntropy(labelSmoothing: Float = 0)
    /// Multi-label classification from logits and 0/1 targets.
    case sigmoidCrossEntropy
    /// Regression, mean squared error.
    case meanSquaredError
    /// Regression, mean absolute error.
    case meanAbsoluteError

    public func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor? = nil) -> Tensor {
        switch self {
        case .softmaxCrossEntropy(let eps):
            return predictions.softmaxCrossEntropy(labels: labels, labelSmoothing: eps, sampleWeights: sampleWeights)
        case .sigmoidCrossEntropy:
            return predictions.sigmoidCrossEntropy(targets: labels.reshaped(to: predictions.shape), sampleWeights: sampleWeights)
        case .meanSquaredError:
            return Loss.weightedMean((predictions - labels.reshaped(to: predictions.shape)).squared(), sampleWeights)
        case .meanAbsoluteError:
            return Loss.weightedMean((predictions - labels.reshaped(to: predictions.shape)).abs(), sampleWeights)
        }
    }

    private static func weightedMean(_ perElement: Tensor, _ weights: Tensor?) -> Tensor {
        guard let weights else { return perElement.mean() }
        var wShape = [Int](repeating: 1, count: perElement.rank)
        wShape[0] = weights.scalarCount
        return (perElement * weights.reshaped(to: wShape)).mean()
    }

    /// Whether predictions are class scores compared by arg-max (accuracy is meaningful).
    public var isClassification: Bool {
        if case .softmaxCrossEntropy = self { return true }
        return false
    }
}
