import Foundation
import Learner
import Yams

/// The `schedule:` section: a learning-rate schedule by name with its parameters (steps count
/// optimizer iterations; totals default to epochs × batches per epoch, known once data is read).
struct ScheduleSpec: Equatable {
    enum Name: String, CaseIterable {
        case constant, step, exponential, polynomial, cosine
        case oneCycle = "one_cycle"
        case cyclic
    }

    var name: Name = .constant
    var gamma: Double?
    var stepSize: Int?
    var decaySteps: Int?
    var staircase = false
    var endLR = 0.0
    var power = 1.0
    var warmupSteps = 0
    var minLR = 0.0
    var totalSteps: Int?
    var maxLR: Double?
    var baseLR: Double?
    var pctStart = 0.3
    var divFactor = 25.0
    var finalDivFactor = 1e4
    var baseMomentum = 0.85
    var maxMomentum = 0.95
    var cycleMomentum = true
    var stepSizeUp = 2000
    var stepSizeDown: Int?
    var mode = CyclicLR.Mode.triangular
    var resumeLR: Double?

    static let common = ["name", "resume_lr"]
    /// The keys each schedule reads.
    static let keys: [Name: [String]] = [
        .constant: [],
        .step: ["gamma", "step_size"],
        .exponential: ["gamma", "decay_steps", "staircase"],
        .polynomial: ["end_lr", "power", "decay_steps"],
        .cosine: ["warmup_steps", "min_lr", "total_steps"],
        .oneCycle: [
            "max_lr", "total_steps", "pct_start", "div_factor", "final_div_factor", "base_momentum", "max_momentum",
            "cycle_momentum",
        ],
        .cyclic: [
            "base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma", "base_momentum", "max_momentum",
            "cycle_momentum",
        ],
    ]
    static var allKeys: [String] {
        var seen = Set<String>()
        return (common + Name.allCases.flatMap { keys[$0] ?? [] }).filter { seen.insert($0).inserted }
    }

    static func parse(_ s: Section, reader: ConfigReader) -> ScheduleSpec {
        var spec = ScheduleSpec()
        let nameText = s.oneOf("name", Name.allCases.map(\.rawValue), default: "constant")
        spec.name = Name(rawValue: nameText) ?? .constant
        let used = Set(common + (keys[spec.name] ?? []))
        for key in s.values.keys.sorted() where !used.contains(key) && allKeys.contains(key) {
            reader.report(
                s.values[key]?.key, s.keyPath(key),
                "is not used by the '\(spec.name.rawValue)' schedule (it reads: \((keys[spec.name] ?? []).joined(separator: ", ")))"
            )
        }
        spec.gamma = s.float("gamma", minimum: 0, exclusiveMinimum: true)
        spec.stepSize = s.int("step_size", required: spec.name == .step, minimum: 1)
        spec.decaySteps = s.int("decay_steps", required: spec.name == .exponential, minimum: 1)
        spec.staircase = s.bool("staircase", default: false)
        spec.endLR = s.float("end_lr", default: 0, minimum: 0) ?? 0
        spec.power = s.float("power", default: 1, minimum: 0) ?? 1
        spec.warmupSteps = s.int("warmup_steps", default: 0, minimum: 0) ?? 0
        spec.minLR = s.float("min_lr", default: 0, minimum: 0) ?? 0
        spec.totalSteps = s.int("total_steps", minimum: 2)
        spec.maxLR = s.float("max_lr", required: spec.name == .cyclic, minimum: 0, exclusiveMinimum: true)
        spec.baseLR = s.float("base_lr", minimum: 0, exclusiveMinimum: true)
        spec.pctStart = s.float("pct_start", default: 0.3, minimum: 0, exclusiveMinimum: true) ?? 0.3
        if spec.pctStart >= 1 {
            reader.report(s.node("pct_start"), s.keyPath("pct_start"), "must be < 1, got \(spec.pctStart)")
        }
        spec.divFactor = s.float("div_factor", default: 25, minimum: 0, exclusiveMinimum: true) ?? 25
        spec.finalDivFactor = s.float("final_div_factor", default: 1e4, minimum: 0, exclusiveMinimum: true) ?? 1e4
        let defaultBase = spec.name == .cyclic ? 0.8 : 0.85
        let defaultMax = spec.name == .cyclic ? 0.9 : 0.95
        spec.baseMomentum = s.float("base_momentum", default: defaultBase, minimum: 0) ?? defaultBase
        spec.maxMomentum = s.float("max_momentum", default: defaultMax, minimum: 0) ?? defaultMax
        spec.cycleMomentum = s.bool("cycle_momentum", default: true)
        spec.stepSizeUp = s.int("step_size_up", default: 2000, minimum: 1) ?? 2000
        spec.stepSizeDown = s.int("step_size_down", minimum: 1)
        spec.mode =
            CyclicLR.Mode(rawValue: s.oneOf("mode", CyclicLR.Mode.allCases.map(\.rawValue), default: "triangular"))
            ?? .triangular
        spec.resumeLR = s.float("resume_lr", minimum: 0, exclusiveMinimum: true)
        return spec
    }

