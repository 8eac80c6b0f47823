import CLearner
import Foundation

extension Tensor {
    /// Mean softmax cross-entropy of `logits` [N, C] against integer class `labels` [N]
    /// (stored as Float), fused with log-softmax for stability.
    ///
    /// - Parameters:
    ///   - labelSmoothing: ε; the target is (1 − ε)·one-hot + ε/C (PyTorch's `label_smoothing`).
    ///   - sampleWeights: optional [N] weights; the loss is Σ wᵢ·ℓᵢ / N (Keras' `sample_weight`).
    public func softmaxCrossEntropy(labels: Tensor, labelSmoothing: Float = 0, sampleWeights: Tensor? = nil) -> Tensor {
        precondition(rank == 2, "softmaxCrossEntropy needs logits [N, C], got \(shape)")
        let n = shape[0], c = shape[1]
        precondition(labels.scalarCount == n, "softmaxCrossEntropy: \(labels.scalarCount) labels for \(n) rows")
        if let w = sampleWeights { precondition(w.scalarCount == n, "softmaxCrossEntropy: \(w.scalarCount) weights for \(n) rows") }
        let logp = backend.softmax(storage, rows: n, columns: c, log: true)
        let lp = labels.storage.pointer
        let wp = sampleWeights?.storage.pointer
        let eps = labelSmoothing
        var total = 0.0
        for i in 0..<n {
            let y = Int(lp[i])
            precondition(y >= 0 && y < c, "label \(lp[i]) at row \(i) is outside 0..<\(c)")
            let row = logp.pointer + i * c
            var loss = -Double(row[y]) * Double(1 - eps)
            if eps > 0 {
                var s = 0.0
                for j in 0..<c { s += Double(row[j]) }
                loss -= Double(eps) * s / Double(c)
            }
            total += loss * Double(wp?[i] ?? 1)
        }
        let out = Tensor(Float(total / Double(n)))
        return Tape.record(.softmaxCrossEntropy, out, inputs: [self]) { g in
            // The closure holds the label and weight tensors: the caller's may be gone by now.
            let lp = labels.storage.pointer, wp = sampleWeights?.storage.pointer
            // d/dlogits = (softmax − target) · wᵢ / N
            let grad = Storage(count: n * c)
            let scale = g.scalar / Float(n)
            for i in 0..<n {
                let y = Int(lp[i])
                let w = (wp?[i] ?? 1) * scale
                let src = logp.pointer + i * c, dst = grad.pointer + i * c
                for j in 0..<c {
                    let target = (j == y ? 1 - eps : 0) + eps / Float(c)
                    dst[j] = (Foundation.exp(src[j]) - target) * w
                }
            }
            return [Tensor(shape: [n, c], storage: grad)]
        }
    }

    /// Mean sigmoid binary cross-entropy of `logits` against targets in [0, 1] of the same
    /// shape, in the stable form max(x, 0) − x·t + log(1 + e^−|x|).
    public func sigmoidCrossEntropy(targets: Tensor, sampleWeights: Tensor? = nil) -> Tensor {
        precondition(targets.scalarCount == scalarCount, "sigmoidCrossEntropy: targets \(targets.shape) for logits \(shape)")
        let count = scalarCount
        let rows = shape.first ?? 1
        let perRow = count / Swift.max(rows, 1)
        let xp = storage.pointer, tp = targets.storage.pointer
        let wp = sampleWeights?.storage.pointer
        var total = 0.0
        for i in 0..<count {
            let x = xp[i], t = tp[i]
            let l = Swift.max(x, 0) - x * t + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
            total += Double(l) * Double(wp?[i / perRow] ?? 1)
        }
        let out = Tensor(Float(total / Double(count)))
        let x = self.detached()
        return Tape.record(.sigmoidCrossEntropy, out, inputs: [self]) { g in
            // The closure holds the target and weight tensors: the caller's may be gone by now.
            let tp = targets.storage.pointer, wp = sampleWeights?.storage.pointer
            let grad = Storage(count: count)
            let scale = g.scalar / Float(count)
            for i in 0..<count {
                let s = 1 / (1 + Foundation.exp(-x.storage.pointer[i]))
                grad.pointer[i] = (s - tp[i]) * scale * (wp?[i / perRow] ?? 1)
            }
            return [Tensor(shape: x.shape, storage: grad)]
        }
    }
}

/// A training objective mapping (predictions, labels, optional per-sample weights) to a scalar.
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
