import Foundation

/// Class scores as rows: `[N, C]` as they are, `[N, C, H, W]` with each pixel a row of C
/// (labels `[N, H, W]`), and each row's label, weight (sample weight × class weight, 0 when
/// ignored) and validity, read on the host.
struct ClassRows {
    let rows: Tensor
    let classes: Int
    /// Each row's class, 0 for ignored rows (whose weight is 0).
    let labels: [Int]
    /// Sample weight of each row's sample, 0 where the label is ignored.
    let weights: [Float]

    init(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?, ignoreIndex: Int?, loss: String) {
        precondition(
            predictions.rank == 2 || predictions.rank == 4, "\(loss): class scores [N, C] or [N, C, H, W], got \(predictions.shape)")
        let c = predictions.shape[1]
        let perSample = predictions.rank == 4 ? predictions.shape[2] * predictions.shape[3] : 1
        rows = predictions.rank == 4 ? predictions.transposed([0, 2, 3, 1]).reshaped(to: [-1, c]) : predictions
        precondition(
            labels.scalarCount == rows.shape[0],
            "\(loss): \(labels.scalarCount) labels for \(rows.shape[0]) \(perSample > 1 ? "pixels" : "samples")")
        let sample = sampleWeights?.scalars
        var classes: [Int] = [], weights: [Float] = []
        classes.reserveCapacity(rows.shape[0])
        weights.reserveCapacity(rows.shape[0])
        for (i, value) in labels.scalars.enumerated() {
            let y = Int(value)
            if let ignoreIndex, y == ignoreIndex {
                classes.append(0)
                weights.append(0)
                continue
            }
            precondition(y >= 0 && y < c && Float(y) == value, "\(loss): label \(value) at \(i) is outside 0..<\(c)")
            classes.append(y)
            weights.append(sample?[i / perSample] ?? 1)
        }
        self.classes = c
        self.labels = classes
        self.weights = weights
    }

    var count: Int { labels.count }

    /// `[rows, C]` on the rows' device: `value(i, c)` in row i, column c.
    func matrix(_ value: (Int, Int) -> Float) -> Tensor {
        var m = [Float](repeating: 0, count: count * classes)
        for i in 0..<count where weights[i] != 0 {
            for c in 0..<classes { m[i * classes + c] = value(i, c) }
        }
        return Tensor(shape: [count, classes], scalars: m).to(rows.device)
    }

    /// `[rows]` on the rows' device.
    func vector(_ value: (Int) -> Float) -> Tensor {
        Tensor(shape: [count], scalars: (0..<count).map(value)).to(rows.device)
    }
}

/// PyTorch's `cross_entropy`: −Σ_c K[i,c] log p[i,c] over the rows, K mixing the label
/// (1 − ε) and the uniform smoothing ε/C, each column weighted by its class weight; divided by
/// Σ w[y_i] over the rows not ignored (PyTorch's weighted mean).
public struct SoftmaxCrossEntropy: LossFunction {
    public let labelSmoothing: Float
    public let classWeights: [Float]?
    public let ignoreIndex: Int?

    public init(labelSmoothing: Float = 0, classWeights: [Float]? = nil, ignoreIndex: Int? = nil) {
        self.labelSmoothing = labelSmoothing
        self.classWeights = classWeights
        self.ignoreIndex = ignoreIndex
    }

    public var name: String { "softmax_cross_entropy" }
    public var target: LossTarget { .classIndices(ignoredLabel: ignoreIndex) }

    public func problem(withOutputShape outputShape: [Int]) -> String? {
        guard let classWeights, let classes = outputShape.first, classWeights.count != classes else { return nil }
        return "\(name) has \(classWeights.count) class weights, but the model gives \(classes) class scores"
    }

    public func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
        if predictions.rank == 2, classWeights == nil, ignoreIndex == nil {
            // The fused kernel: the mean over samples, each weighted (Keras' sample weights).
            return predictions.softmaxCrossEntropy(labels: labels, labelSmoothing: labelSmoothing, sampleWeights: sampleWeights)
        }
        let r = ClassRows(predictions, labels, sampleWeights: sampleWeights, ignoreIndex: ignoreIndex, loss: name)
        let w = classWeights ?? [Float](repeating: 1, count: r.classes)
        // fit names a mismatch first (problem(withOutputShape:)).
        precondition(w.count == r.classes, "\(name): \(w.count) class weights for \(r.classes) classes")
        let eps = labelSmoothing, smooth = labelSmoothing / Float(r.classes)
        let k = r.matrix { i, c in r.weights[i] * ((c == r.labels[i] ? (1 - eps) * w[c] : 0) + smooth * w[c]) }
        var denominator: Float = 0
        for i in 0..<r.count where r.weights[i] != 0 { denominator += w[r.labels[i]] }
        return (k * r.rows.logSoftmax()).sum() * (-1 / Swift.max(denominator, .leastNormalMagnitude))
    }
}

