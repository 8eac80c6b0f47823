/// Overrides a schedule from a resume point on (tefla's `resume_lr`).
///
/// From `fromStep`, the learning rate is `resumeLR · inner(step)/inner(fromStep)` — the schedule's shape continues
/// from the given value — or exactly `resumeLR` when `rescale` is false or the schedule is 0
/// there. Steps before `fromStep` are the inner schedule's, so the function stays pure.
/// Without `fromStep`, `fit` sets it to the first step of the run it resumes, and a run that
/// starts at step 0 keeps the inner schedule.
public struct ResumeLR: LearningRateSchedule {
    public var inner: any LearningRateSchedule
    public var resumeLR: Float
    public var fromStep: Int?
    public var rescale: Bool

    public init(_ inner: any LearningRateSchedule, resumeLR: Float, fromStep: Int? = nil, rescale: Bool = true) {
        self.inner = inner
        self.resumeLR = resumeLR
        self.fromStep = fromStep
        self.rescale = rescale
    }

    public func learningRate(at step: Int) -> Float {
        guard let fromStep, step >= fromStep else { return inner.learningRate(at: step) }
        let anchor = inner.learningRate(at: fromStep)
        guard rescale, anchor != 0 else { return resumeLR }
        return resumeLR * inner.learningRate(at: step) / anchor
    }

    public func momentum(at step: Int) -> Float? { inner.momentum(at: step) }

    public var needsRunLength: Bool { inner.needsRunLength }

    public func forRun(totalSteps: Int, firstStep: Int) -> any LearningRateSchedule {
        let fitted = inner.forRun(totalSteps: totalSteps, firstStep: firstStep)
        let from = fromStep ?? firstStep
        guard from > 0 else { return fitted }
        return ResumeLR(fitted, resumeLR: resumeLR, fromStep: from, rescale: rescale)
    }
}
