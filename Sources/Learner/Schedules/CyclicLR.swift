import Foundation

/// Cyclical learning rates (Smith 2017, "Cyclical Learning Rates for Training Neural Networks").
///
/// PyTorch's `CyclicLR` formulas; `step` counts iterations, not epochs:
///
/// `cycle = ⌊1 + step/(up + down)⌋`, `x = 1 + step/(up + down) − cycle`,
/// `scale = x/r` while `x ≤ r = up/(up + down)`, else `(x − 1)/(r − 1)`;
/// `lr = base + (max − base)·scale·f`, where `f` is 1 (triangular), `1/2^(cycle−1)` (triangular2)
/// or `γ^step` (exp_range). Momentum cycles inversely: `max_m − (max_m − base_m)·scale·f`, between
/// 0.8 and 0.9 unless given (PyTorch's `cycle_momentum=True` defaults; nil leaves it alone).
public struct CyclicLR: LearningRateSchedule {
    public enum Mode: String, Sendable, CaseIterable {
        case triangular, triangular2
        case expRange = "exp_range"
    }

    public var baseLR: Float
    public var maxLR: Float
    /// Iterations of the increasing half-cycle.
    public var stepSizeUp: Int
    /// Iterations of the decreasing half-cycle (`stepSizeUp` when nil).
    public var stepSizeDown: Int
    public var mode: Mode
    /// The decay of `exp_range`: `γ^iterations`.
    public var gamma: Double
    public var momentumRange: (base: Float, max: Float)?

    public init(
        baseLR: Float, maxLR: Float, stepSizeUp: Int = 2000, stepSizeDown: Int? = nil, mode: Mode = .triangular,
        gamma: Double = 1, momentumRange: (base: Float, max: Float)? = (0.8, 0.9)
    ) {
        self.baseLR = baseLR
        self.maxLR = maxLR
        self.stepSizeUp = Swift.max(stepSizeUp, 1)
        self.stepSizeDown = Swift.max(stepSizeDown ?? stepSizeUp, 1)
        self.mode = mode
        self.gamma = gamma
        self.momentumRange = momentumRange
    }

    /// `scale · f` at `step`: the height of the cycle reached, in [0, 1].
    func height(at step: Int) -> Double {
        let s = Double(Swift.max(step, 0))
        let total = Double(stepSizeUp + stepSizeDown)
        let ratio = Double(stepSizeUp) / total
        let cycle = (1 + s / total).rounded(.down)
        let x = 1 + s / total - cycle
        let scale = x <= ratio ? x / ratio : (x - 1) / (ratio - 1)
        switch mode {
        case .triangular: return scale
        case .triangular2: return scale / Foundation.pow(2, cycle - 1)
        case .expRange: return scale * Foundation.pow(gamma, s)
        }
    }

    public func learningRate(at step: Int) -> Float {
        Float(Double(baseLR) + Double(maxLR - baseLR) * height(at: step))
    }

    public func momentum(at step: Int) -> Float? {
        guard let (base, top) = momentumRange else { return nil }
        return Float(Double(top) - Double(top - base) * height(at: step))
    }
}
