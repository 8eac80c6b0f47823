import Foundation

/// The same learning rate at every step.
public struct ConstantLR: LearningRateSchedule {
    public var value: Float
    public init(_ value: Float) { self.value = value }
    public func learningRate(at step: Int) -> Float { value }
}

/// Step decay: `base · γ^⌊step / stepSize⌋` (PyTorch's `StepLR`, Keras' step-decay recipe).
public struct StepDecayLR: LearningRateSchedule {
    public var base: Float
    public var gamma: Float
    /// Steps between two decays.
    public var stepSize: Int

    public init(base: Float, gamma: Float = 0.1, stepSize: Int) {
        self.base = base
        self.gamma = gamma
        self.stepSize = Swift.max(stepSize, 1)
    }

    public func learningRate(at step: Int) -> Float {
        Float(Double(base) * Foundation.pow(Double(gamma), Double(Swift.max(step, 0) / stepSize)))
    }
}

/// Exponential decay: `base · γ^(step / decaySteps)`, or with ⌊·⌋ when `staircase`
/// (TensorFlow's `tf.keras.optimizers.schedules.ExponentialDecay`).
public struct ExponentialDecayLR: LearningRateSchedule {
    public var base: Float
    public var gamma: Float
    public var decaySteps: Int
    public var staircase: Bool

    public init(base: Float, gamma: Float, decaySteps: Int = 1, staircase: Bool = false) {
        self.base = base
        self.gamma = gamma
        self.decaySteps = Swift.max(decaySteps, 1)
        self.staircase = staircase
    }

    public func learningRate(at step: Int) -> Float {
        var p = Double(Swift.max(step, 0)) / Double(decaySteps)
        if staircase { p = p.rounded(.down) }
        return Float(Double(base) * Foundation.pow(Double(gamma), p))
    }
}

/// Polynomial decay: `(base − endLR)·(1 − min(step, decaySteps)/decaySteps)^power + endLR`
/// (TensorFlow's `PolynomialDecay` without cycling; power 1 is linear decay).
public struct PolynomialDecayLR: LearningRateSchedule {
    public var base: Float
    public var endLR: Float
    /// Steps until `endLR` is reached; nil: `fit` sets the run's length.
    public var decaySteps: Int?
    public var power: Float

    public init(base: Float, endLR: Float = 0, decaySteps: Int? = nil, power: Float = 1) {
        self.base = base
        self.endLR = endLR
        self.decaySteps = decaySteps.map { Swift.max($0, 1) }
        self.power = power
    }

    public var needsRunLength: Bool { decaySteps == nil }

    public func forRun(totalSteps steps: Int, firstStep: Int) -> any LearningRateSchedule {
        guard decaySteps == nil else { return self }
        return PolynomialDecayLR(base: base, endLR: endLR, decaySteps: steps, power: power)
    }

    public func learningRate(at step: Int) -> Float {
        let total = runLength(decaySteps, of: "PolynomialDecayLR")
        let s = Double(Swift.min(Swift.max(step, 0), total))
        let f = Foundation.pow(1 - s / Double(total), Double(power))
        return Float(Double(base - endLR) * f + Double(endLR))
    }
}

/// Linear warmup from 0 to `base` over `warmupSteps`, then cosine decay to `minLR` at `totalSteps`.
///
/// (Goyal et al. 2017 warmup; Loshchilov & Hutter 2017 SGDR without restarts;
/// Hugging Face's `get_cosine_schedule_with_warmup` when `minLR` is 0).
public struct CosineWarmupLR: LearningRateSchedule {
    public var base: Float
    public var warmupSteps: Int
    /// The run's optimizer steps; nil: `fit` sets it from its epochs and batches per epoch.
    public var totalSteps: Int?
    public var minLR: Float

    public init(base: Float, warmupSteps: Int = 0, totalSteps: Int? = nil, minLR: Float = 0) {
        self.base = base
        self.warmupSteps = Swift.max(warmupSteps, 0)
        self.totalSteps = totalSteps.map { Swift.max($0, Swift.max(warmupSteps, 0) + 1) }
        self.minLR = minLR
    }

    public var needsRunLength: Bool { totalSteps == nil }

    public func forRun(totalSteps steps: Int, firstStep: Int) -> any LearningRateSchedule {
        guard totalSteps == nil else { return self }
        return CosineWarmupLR(base: base, warmupSteps: warmupSteps, totalSteps: steps, minLR: minLR)
    }

    public func learningRate(at step: Int) -> Float {
        let step = Swift.max(step, 0)
        if step < warmupSteps { return base * Float(step) / Float(Swift.max(warmupSteps, 1)) }
        let total = runLength(totalSteps, of: "CosineWarmupLR")
        let progress = Swift.min(Double(step - warmupSteps) / Double(total - warmupSteps), 1)
        return Float(cosineAnneal(Double(base), Double(minLR), progress))
    }
}
