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

    /// Training mode with the statistics of the samples of every replica (PyTorch's
    /// `SyncBatchNorm`): `allReduceSum` adds a vector over the replicas (each replica calls it
    /// in the same order: twice here, once in the forward and once in the backward pass).
    /// Returns the output, the global mean and biased variance [C] and the global count of
    /// values per channel. The gradient of x uses the global sums Σg and Σg·x̂; those of weight
    /// and bias are this replica's part (the gradient all-reduce adds them up).
    func synchronizedBatchNorm(
        weight: Tensor, bias: Tensor, epsilon: Float, allReduceSum: @escaping ([Double]) -> [Double]
    ) -> (output: Tensor, mean: Tensor, variance: Tensor, count: Int) {
        let (n, c, s) = batchNormView(weight: weight, bias: bias)
        let backend = self.backend
        let local = Double(n * s)
        var sums = [Double](repeating: 0, count: 2 * c + 1)
        if n * s > 0 {
            let (m, v) = backend.batchNormStatistics(storage, batch: n, channels: c, spatial: s)
            let mean = Tensor(shape: [c], storage: m).scalars, variance = Tensor(shape: [c], storage: v).scalars
            for k in 0..<c {
                sums[k] = local * Double(mean[k])
                sums[c + k] = local * (Double(variance[k]) + Double(mean[k]) * Double(mean[k]))
            }
        }
        sums[2 * c] = local
        let total = allReduceSum(sums)
        let count = Swift.max(total[2 * c], 1)
        var globalMean = [Float](repeating: 0, count: c), globalVariance = [Float](repeating: 0, count: c)
        for k in 0..<c {
            let mu = total[k] / count
            globalMean[k] = Float(mu)
            globalVariance[k] = Float(Swift.max(total[c + k] / count - mu * mu, 0))
        }
        let mean = Tensor(shape: [c], scalars: globalMean).to(device), variance = Tensor(shape: [c], scalars: globalVariance).to(device)
        let out = Tensor(
            shape: shape,
            storage: backend.batchNorm(
                storage, mean: mean.storage, variance: variance.storage, weight: weight.storage, bias: bias.storage,
                epsilon: epsilon, batch: n, channels: c, spatial: s))
        let x = self.detached(), w = weight.detached()
        let needX = requiresGradient, needW = weight.requiresGradient, needB = bias.requiresGradient
        let broadcastShape = [1, c] + [Int](repeating: 1, count: Swift.max(rank - 2, 0))
        let recorded = Tape.record(.batchNorm, out, inputs: [self, weight, bias]) { g in
            // This replica's Σg (the bias gradient) and Σg·x̂ (the weight gradient) at the global statistics.
            let r = backend.batchNormBackward(
                g.storage, input: x.storage, mean: mean.storage, variance: variance.storage, weight: w.storage,
                epsilon: epsilon, batchStatistics: false, batch: n, channels: c, spatial: s)
            let dBias = Tensor(shape: [c], storage: r.bias), dWeight = Tensor(shape: [c], storage: r.weight)
            let global = allReduceSum(dBias.scalars.map(Double.init) + dWeight.scalars.map(Double.init))
            // dx = k·(g − Σg/M − x̂·Σgx̂/M), k = w/√(var + ε), x̂ = (x − μ)/√(var + ε):
            // dx = g·k − x·b + (b·μ − a) per channel, with a = k·Σg/M and b = k·Σgx̂/(M·√(var + ε)).
            let weights = w.scalars
            var k = [Float](repeating: 0, count: c), b = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
            for ch in 0..<c {
                let inv = 1 / (Double(globalVariance[ch]) + Double(epsilon)).squareRoot()
                let kc = Double(weights[ch]) * inv
                let a = kc * global[ch] / count, bc = kc * global[c + ch] * inv / count
                k[ch] = Float(kc)
                b[ch] = Float(-bc)
                shift[ch] = Float(bc * Double(globalMean[ch]) - a)
            }
            let dx =
                needX
                ? withoutGradients {
                    g * Tensor(shape: broadcastShape, scalars: k).to(g.device) + x * Tensor(shape: broadcastShape, scalars: b).to(g.device)
                        + Tensor(shape: broadcastShape, scalars: shift).to(g.device)
                } : nil
            return [dx, needW ? dWeight : nil, needB ? dBias : nil]
        }
        return (recorded, mean, variance, Int(count))
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
