/// How fp16 training scales its loss (PyTorch's `torch.amp.GradScaler`, Keras'
/// `LossScaleOptimizer`): the loss is multiplied by a scale before the backward pass, so that
/// small gradients survive fp16's range, and the gradients are divided by it before clipping
/// and the optimizer. A step whose gradients hold an infinity or a NaN is skipped.
///
/// ```swift
/// var options = TrainingOptions()
/// options.precision = .fp16
/// options.lossScaling = LossScaling(initialScale: 1024, growthInterval: 500)
/// ```
public struct LossScaling: Sendable, Equatable {
    /// The scale of the first step (2¹⁶, as PyTorch's).
    public var initialScale: Float
    /// What the scale is multiplied by after `growthInterval` steps in a row without overflow.
    public var growthFactor: Float
    /// What the scale is multiplied by after a step with non-finite gradients.
    public var backoffFactor: Float
    /// Steps in a row with finite gradients before the scale grows.
    public var growthInterval: Int
    /// false: the scale stays `initialScale` (a static loss scale); a step with non-finite
    /// gradients is still skipped.
    public var dynamic: Bool

    public init(
        initialScale: Float = 65536, growthFactor: Float = 2, backoffFactor: Float = 0.5, growthInterval: Int = 2000,
        dynamic: Bool = true
    ) {
        precondition(initialScale > 0 && initialScale.isFinite, "loss scale \(initialScale) must be finite and > 0")
        precondition(growthFactor >= 1 && backoffFactor > 0 && backoffFactor < 1, "growth factor must be >= 1 and backoff in (0, 1)")
        precondition(growthInterval > 0, "growth interval \(growthInterval) must be > 0")
        self.initialScale = initialScale
        self.growthFactor = growthFactor
        self.backoffFactor = backoffFactor
        self.growthInterval = growthInterval
        self.dynamic = dynamic
    }
}

/// The running state of ``LossScaling`` in a ``SupervisedLearner`` training in fp16
/// (``SupervisedLearner/lossScaler``): the current scale and the clean steps since it last
/// changed, both saved in checkpoints so a resumed run scales as the uninterrupted one.
public final class LossScaler {
    public let configuration: LossScaling
    /// What the next step's loss is multiplied by.
    public internal(set) var scale: Float
    /// Steps in a row with finite gradients since the scale last changed.
    public internal(set) var growthTracker = 0
    /// Steps skipped for non-finite gradients since this scaler was made.
    public internal(set) var skippedSteps = 0

    public init(_ configuration: LossScaling = LossScaling()) {
        self.configuration = configuration
        scale = configuration.initialScale
    }

    /// Divides every gradient of `parameters` by the scale; returns whether all of them are
    /// finite. One read from the device for all of them: the sum of every gradient, which is
    /// finite exactly when each element is (an infinity or NaN anywhere makes it non-finite).
    func unscale(_ parameters: [Parameter]) -> Bool {
        withoutGradients {
            let inverse = 1 / scale
            var total: Tensor?
            for p in parameters {
                guard let g = p.gradient else { continue }
                let unscaled = g * inverse
                p.gradient = unscaled
                let s = unscaled.sum()
                total = total.map { $0 + s } ?? s
            }
            return total?.scalar.isFinite ?? true
        }
    }

    /// Moves the scale after a step: backs off and restarts the count when the gradients were
    /// not finite, grows after ``LossScaling/growthInterval`` finite steps in a row.
    func update(gradientsFinite: Bool) {
        if !gradientsFinite { skippedSteps += 1 }
        guard configuration.dynamic else { return }
        if gradientsFinite {
            growthTracker += 1
            if growthTracker >= configuration.growthInterval {
                let grown = scale * configuration.growthFactor
                if grown.isFinite { scale = grown }
                growthTracker = 0
            }
        } else {
            scale = Swift.max(scale * configuration.backoffFactor, .leastNormalMagnitude)
            growthTracker = 0
        }
    }

    /// Sets the state a checkpoint saved.
    func restore(scale: Float, growthTracker: Int) {
        self.scale = scale
        self.growthTracker = growthTracker
    }
}
