import Foundation

/// What a learning-rate range test measured (Smith 2017 §3.3; fastai's `lr_find`).
public struct LRFinderResult: Sendable {
    /// The learning rate of each step taken.
    public var learningRates: [Float]
    /// The raw batch losses.
    public var losses: [Float]
    /// The bias-corrected exponential moving average of the losses.
    public var smoothedLosses: [Float]
    /// Whether the sweep stopped early because the loss diverged.
    public var diverged: Bool
    /// The rate where the smoothed loss falls fastest (steepest negative slope against log LR).
    public var steepest: Float
    /// The rate of the lowest smoothed loss.
    public var minimumLossRate: Float
    /// A suggested range for schedules (CLR's `base_lr…max_lr`, one-cycle's `max_lr` at the top).
    ///
    /// `upper` is a tenth of the minimum-loss rate (fastai's `lr_min / 10`; Smith: a bit below the
    /// divergence point). The smoothed loss bottoms out past the point where training starts to
    /// diverge, because the moving average lags the exploding raw loss, so a decade below it is
    /// a rate that still converges: on least squares, whose SGD diverges above 2/λmax, it lands
    /// between 0.2/λmax and 2/λmax for sweeps of 10 or more steps per decade (LRFinderTests).
    /// The steepest descent alone is no bound: the loss can fall fastest just past the divergence
    /// point, while the direction that diverges still holds little of it.
    /// `lower` is the steepest-descent rate, at most `upper / 4` (Smith 2017 §3.3: `base_lr` a
    /// third to a quarter of `max_lr`).
    public var suggestedRange: (lower: Float, upper: Float) {
        let upper = minimumLossRate / 10
        return (Swift.min(steepest, upper / 4), upper)
    }

