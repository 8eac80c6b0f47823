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
    /// This schedule for a run of `totalSteps` optimizer steps (counted from the first epoch)
    /// whose first step here is `firstStep` (above 0 when the run resumes). `fit` calls it
    /// before training, so a schedule whose shape spans the run (one-cycle, cosine, polynomial
    /// decay) needs no hand-computed length, and ``ResumeLR`` learns where the run resumed; a
    /// schedule given its length, or one without any, returns itself.
    func forRun(totalSteps: Int, firstStep: Int) -> any LearningRateSchedule
    /// Whether the schedule still needs the run's length (it was made without one and has not
    /// been fitted to a run); stepping with it outside `fit` is refused.
    var needsRunLength: Bool { get }
}

extension LearningRateSchedule {
    public func momentum(at step: Int) -> Float? { nil }
    public func forRun(totalSteps: Int, firstStep: Int) -> any LearningRateSchedule { self }
    public var needsRunLength: Bool { false }
}

/// The length of a schedule that spans the run, or a stop naming the schedule when it was
/// used outside `fit` without one.
@inline(__always) func runLength(_ steps: Int?, of schedule: String) -> Int {
    guard let steps else {
        preconditionFailure("\(schedule) has no totalSteps: give it one, or let fit set it from the run's length")
    }
    return steps
}

/// Cosine interpolation from `start` (pct 0) to `end` (pct 1): PyTorch's `_annealing_cos`.
@inline(__always) func cosineAnneal(_ start: Double, _ end: Double, _ pct: Double) -> Double {
    end + (start - end) / 2 * (Foundation.cos(Double.pi * pct) + 1)
}

/// Linear interpolation from `start` (pct 0) to `end` (pct 1): PyTorch's `_annealing_linear`.
@inline(__always) func linearAnneal(_ start: Double, _ end: Double, _ pct: Double) -> Double {
    (end - start) * pct + start
}
