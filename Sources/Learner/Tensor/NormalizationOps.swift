/// Batch normalisation (Ioffe & Szegedy 2015) over [N, C] or [N, C, H, W] activations.
///
/// y = (x − μ) / √(σ² + ε) · γ + β per channel c, with μ, σ² over the N·H·W values of c.
extension Tensor {
    /// (batch, channels, spatial) of a [N, C, ...] input.
    private func batchNormView(weight: Tensor, bias: Tensor) -> (Int, Int, Int) {
        precondition(rank >= 2, "batchNorm: input \(shape) should be [N, C] or [N, C, H, W]")
        let c = shape[1]
        precondition(
            weight.shape == [c] && bias.shape == [c],
            "batchNorm: weight \(weight.shape) and bias \(bias.shape) should be [\(c)] for input \(shape)")
        return (shape[0], c, scalarCount / Swift.max(shape[0] * c, 1))
    }

    /// Training mode: normalises with this batch's statistics. Returns the output, the batch
    /// mean [C] and the biased batch variance [C] (divided by N·H·W; the statistics carry no gradient,
    /// the output's gradient includes their dependence on x).
    public func batchNorm(weight: Tensor, bias: Tensor, epsilon: Float = 1e-5) -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let (n, c, s) = batchNormView(weight: weight, bias: bias)
        let backend = self.backend
        let (mean, variance) = backend.batchNormStatistics(storage, batch: n, channels: c, spatial: s)
        let out = normalised(weight: weight, bias: bias, mean: mean, variance: variance, epsilon: epsilon, batchStatistics: true)
        return (out, Tensor(shape: [c], storage: mean), Tensor(shape: [c], storage: variance))
    }

    /// Evaluation mode: normalises with given statistics (running mean and variance, [C]).
    public func batchNorm(weight: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float = 1e-5) -> Tensor {
        let (_, c, _) = batchNormView(weight: weight, bias: bias)
        precondition(
            mean.shape == [c] && variance.shape == [c],
            "batchNorm: mean \(mean.shape) and variance \(variance.shape) should be [\(c)] for input \(shape)")
        return normalised(
            weight: weight, bias: bias, mean: mean.storage, variance: variance.storage, epsilon: epsilon,
            batchStatistics: false)
    }

    private func normalised(
        weight: Tensor, bias: Tensor, mean: Storage, variance: Storage, epsilon: Float,
        batchStatistics: Bool
    ) -> Tensor {
        let (n, c, s) = batchNormView(weight: weight, bias: bias)
        let backend = self.backend
        let out = Tensor(
            shape: shape,
            storage: backend.batchNorm(
                storage, mean: mean, variance: variance, weight: weight.storage,
                bias: bias.storage, epsilon: epsilon, batch: n, channels: c, spatial: s))
        let x = self.detached(), w = weight.detached()
        let needX = requiresGradient, needW = weight.requiresGradient, needB = bias.requiresGradient
        return Tape.record(.batchNorm, out, inputs: [self, weight, bias]) { g in
            let r = backend.batchNormBackward(
                g.storage, input: x.storage, mean: mean, variance: variance, weight: w.storage,
                epsilon: epsilon, batchStatistics: batchStatistics, batch: n, channels: c, spatial: s)
            return [
                needX ? Tensor(shape: x.shape, storage: r.input) : nil,
                needW ? Tensor(shape: [c], storage: r.weight) : nil,
                needB ? Tensor(shape: [c], storage: r.bias) : nil,
            ]
        }
    }
}
