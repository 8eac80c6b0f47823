/// What a loss reads its labels as: the checks run before training and test-time averaging
/// follow it.
public enum LossTarget: Sendable, Equatable {
    /// One class index per sample, or per pixel for `[N, C, H, W]` outputs (labels `[N, H, W]`);
    /// `ignoredLabel` marks samples or pixels left out of the loss.
    case classIndices(ignoredLabel: Int? = nil)
    /// 0/1 targets, one per output, scored through a sigmoid (multi-label).
    case binary
    /// Real values, one per output (regression, or a distribution per sample).
    case values
}

/// A training objective written from the public tensor ops: the autodiff differentiates it.
///
/// Implement it for a loss the package does not ship (or use ``Loss/init(name:target:_:)``
/// with a closure). It must reduce the batch to one scalar.
public protocol LossFunction: Sendable {
    /// The loss of `predictions` (the model's outputs) against `labels`, each sample weighing
    /// `sampleWeights[i]` when given: one scalar.
    func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor
    /// How the labels are read.
    var target: LossTarget { get }
    /// The loss's name in errors and summaries.
    var name: String { get }
    /// Why model outputs of `outputShape` per sample cannot go into this loss (checked with
    /// the labels before training), nil when they can. By default any shape can.
    func problem(withOutputShape outputShape: [Int]) -> String?
}

extension LossFunction {
    public func problem(withOutputShape outputShape: [Int]) -> String? { nil }
}

/// A loss as the learner takes it: any ``LossFunction``, with the built-ins as static members
/// (`.softmaxCrossEntropy()`, `.focal(gamma: 2)`, `.dice()`, ...), each defined as PyTorch
/// defines it.
public struct Loss: Sendable {
    public let function: any LossFunction

    public init(_ function: any LossFunction) { self.function = function }

    /// A loss from a closure of (predictions, labels, sample weights).
    public init(
        name: String, target: LossTarget = .values, _ body: @escaping @Sendable (Tensor, Tensor, Tensor?) -> Tensor
    ) {
        function = ClosureLoss(name: name, target: target, body: body)
    }

    public func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor? = nil) -> Tensor {
        function(predictions, labels, sampleWeights: sampleWeights)
    }

    public var target: LossTarget { function.target }
    public var name: String { function.name }

    /// Whether predictions are class scores compared by arg-max (accuracy is meaningful).
    public var isClassification: Bool {
        if case .classIndices = target { return true }
        return false
    }
}

private struct ClosureLoss: LossFunction {
    let name: String
    let target: LossTarget
    let body: @Sendable (Tensor, Tensor, Tensor?) -> Tensor

    func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
        body(predictions, labels, sampleWeights)
    }
}

extension Loss {
    /// Multi-class classification from logits `[N, C]` (or `[N, C, H, W]` with labels
    /// `[N, H, W]`, per pixel) and class indices: PyTorch's `cross_entropy` with
    /// `label_smoothing`, `weight` (one per class) and `ignore_index`.
    public static func softmaxCrossEntropy(labelSmoothing: Float = 0, classWeights: [Float]? = nil, ignoreIndex: Int? = nil)
        -> Loss
    {
        Loss(SoftmaxCrossEntropy(labelSmoothing: labelSmoothing, classWeights: classWeights, ignoreIndex: ignoreIndex))
    }

    /// Multi-label classification from logits and 0/1 targets: PyTorch's
    /// `binary_cross_entropy_with_logits`.
    public static var sigmoidCrossEntropy: Loss { Loss(BinaryCrossEntropy(positiveWeights: nil)) }

    /// `binary_cross_entropy_with_logits` with `pos_weight` (one per output, or one for all).
    public static func binaryCrossEntropy(positiveWeights: [Float]? = nil) -> Loss {
        Loss(BinaryCrossEntropy(positiveWeights: positiveWeights))
    }

    /// Regression, mean squared error (`mse_loss`).
    public static var meanSquaredError: Loss { Loss(ElementwiseRegression.meanSquared) }
    /// Regression, mean absolute error (`l1_loss`).
    public static var meanAbsoluteError: Loss { Loss(ElementwiseRegression.meanAbsolute) }
    /// `huber_loss`: ½d² below `delta`, δ(|d| − ½δ) above.
    public static func huber(delta: Float = 1) -> Loss { Loss(ElementwiseRegression.huber(delta: delta)) }
    /// `smooth_l1_loss`: ½d²/β below `beta`, |d| − ½β above.
    public static func smoothL1(beta: Float = 1) -> Loss { Loss(ElementwiseRegression.smoothL1(beta: beta)) }

    /// Focal loss (Lin et al.) over softmax class scores: −α(1 − p_y)^γ log p_y, the mean over
    /// samples (or pixels) not ignored.
    public static func focal(gamma: Float = 2, alpha: Float = 1, ignoreIndex: Int? = nil) -> Loss {
        Loss(FocalLoss(gamma: gamma, alpha: alpha, ignoreIndex: ignoreIndex))
    }

    /// Soft Dice loss over softmax class scores: 1 − the mean over classes of
    /// (2Σpy + s)/(Σp + Σy + s), pixels labelled `ignoreIndex` left out.
    public static func dice(smooth: Float = 1, ignoreIndex: Int? = nil) -> Loss {
        Loss(DiceLoss(smooth: smooth, ignoreIndex: ignoreIndex))
    }

    /// KL divergence of the softmax of the logits from target distributions (`kl_div` of
    /// `log_softmax` with `reduction='batchmean'`).
    public static var klDivergence: Loss { Loss(KLDivergence()) }
}

extension Tensor {
    /// Mean of per-sample values `[N, ...]` (or per element), sample i weighted by `weights[i]`.
    func weightedMean(_ weights: Tensor?) -> Tensor {
        guard let weights else { return mean() }
        var wShape = [Int](repeating: 1, count: rank)
        wShape[0] = weights.scalarCount
        return (self * weights.reshaped(to: wShape)).mean()
    }
}