/// Focal loss over softmax scores: −α(1 − p_y)^γ log p_y, averaged over the rows not ignored.
public struct FocalLoss: LossFunction {
    public let gamma: Float
    public let alpha: Float
    public let ignoreIndex: Int?

    public init(gamma: Float = 2, alpha: Float = 1, ignoreIndex: Int? = nil) {
        self.gamma = gamma
        self.alpha = alpha
        self.ignoreIndex = ignoreIndex
    }

    public var name: String { "focal" }
    public var target: LossTarget { .classIndices(ignoredLabel: ignoreIndex) }

    public func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
        let r = ClassRows(predictions, labels, sampleWeights: sampleWeights, ignoreIndex: ignoreIndex, loss: name)
        let logPY = (r.matrix { i, c in c == r.labels[i] ? 1 : 0 } * r.rows.logSoftmax()).sum(alongAxis: 1)
        let modulation = gamma == 0 ? Tensor(repeating: 1, shape: [r.count], on: r.rows.device) : (1 - logPY.exp()).pow(gamma)
        let valid = r.weights.filter { $0 != 0 }.count
        return (modulation * logPY * r.vector { r.weights[$0] }).sum() * (-alpha / Float(Swift.max(valid, 1)))
    }
}

/// Soft Dice over softmax scores: 1 − mean over classes of (2Σ p·y + s) / (Σ p + Σ y + s), the
/// sums over rows not ignored (each weighted by its sample's weight).
public struct DiceLoss: LossFunction {
    public let smooth: Float
    public let ignoreIndex: Int?

    public init(smooth: Float = 1, ignoreIndex: Int? = nil) {
        self.smooth = smooth
        self.ignoreIndex = ignoreIndex
    }

    public var name: String { "dice" }
    public var target: LossTarget { .classIndices(ignoredLabel: ignoreIndex) }

    public func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
        let r = ClassRows(predictions, labels, sampleWeights: sampleWeights, ignoreIndex: ignoreIndex, loss: name)
        let onehot = r.matrix { i, c in c == r.labels[i] ? r.weights[i] : 0 }
        let mask = r.matrix { i, _ in r.weights[i] }
        let p = r.rows.softmax()
        let intersection = (p * onehot).sum(alongAxis: 0)
        let cardinality = (p * mask).sum(alongAxis: 0) + onehot.sum(alongAxis: 0)
        let dice = (intersection * 2 + smooth) / (cardinality + smooth)
        return 1 - dice.mean()
    }
}

/// `kl_div(log_softmax(x), t, reduction='batchmean')`: Σ t (log t − log p) / N, with 0 log 0 = 0.
public struct KLDivergence: LossFunction {
    public init() {}

    public var name: String { "kl_divergence" }
    public var target: LossTarget { .values }

    public func problem(withOutputShape outputShape: [Int]) -> String? {
        outputShape.count == 1 ? nil : "\(name) needs [classes] outputs per sample; the model gives \(ShapeError.text(outputShape))"
    }

    public func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
        precondition(predictions.rank == 2, "kl_divergence: logits [N, C], got \(predictions.shape)")
        let n = predictions.shape[0], c = predictions.shape[1]
        let t = labels.reshaped(to: [n, c]).detached().scalars
        let w = sampleWeights?.scalars
        // Σ t log t is a constant of the targets.
        var entropy = 0.0
        for i in 0..<n {
            for j in 0..<c where t[i * c + j] > 0 {
                entropy += Double(w?[i] ?? 1) * Double(t[i * c + j]) * Foundation.log(Double(t[i * c + j]))
            }
        }
        let weighted = Tensor(shape: [n, c], scalars: (0..<(n * c)).map { t[$0] * (w?[$0 / c] ?? 1) }).to(predictions.device)
        return (Float(entropy) - (weighted * predictions.logSoftmax()).sum()) * (1 / Float(Swift.max(n, 1)))
    }
}