    /// The library schedule starting from `baseLR`. Without `total_steps` (or `decay_steps`),
    /// schedules that span the run learn its length from `fit`; `resume_lr` applies from the
    /// first step of a resumed run.
    func make(baseLR: Double) -> any LearningRateSchedule {
        let total = totalSteps
        let lr = Float(baseLR)
        let momenta: (base: Float, max: Float)? = cycleMomentum ? (Float(baseMomentum), Float(maxMomentum)) : nil
        let schedule: any LearningRateSchedule
        switch name {
        case .constant: schedule = ConstantLR(lr)
        case .step: schedule = StepDecayLR(base: lr, gamma: Float(gamma ?? 0.1), stepSize: stepSize ?? 1)
        case .exponential:
            schedule = ExponentialDecayLR(
                base: lr, gamma: Float(gamma ?? 0.96), decaySteps: decaySteps ?? 1, staircase: staircase)
        case .polynomial:
            schedule = PolynomialDecayLR(
                base: lr, endLR: Float(endLR), decaySteps: decaySteps ?? total, power: Float(power))
        case .cosine:
            schedule = CosineWarmupLR(base: lr, warmupSteps: warmupSteps, totalSteps: total, minLR: Float(minLR))
        case .oneCycle:
            schedule = OneCycleLR(
                maxLR: Float(maxLR ?? baseLR), totalSteps: total, pctStart: pctStart, divFactor: divFactor,
                finalDivFactor: finalDivFactor, momentumRange: momenta)
        case .cyclic:
            schedule = CyclicLR(
                baseLR: Float(self.baseLR ?? baseLR), maxLR: Float(maxLR ?? baseLR), stepSizeUp: stepSizeUp,
                stepSizeDown: stepSizeDown, mode: mode, gamma: gamma ?? 1, momentumRange: momenta)
        }
        if let resumeLR { return ResumeLR(schedule, resumeLR: Float(resumeLR)) }
        return schedule
    }
}

/// `lr_finder:`: the learning-rate range test run by `--find-lr`.
struct LRFinderSpec: Equatable {
    var startLR = 1e-7
    var endLR = 10.0
    var iterations = 100
    var plot = "lr_finder.svg"

    static let keys = ["start_lr", "end_lr", "iterations", "plot"]

    static func parse(_ s: Section, reader: ConfigReader) -> LRFinderSpec {
        var spec = LRFinderSpec()
        spec.startLR = s.float("start_lr", default: 1e-7, minimum: 0, exclusiveMinimum: true) ?? 1e-7
        spec.endLR = s.float("end_lr", default: 10, minimum: 0, exclusiveMinimum: true) ?? 10
        if spec.endLR <= spec.startLR {
            reader.report(
                s.node("end_lr"), s.keyPath("end_lr"),
                "must be greater than start_lr (\(spec.startLR)), got \(spec.endLR)")
        }
        spec.iterations = s.int("iterations", default: 100, minimum: 2) ?? 100
        spec.plot = s.string("plot", default: "lr_finder.svg") ?? "lr_finder.svg"
        return spec
    }
}

