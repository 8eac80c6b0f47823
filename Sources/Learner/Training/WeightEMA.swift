/// An exponential moving average of a model's weights and batch-norm statistics.
///
/// After each step `shadow ← dₙ·shadow + (1 − dₙ)·w` (Polyak & Juditsky 1992), for every
/// parameter and every floating-point buffer (running means and variances), as timm's
/// `ModelEmaV2` does: averaged weights evaluated with the raw weights' running statistics
/// would normalise with statistics of another network. Counters (`num_batches_tracked`) are
/// copied, not averaged.
///
/// With `warmup` (the default) the decay grows with the number of updates n made before this
/// one, as TensorFlow's `ExponentialMovingAverage(num_updates:)`: `dₙ = min(d, (1 + n)/(10 + n))`,
/// so an average started from random weights does not drag them along for ~1/(1 − d) steps.
/// The first update starts the average at the current values.
public final class WeightEMA {
    public let decay: Float
    public let warmup: Bool
    /// Updates folded in so far (the n of the warm-up; saved with checkpoints).
    public private(set) var updates = 0
    /// The averaged values, one per tracked tensor: `model.namedParametersAndBuffers` order
    /// for ``update(_:)-(Module)``, the given order for ``update(_:)-([Parameter])``.
    public private(set) var shadow: [Tensor] = []

    public init(decay: Float, warmup: Bool = true) {
        precondition(decay >= 0 && decay < 1, "EMA decay \(decay) must be in [0, 1)")
        self.decay = decay
        self.warmup = warmup
    }

    /// The decay of the update made after `n` earlier ones.
    public func decay(afterUpdates n: Int) -> Float {
        warmup ? Swift.min(decay, Float(1 + n) / Float(10 + n)) : decay
    }

    /// Folds the model's parameters and buffers into the average.
    public func update(_ model: Module) {
        let tracked = model.namedParametersAndBuffers
        fold(tracked.map(\.parameter), averaged: tracked.map { !$0.name.hasSuffix("num_batches_tracked") })
    }

    /// Folds these tensors' current values into the average.
    public func update(_ parameters: [Parameter]) {
        fold(parameters, averaged: Array(repeating: true, count: parameters.count))
    }

    private func fold(_ tracked: [Parameter], averaged: [Bool]) {
        withoutGradients {
            if shadow.count != tracked.count
                || zip(shadow, tracked).contains(where: { $0.shape != $1.shape || $0.device != $1.device })
            {
                shadow = tracked.map { $0.value.copy() }
                updates = 1
                return
            }
            let d = decay(afterUpdates: updates)
            for (i, p) in tracked.enumerated() {
                shadow[i] = averaged[i] ? shadow[i] * d + p.value.detached() * (1 - d) : p.value.copy()
            }
            updates += 1
        }
    }

    /// Replaces the average (from a checkpoint): values in the tracked order, and the update count.
    public func restore(_ values: [Tensor], updates: Int) {
        shadow = values.map { $0.copy() }
        self.updates = updates
    }

    /// Runs `body` with the averaged values in the model, then puts the trained ones back.
    public func withAveragedWeights<R>(_ model: Module, _ body: () throws -> R) rethrows -> R {
        try withAveragedWeights(model.namedParametersAndBuffers.map(\.parameter), body)
    }

    /// Runs `body` with the averaged values in `tracked`, then puts the trained ones back.
    public func withAveragedWeights<R>(_ tracked: [Parameter], _ body: () throws -> R) rethrows -> R {
        guard shadow.count == tracked.count else { return try body() }
        let trained = withoutGradients { tracked.map { $0.value.copy() } }
        for (p, s) in zip(tracked, shadow) { p.assign(s) }
        defer { for (p, t) in zip(tracked, trained) { p.assign(t) } }
        return try body()
    }
}
