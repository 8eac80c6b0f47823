/// Element-wise regression losses, the mean over every output (each sample weighted).
public enum ElementwiseRegression: LossFunction {
    case meanSquared
    case meanAbsolute
    case huber(delta: Float)
    case smoothL1(beta: Float)

    public var name: String {
        switch self {
        case .meanSquared: return "mse"
        case .meanAbsolute: return "mae"
        case .huber: return "huber"
        case .smoothL1: return "smooth_l1"
        }
    }

    public var target: LossTarget { .values }

    public func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
        let d = predictions - labels.reshaped(to: predictions.shape)
        let perElement: Tensor
        switch self {
        case .meanSquared: perElement = d.squared()
        case .meanAbsolute: perElement = d.abs()
        case .huber(let delta):
            // PyTorch's huber_loss: ½d² where |d| < δ, δ(|d| − ½δ) elsewhere.
            let a = d.abs()
            let near = a.less(Tensor(repeating: delta, shape: [], on: d.device))
            perElement = near * d.squared() * 0.5 + (1 - near) * (a - 0.5 * delta) * delta
        case .smoothL1(let beta):
            // PyTorch's smooth_l1_loss: ½d²/β where |d| < β, |d| − ½β elsewhere (β = 0: L1).
            let a = d.abs()
            guard beta > 0 else { return a.weightedMean(sampleWeights) }
            let near = a.less(Tensor(repeating: beta, shape: [], on: d.device))
            perElement = near * d.squared() * (0.5 / beta) + (1 - near) * (a - 0.5 * beta)
        }
        return perElement.weightedMean(sampleWeights)
    }
}

/// PyTorch's `binary_cross_entropy_with_logits`: (1 − t)x + (1 + (w₊ − 1)t) log(1 + e^−x), the
/// mean over every output; `pos_weight` w₊ per output column (or one for all).
public struct BinaryCrossEntropy: LossFunction {
    public let positiveWeights: [Float]?

    public init(positiveWeights: [Float]? = nil) { self.positiveWeights = positiveWeights }

    public var name: String { "binary_cross_entropy" }
    public var target: LossTarget { .binary }

    public func problem(withOutputShape outputShape: [Int]) -> String? {
        guard let positiveWeights, positiveWeights.count != 1, positiveWeights.count != (outputShape.first ?? 1) else { return nil }
        return "\(name) has \(positiveWeights.count) positive weights, but the model gives \(outputShape.first ?? 1) outputs per sample"
    }

    public func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
        let t = labels.reshaped(to: predictions.shape)
        guard let positiveWeights else {
            return predictions.sigmoidCrossEntropy(targets: t, sampleWeights: sampleWeights)
        }
        let columns = predictions.rank >= 2 ? predictions.shape[1] : 1
        precondition(
            positiveWeights.count == 1 || positiveWeights.count == columns,
            "binary_cross_entropy: \(positiveWeights.count) positive weights for \(columns) outputs")
        var shape = [Int](repeating: 1, count: predictions.rank)
        if predictions.rank >= 2 { shape[1] = positiveWeights.count }
        let w = Tensor(shape: positiveWeights.count == 1 ? [] : shape, scalars: positiveWeights).to(predictions.device)
        let softplusOfMinusX = (predictions * -1).softplus()
        let perElement = (1 - t) * predictions + (1 + (w - 1) * t) * softplusOfMinusX
        return perElement.weightedMean(sampleWeights)
    }
}