/// `training.early_stopping`.
struct EarlyStoppingSpec: Equatable {
    var monitor = "val_loss"
    var patience = 0
    var mode: String = "auto"
    var minDelta = 0.0
    var restoreBestWeights = false

    static let keys = ["monitor", "patience", "mode", "min_delta", "restore_best_weights"]

    static func parse(_ s: Section) -> EarlyStoppingSpec {
        var spec = EarlyStoppingSpec()
        spec.monitor = s.string("monitor", default: "val_loss") ?? "val_loss"
        spec.patience = s.int("patience", default: 0, minimum: 0) ?? 0
        spec.mode = s.oneOf("mode", ["auto", "min", "max"], default: "auto")
        spec.minDelta = s.float("min_delta", default: 0, minimum: 0) ?? 0
        spec.restoreBestWeights = s.bool("restore_best_weights", default: false)
        return spec
    }
}

extension TrainConfig {
    static let trainingKeys = [
        "epochs", "start_epoch", "seed", "mode", "label_smoothing", "metrics", "verbose", "clip_norm",
        "clip_value", "ema_decay", "early_stopping", "csv_log", "metric_threshold", "fbeta_beta", "accumulation_steps",
        "check_finite", "plot", "precision", "loss_scale",
    ]
    static let lossScaleKeys = ["initial", "growth_factor", "backoff_factor", "growth_interval", "dynamic"]
    static let summaryKeys = ["dir", "summary_every"]

    /// Reads the keys added with schedules, metrics, callbacks and summaries.
    mutating func parseFeatures(training: Section?, top: Section, reader: ConfigReader) {
        if let training {
            let threshold = training.float("metric_threshold", default: 0.5, minimum: 0) ?? 0.5
            let beta = training.float("fbeta_beta", default: 2, minimum: 0, exclusiveMinimum: true) ?? 2
            metricThreshold = threshold
            fbetaBeta = beta
            for (i, node) in (training.list("metrics") ?? []).enumerated() {
                let path = "training.metrics[\(i)]"
                guard let name = node.string, case .scalar = node else {
                    reader.report(node, path, "expected a metric name, found \(ConfigReader.kind(node))")
                    continue
                }
                if Metrics.make(name) == nil {
                    let hint = ConfigReader.closest(name, in: Metrics.names).map { " (did you mean '\($0)'?)" } ?? ""
                    reader.report(
                        node, path,
                        "unknown metric '\(name)'\(hint); known: \(Metrics.names.joined(separator: ", ")) (top_<k>_accuracy for any k)"
                    )
                } else {
                    metricNames.append(name)
                }
            }
            if let v = training.int("verbose") {
                if ![0, 1, 2].contains(v) {
                    reader.report(training.node("verbose"), "training.verbose", "must be 0, 1 or 2, got \(v)")
                }
                verbose = v
            }
            clipNorm = training.float("clip_norm", minimum: 0, exclusiveMinimum: true)
            clipValue = training.float("clip_value", minimum: 0, exclusiveMinimum: true)
            emaDecay = training.float("ema_decay", minimum: 0)
            accumulationSteps = training.int("accumulation_steps", default: 1, minimum: 1) ?? 1
            checkFinite = training.bool("check_finite", default: false)
            precision = Precision(rawValue: training.oneOf("precision", Precision.allCases.map(\.rawValue), default: "fp32")) ?? .fp32
            if let s = training.section("loss_scale", known: TrainConfig.lossScaleKeys) {
                lossScaling = Self.parseLossScale(s, reader: reader)
            }
            if let d = emaDecay, d >= 1 {
                reader.report(training.node("ema_decay"), "training.ema_decay", "must be < 1, got \(d)")
            }
            if let s = training.section("early_stopping", known: EarlyStoppingSpec.keys) {
                earlyStopping = EarlyStoppingSpec.parse(s)
            }
            csvLog = training.string("csv_log")
            if let plot = training.node("plot") {
                if plot.bool == false {
                    plotPath = .some(nil)
                } else if let path = plot.string, plot.bool == nil {
                    plotPath = .some(path)
                } else {
                    reader.report(plot, "training.plot", "expected a file path for the SVG of the curves, or false")
                }
            }
        }
        if let s = top.section("schedule", known: ScheduleSpec.allKeys) {
            schedule = ScheduleSpec.parse(s, reader: reader)
        }
        if let s = top.section("lr_finder", known: LRFinderSpec.keys) {
            lrFinder = LRFinderSpec.parse(s, reader: reader)
        }
        if let s = top.section("summary", known: TrainConfig.summaryKeys) {
            summaryDir = s.string("dir", required: true)
            summaryEvery = s.int("summary_every", default: 0, minimum: 0) ?? 0
        }
    }

