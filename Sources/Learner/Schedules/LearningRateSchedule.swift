import Foundation

/// A learning rate (and optionally a momentum) as a pure function of the global step.
///
/// `step` counts the optimizer steps taken before the one about to be made (0 for the first),
/// as PyTorch's `last_epoch` does for per-iteration schedulers. Being a pure function of the
/// step, a schedule resumes exactly: a run restarted at step `s` sees the same values.
public protocol LearningRateSchedule: Sendable {
    /// The learning rate of the step with index `step` (0-based).
    func learningRate(at step: Int) -> Float
    /// The momentum (SGD) or β₁ (Adam) of that step, for schedules that cycle it; nil leaves it alone.
    func momentum(at step: Int) -> Float?
}

extension LearningRateSchedule {
    public func momentum(at step: Int) -> Float? { nil }
}

/// Cosine interpolation from `start` (pct 0) to `end` (pct 1): PyTorch's `_annealing_cos`.
@inline(__always) func cosineAnneal(_ start: Double, _ end: Double, _ pct: Double) -> Double {
    end + (start - end) / 2 * (Foundation.cos(Double.pi * pct) + 1)
}

/// Linear interpolation from `start` (pct 0) to `end` (pct 1): PyTorch's `_annealing_linear`.
@inline(__always) func linearAnneal(_ start: Double, _ end: Double, _ pct: Double) -> Double {
    (end - start) * pct + start
}

extension Optimizer {
    /// Sets the momentum term a schedule cycles: SGD's `momentum`, Adam's `beta1`, RMSProp's
    /// `momentum` (PyTorch's OneCycleLR/CyclicLR `cycle_momentum`).
    public func setScheduledMomentum(_ value: Float) {
        if let sgd = self as? SGD {
            sgd.momentum = value
        } else if let adam = self as? Adam {
            adam.beta1 = value
        } else if let rms = self as? RMSProp {
            rms.momentum = value
        }
    }
}
