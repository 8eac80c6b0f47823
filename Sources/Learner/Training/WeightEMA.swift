/// An exponential moving average of the model's parameters.
///
/// After each step `shadow ← d·shadow + (1 − d)·w` (Polyak & Juditsky 1992; TensorFlow's `ExponentialMovingAverage`, timm's
/// `ModelEmaV2`). The learner evaluates and predicts with the averaged weights when it has one.
public final class WeightEMA {
    public let decay: Float
    /// The averaged values, one per parameter in `model.parameters` order.
    public private(set) var shadow: [Tensor] = []

    public init(decay: Float) {
        precondition(decay >= 0 && decay < 1, "EMA decay \(decay) must be in [0, 1)")
        self.decay = decay
    }

    /// Folds the current parameter values into the average (starting from them at the first call).
    public func update(_ parameters: [Parameter]) {
        withoutGradients {
            if shadow.count != parameters.count
                || zip(shadow, parameters).contains(where: { $0.shape != $1.shape || $0.device != $1.device })
            {
                shadow = parameters.map { $0.value.copy() }
                return
            }
            for (i, p) in parameters.enumerated() {
                shadow[i] = shadow[i] * decay + p.value.detached() * (1 - decay)
            }
        }
    }

    /// Replaces the average (from a checkpoint); values in `model.parameters` order.
    public func restore(_ values: [Tensor]) {
        shadow = values.map { $0.copy() }
    }

    /// Runs `body` with the averaged values in the parameters, then puts the trained ones back.
    public func withAveragedWeights<R>(_ parameters: [Parameter], _ body: () throws -> R) rethrows -> R {
        guard shadow.count == parameters.count else { return try body() }
        let trained = parameters.map { $0.value.copy() }
        for (p, s) in zip(parameters, shadow) { p.assign(s) }
        defer { for (p, t) in zip(parameters, trained) { p.assign(t) } }
        return try body()
    }
}