    /// `training.loss_scale`: GradScaler's settings, each checked against its range.
    static func parseLossScale(_ s: Section, reader: ConfigReader) -> LossScaling {
        let defaults = LossScaling()
        let initial = s.float("initial", default: Double(defaults.initialScale), minimum: 0, exclusiveMinimum: true) ?? 1
        let growth = s.float("growth_factor", default: Double(defaults.growthFactor), minimum: 1) ?? 2
        let backoff = s.float("backoff_factor", default: Double(defaults.backoffFactor), minimum: 0, exclusiveMinimum: true) ?? 0.5
        let interval = s.int("growth_interval", default: defaults.growthInterval, minimum: 1) ?? 1
        if initial > 0 && !Float(initial).isFinite {
            reader.report(s.node("initial"), "training.loss_scale.initial", "must fit a 32-bit float, got \(initial)")
        }
        if backoff >= 1 {
            reader.report(s.node("backoff_factor"), "training.loss_scale.backoff_factor", "must be < 1, got \(backoff)")
        }
        let safeInitial = initial > 0 && Float(initial).isFinite ? Float(initial) : defaults.initialScale
        return LossScaling(
            initialScale: safeInitial, growthFactor: Float(Swift.max(growth, 1)),
            backoffFactor: backoff > 0 && backoff < 1 ? Float(backoff) : defaults.backoffFactor,
            growthInterval: Swift.max(interval, 1), dynamic: s.bool("dynamic", default: true))
    }

    /// The metrics the config names, or the mode's defaults when it names none.
    func makeMetrics() -> [any Metric] {
        guard !metricNames.isEmpty else { return taskMode.defaultMetrics }
        return metricNames.compactMap { Metrics.make($0, threshold: Float(metricThreshold), beta: Float(fbetaBeta)) }
    }

    /// The learner's options from the `training`, `optimizer` and `data` sections.
    func trainingOptions(verbose: Int) -> TrainingOptions {
        var options = TrainingOptions()
        options.verbose = verbose
        options.schedule = schedule?.make(baseLR: learningRate)
        options.clipNorm = clipNorm.map(Float.init)
        options.clipValue = clipValue.map(Float.init)
        options.emaDecay = emaDecay.map(Float.init)
        options.accumulationSteps = accumulationSteps
        options.checksInputsAreFinite = checkFinite
        options.precision = precision
        options.lossScaling = lossScaling
        options.classWeights = data.classWeights?.map(Float.init)
        options.images = data.imageOptions
        return options
    }

    /// The SVG of the curves: `training.plot`, else `history.svg` beside the checkpoints; nil
    /// when `training.plot` is false or there is neither.
    var plotFile: String? {
        if let plotPath { return plotPath }
        return checkpoint.weightsDir.map { URL(fileURLWithPath: $0).appendingPathComponent("history.svg").path }
    }

    /// The callbacks the `training` section asks for: early stopping, CSV and TensorBoard logs,
    /// the plot of the curves.
    func makeCallbacks() -> [Callback] {
        var callbacks: [Callback] = []
        if let e = earlyStopping {
            callbacks.append(
                EarlyStopping(
                    monitor: e.monitor, patience: e.patience, mode: MonitorMode(rawValue: e.mode),
                    minDelta: Float(e.minDelta), restoreBestWeights: e.restoreBestWeights))
        }
        if let csvLog { callbacks.append(CSVLogger(path: csvLog)) }
        if let summaryDir { callbacks.append(TensorBoardLogger(directory: summaryDir, summaryEvery: summaryEvery)) }
        if let plot = plotFile { callbacks.append(HistoryPlot(path: plot)) }
        return callbacks
    }
}
