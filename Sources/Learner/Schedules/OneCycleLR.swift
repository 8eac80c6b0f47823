import Foundation

/// The 1cycle policy (Smith 2018, "A disciplined approach to neural network hyper-parameters").
///
/// fastai's `fit_one_cycle`, with PyTorch's `OneCycleLR` formulas (two phases, cosine annealing):
///
/// - phase 1, steps 0…`pct·total − 1`: LR from `maxLR/divFactor` up to `maxLR`, momentum from
///   `maxMomentum` down to `baseMomentum`;
/// - phase 2, up to step `total − 1`: LR down to `maxLR/divFactor/finalDivFactor`, momentum back up.
///
/// Within a phase `pct = (step − start)/(end − start)` and `value = end + (start − end)/2·(cos(π·pct) + 1)`.
/// The momentum is applied to SGD's momentum or Adam's β₁ (see ``Optimizer/scheduledMomentum``).
public struct OneCycleLR: LearningRateSchedule {
    public var maxLR: Float
    /// The run's optimizer steps; nil: `fit` sets it from its epochs and batches per epoch.
    public var totalSteps: Int?
    /// Fraction of the steps spent increasing the LR (PyTorch 0.3, fastai 0.25).
    public var pctStart: Double
    public var divFactor: Double
    public var finalDivFactor: Double
    /// nil leaves the optimizer's momentum alone.
    public var momentumRange: (base: Float, max: Float)?

    public init(
        maxLR: Float, totalSteps: Int? = nil, pctStart: Double = 0.3, divFactor: Double = 25,
        finalDivFactor: Double = 1e4, momentumRange: (base: Float, max: Float)? = (0.85, 0.95)
    ) {
        self.maxLR = maxLR
        self.totalSteps = totalSteps.map { Swift.max($0, 2) }
        self.pctStart = pctStart
        self.divFactor = divFactor
        self.finalDivFactor = finalDivFactor
        self.momentumRange = momentumRange
    }

    public var needsRunLength: Bool { totalSteps == nil }

    public func forRun(totalSteps steps: Int, firstStep: Int) -> any LearningRateSchedule {
        guard totalSteps == nil else { return self }
        var resolved = self
        resolved.totalSteps = Swift.max(steps, 2)
        return resolved
    }

    /// Phase and fraction of it done at `step`; the last phase extends past `totalSteps`.
    private func phase(_ step: Int) -> (first: Bool, pct: Double) {
        let total = runLength(totalSteps, of: "OneCycleLR")
        let end1 = pctStart * Double(total) - 1
        let end2 = Double(total - 1)
        let s = Double(Swift.max(step, 0))
        if s <= end1 { return (true, end1 > 0 ? s / end1 : 1) }
        return (false, Swift.min((s - end1) / Swift.max(end2 - end1, 1e-12), 1))
    }

    public func learningRate(at step: Int) -> Float {
        let initial = Double(maxLR) / divFactor
        let minimum = initial / finalDivFactor
        let (first, pct) = phase(step)
        return Float(first ? cosineAnneal(initial, Double(maxLR), pct) : cosineAnneal(Double(maxLR), minimum, pct))
    }

    public func momentum(at step: Int) -> Float? {
        guard let (base, top) = momentumRange else { return nil }
        let (first, pct) = phase(step)
        return Float(
            first ? cosineAnneal(Double(top), Double(base), pct) : cosineAnneal(Double(base), Double(top), pct))
    }
}
