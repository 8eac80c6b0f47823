extension Tensor {
    /// Mean softmax cross-entropy of `logits` [N, C] against integer class `labels` [N]
    /// (stored as Float), fused with log-softmax for stability.
    ///
    /// - Parameters:
    ///   - labels: [N] class indices, stored as Float.
    ///   - labelSmoothing: ε; the target is (1 − ε)·one-hot + ε/C (PyTorch's `label_smoothing`).
    ///   - sampleWeights: optional [N] weights; the loss is Σ wᵢ·ℓᵢ / N (Keras' `sample_weight`).
    public func softmaxCrossEntropy(labels: Tensor, labelSmoothing: Float = 0, sampleWeights: Tensor? = nil) -> Tensor {
        precondition(rank == 2, "softmaxCrossEntropy needs logits [N, C], got \(shape)")
        let n = shape[0], c = shape[1]
        precondition(labels.scalarCount == n, "softmaxCrossEntropy: \(labels.scalarCount) labels for \(n) rows")
        if let w = sampleWeights { precondition(w.scalarCount == n, "softmaxCrossEntropy: \(w.scalarCount) weights for \(n) rows") }
        let backend = self.backend
        let out = Tensor(
            shape: [],
            storage: backend.softmaxCrossEntropy(
                storage, labels: labels.storage, weights: sampleWeights?.storage, smoothing: labelSmoothing, rows: n, columns: c))
        let logits = self.detached()
        return Tape.record(.softmaxCrossEntropy, out, inputs: [self]) { g in
            // The closure holds the logits, label and weight tensors: the caller's may be gone.
            [
                Tensor(
                    shape: [n, c],
                    storage: backend.softmaxCrossEntropyBackward(
                        logits.storage, labels: labels.storage, weights: sampleWeights?.storage, smoothing: labelSmoothing,
                        scale: g.scalar / Float(n), rows: n, columns: c))
            ]
        }
    }

    /// Mean sigmoid binary cross-entropy of `logits` against targets in [0, 1] of the same
    /// shape, in the stable form max(x, 0) − x·t + log(1 + e^−|x|).
    public func sigmoidCrossEntropy(targets: Tensor, sampleWeights: Tensor? = nil) -> Tensor {
        precondition(targets.scalarCount == scalarCount, "sigmoidCrossEntropy: targets \(targets.shape) for logits \(shape)")
        let count = scalarCount
        let perRow = count / Swift.max(shape.first ?? 1, 1)
        let backend = self.backend
        let out = Tensor(
            shape: [],
            storage: backend.sigmoidCrossEntropy(
                storage, targets: targets.storage, weights: sampleWeights?.storage, perRow: perRow))
        let x = self.detached()
        return Tape.record(.sigmoidCrossEntropy, out, inputs: [self]) { g in
            [
                Tensor(
                    shape: x.shape,
                    storage: backend.sigmoidCrossEntropyBackward(
                        x.storage, targets: targets.storage, weights: sampleWeights?.storage, perRow: perRow,
                        scale: g.scalar / Float(count)))
            ]
        }
    }
}