    /// The smoothed loss against log₁₀ LR as a standalone SVG document, with the suggestion marked.
    public func svg(width: Int = 640, height: Int = 400) -> String {
        let points = zip(learningRates, smoothedLosses).filter { $0.0 > 0 && $0.1.isFinite }
        guard let first = points.first else { return "<svg xmlns=\"http://www.w3.org/2000/svg\"/>" }
        let xs = points.map { Double(log10($0.0)) }
        let ys = points.map { Double($0.1) }
        let xMin = xs.min() ?? 0
        let xMax = Swift.max(xs.max() ?? 1, xMin + 1e-9)
        // Clip the divergent tail so the interesting part fills the plot.
        let yMin = ys.min() ?? 0
        let yMax = Swift.max(Swift.min(ys.max() ?? 1, Double(first.1) * 1.5), yMin + 1e-9)
        let m = 50.0
        let w = Double(width)
        let h = Double(height)
        func px(_ x: Double) -> Double { m + (x - xMin) / (xMax - xMin) * (w - 2 * m) }
        func py(_ y: Double) -> Double { h - m - (Swift.min(y, yMax) - yMin) / (yMax - yMin) * (h - 2 * m) }
        let path = zip(xs, ys).map { String(format: "%.1f,%.1f", px($0), py($1)) }.joined(separator: " ")
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += String(
            format: "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", m, h - m, w - m, h - m
        )
        svg += String(
            format: "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", m, m, m, h - m)
        for decade in Int(xMin.rounded(.up))...Swift.max(Int(xMin.rounded(.up)), Int(xMax.rounded(.down))) {
            let x = px(Double(decade))
            svg += String(
                format: "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">1e%d</text>\n", x, h - m + 16, decade)
        }
        svg += String(
            format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">learning rate (log scale)</text>\n", w / 2,
            h - 8)
        svg += String(
            format:
                "<text x=\"14\" y=\"%.0f\" transform=\"rotate(-90 14 %.0f)\" text-anchor=\"middle\">smoothed loss</text>\n",
            h / 2, h / 2)
        svg += "<polyline fill=\"none\" stroke=\"steelblue\" stroke-width=\"2\" points=\"\(path)\"/>\n"
        // Vertical markers: the steepest descent and the suggested maximum rate.
        for (rate, colour, label, row) in [(steepest, "red", "steepest", 0.0), (suggestedRange.upper, "green", "suggested max", 1.0)] {
            let x = px(Double(log10(rate)))
            svg +=
                String(format: "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" ", x, m, x, h - m)
                + "stroke=\"\(colour)\" stroke-dasharray=\"4\"/>\n"
            svg +=
                String(format: "<text x=\"%.1f\" y=\"%.0f\" ", x + 4, m + 12 + 14 * row)
                + "fill=\"\(colour)\">\(label) " + String(format: "%.2g", rate) + "</text>\n"
        }
        return svg + "</svg>\n"
    }

    public func writeSVG(to path: String) throws {
        try AtomicFile.write(Data(svg().utf8), to: path)
    }
}

extension SupervisedLearner {
    /// The learning-rate range test (Smith 2017; fastai's `lr_find`, micro_dl's LR finder):
    /// trains `iterations` steps with the rate growing exponentially from `startLR` to `endLR`
    /// (`lrᵢ = start·(end/start)^(i/(n−1))`), smoothing the loss as `aᵢ = β·aᵢ₋₁ + (1 − β)·ℓᵢ`,
    /// `sᵢ = aᵢ/(1 − β^(i+1))`, and stopping once `sᵢ > divergence · min s` or the loss is not finite.
    ///
    /// Afterwards the model's parameters, the optimizer's state and learning rate, the global
    /// step, the schedule and the weight average are as they were (the optimizer's informational `stepCount` keeps counting).
    ///
    /// `training` is any source (in memory, image shards through the decoding pipeline, a user's
    /// own): the sweep takes its shuffled, augmented training batches, a fresh pass when one ends.
    public func findLearningRate(
        training: any DataSource, startLR: Float = 1e-7, endLR: Float = 10,
        iterations: Int = 100, batchSize: Int = 32, smoothing: Float = 0.98,
        divergence: Float = 4
    ) throws -> LRFinderResult {
        guard startLR > 0, endLR > startLR else {
            throw LearnerError.invalidArgument("LR finder needs 0 < startLR < endLR, got \(startLR) and \(endLR)")
        }
        guard iterations >= 2, batchSize > 0, training.sampleCount != 0 else {
            throw LearnerError.invalidArgument(
                "LR finder needs iterations >= 2, batchSize > 0 and a non-empty data set")
        }
        try checkData(training, batchSize: batchSize)
        // Snapshot everything the sweep changes: weights and batch-norm statistics, the
        // optimizer's buffers and rate, the step, the schedule and the weight average.
        let savedModel = ModuleState(of: model)
        let savedState = optimizer.state.mapValues { buffers in
            buffers.map { b -> Storage in
                let copy = Storage(count: b.count, device: b.device)
                DeviceCopy.copy(from: b, to: copy)
                return copy
            }
        }
        let savedSteps = optimizer.parameterSteps
        let savedLR = optimizer.learningRate
        let savedMomentum = optimizer.scheduledMomentum
        let savedOptions = options
        let savedGlobalStep = globalStep
        let savedEMA = ema
        defer {
            options = savedOptions
            ema = savedEMA
            savedModel.restore(into: model)
            optimizer.state = savedState
            optimizer.parameterSteps = savedSteps
            optimizer.learningRate = savedLR
            optimizer.scheduledMomentum = savedMomentum
            globalStep = savedGlobalStep
        }
        options.schedule = nil
        ema = nil  // the sweep's weights must not enter the average

        var rates: [Float] = []
        var losses: [Float] = []
        var smoothed: [Float] = []
        var average = 0.0
        var best = Double.infinity
        var diverged = false
        let beta = Double(smoothing)
        let ratio = Double(endLR) / Double(startLR)
        var epoch = 1
        var batches = try training.batches(BatchRequest(epoch: epoch, batchSize: batchSize, training: true, seed: seed))
        for i in 0..<iterations {
            var next = try batches.next()
            if next == nil {
                epoch += 1
                batches = try training.batches(BatchRequest(epoch: epoch, batchSize: batchSize, training: true, seed: seed))
                next = try batches.next()
            }
            guard let batch = next else { throw LearnerError.invalidArgument("LR finder: \(training.dataDescription) gave no batch") }
            let lr = Float(Double(startLR) * Foundation.pow(ratio, Double(i) / Double(iterations - 1)))
            optimizer.learningRate = lr
            let loss = try trainStep(inputs: batch.inputs, labels: batch.labels, sampleWeights: batch.sampleWeights).loss
            rates.append(lr)
            losses.append(loss)
            guard loss.isFinite else {
                diverged = true
                break
            }
            average = beta * average + (1 - beta) * Double(loss)
            let s = average / (1 - Foundation.pow(beta, Double(i + 1)))
            smoothed.append(Float(s))
            best = Swift.min(best, s)
            if i > 0, s > Double(divergence) * best {
                diverged = true
                break
            }
        }
        let finite = Array(zip(rates, smoothed))
        let minimum = finite.min { $0.1 < $1.1 }?.0 ?? startLR
        // Steepest descent of the smoothed loss against log LR (central differences).
        var steepest = minimum
        var slope = Float.infinity
        if finite.count >= 3 {
            for k in 1..<(finite.count - 1) {
                let d = (finite[k + 1].1 - finite[k - 1].1) / (log10(finite[k + 1].0) - log10(finite[k - 1].0))
                if d < slope {
                    slope = d
                    steepest = finite[k].0
                }
            }
        }
        return LRFinderResult(
            learningRates: rates, losses: losses, smoothedLosses: smoothed, diverged: diverged,
            steepest: steepest, minimumLossRate: minimum)
    }
}
