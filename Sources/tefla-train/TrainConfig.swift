import Foundation
import Learner
import Yams

/// The trainer's configuration, read from YAML. Keys are snake_case as tefla and micro_dl
/// write them; this file is the one place that maps them to the library's names.
struct TrainConfig {
    var layers: [LayerSpec] = []
    var zoo: ZooSpec?
    /// [C, H, W] of a sample when the input feature is a flat image.
    var inputShape: [Int]?
    /// Where `data.input_shape` (or `data.image_size`) is written in the file.
    var inputShapePlace = ConfigPlace()
    /// The first layer that needs image-shaped samples (a conv or pooling layer), and its line.
    var imageLayerPlace: (index: Int, place: ConfigPlace)?
    /// The config file's name, as errors found after parsing name it.
    var file = ""
    var trainDir = ""
    var valDir: String?
    var inputKey = "image"
    var labelKey = "label"
    /// Feature weighing each sample's loss (`features_keys.sample_weight`).
    var sampleWeightKey: String?
    var batchSize = 32
    var optimizerName = "adam"
    var learningRate = 1e-3
    var momentum = 0.0
    var weightDecay = 0.0
    var nesterov = false
    var epochs = 10
    var startEpoch = 1
    var seed: UInt64 = 0
    var mode = "classification"
    var labelSmoothing = 0.0
    /// The `loss:` section; nil: the loss `mode` implies.
    var lossSpec: LossSpec?
    var dropLastBatch = false
    /// Images, augmentation, pipeline, balancing and class weights (TrainConfig+Data.swift).
    var data = DataSpec()
    // Schedules, metrics, callbacks and summaries (TrainConfig+Features.swift).
    var schedule: ScheduleSpec?
    var metricNames: [String] = []
    var metricThreshold = 0.5
    var fbetaBeta = 2.0
    var verbose: Int?
    var clipNorm: Double?
    var clipValue: Double?
    /// Check every batch's inputs for NaN and infinity (`training.check_finite`).
    var checkFinite = false
    var emaDecay: Double?
    var accumulationSteps = 1
    /// `training.precision` (mixed precision) and `training.loss_scale` (fp16's loss scaling).
    var precision = Precision.fp32
    var lossScaling = LossScaling()
    var earlyStopping: EarlyStoppingSpec?
    var csvLog: String?
    /// `training.plot`: nil when not given, `.some(nil)` when false, else the path.
    var plotPath: String??
    var summaryDir: String?
    var summaryEvery = 0
    var lrFinder = LRFinderSpec()

    var checkpoint = CheckpointSpec()

    static let topLevelKeys = ["model", "data", "optimizer", "training", "loss", "schedule", "summary", "lr_finder", "checkpoint"]

    /// Parses and validates the whole file; throws every problem at once.
    static func parse(yaml text: String, file: String, overrides: [ConfigOverride] = []) throws -> TrainConfig {
        if let issue = ConfigLimits.check(text) { throw ConfigError(file: file, issues: [issue]) }
        var root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(file: file, issues: [ConfigIssue.yamlSyntax(error)])
        }
        do {
            for o in overrides { root = try o.apply(to: root ?? Node([(Node, Node)]())) }
            if let root { try ConfigLimits.checkScalars(root) }
        } catch let issue as ConfigIssue {
            throw ConfigError(file: file, issues: [issue])
        }
        let reader = ConfigReader()
        var config = TrainConfig()
        config.file = file
        guard let root, let top = reader.section(root, "", known: topLevelKeys) else {
            throw ConfigError(
                file: file,
                issues: [
                    ConfigIssue(
                        line: 1, column: 1, path: "", message: "the file is empty; it needs model, data, optimizer and training sections")
                ])
        }

        let modelSection = top.section("model", known: modelKeys)
        if let model = modelSection {
            config.parseModel(model, reader: reader)
        } else {
            reader.report(root, "model", "required section is missing")
        }

        if let data = top.section(
            "data",
            known: ["train_dir", "val_dir", "features_keys", "batch_size", "drop_last_batch", "input_shape"]
                + DataSpec.keys)
        {
            config.inputShape = parseInputShape(data, reader: reader)
            config.inputShapePlace = ConfigPlace(data.node("input_shape") ?? data.node("image_size") ?? data.node)
            config.data = DataSpec.parse(data, reader: reader)
            if config.data.declaresImages {
                // tefla's keys for encoded images.
                (config.inputKey, config.labelKey) = ("image/encoded", "image/class/label")
            }
            if let c = config.data.channels, let h = config.data.imageHeight, let w = config.data.imageWidth,
                let given = config.inputShape, given != [c, h, w]
            {
                reader.report(
                    data.node("input_shape"), "data.input_shape",
                    "\(given) disagrees with data.channels and data.image_size \([c, h, w]); leave it out")
            }
            config.trainDir = data.string("train_dir", required: true) ?? ""
            config.valDir = data.string("val_dir")
            for (key, label) in [("train_dir", config.trainDir), ("val_dir", config.valDir ?? "")] where !label.isEmpty {
                var isDir: ObjCBool = false
                if !FileManager.default.fileExists(atPath: label, isDirectory: &isDir) {
                    reader.report(data.node(key), "data.\(key)", "directory '\(label)' does not exist")
                } else if !isDir.boolValue {
                    reader.report(data.node(key), "data.\(key)", "'\(label)' is a file, not a directory of shards")
                }
            }
            if let keys = data.section("features_keys", known: ["input", "label", "sample_weight"]) {
                config.sampleWeightKey = keys.string("sample_weight")
                config.inputKey = keys.string("input", default: config.inputKey) ?? config.inputKey
                config.labelKey = keys.string("label", default: config.labelKey) ?? config.labelKey
            }
            config.batchSize = data.int("batch_size", default: 32, minimum: 1) ?? 32
            config.dropLastBatch = data.bool("drop_last_batch", default: false)
        } else {
            reader.report(root, "data", "required section is missing")
        }

        if let opt = top.section("optimizer", known: ["name", "learning_rate", "momentum", "weight_decay", "nesterov"]) {
            config.optimizerName = opt.oneOf("name", ["sgd", "adam", "adamw", "rmsprop"], default: "adam")
            config.learningRate = opt.float("learning_rate", default: 1e-3, minimum: 0, exclusiveMinimum: true) ?? 1e-3
            config.momentum = opt.float("momentum", default: 0, minimum: 0) ?? 0
            config.weightDecay = opt.float("weight_decay", default: 0, minimum: 0) ?? 0
            config.nesterov = opt.bool("nesterov", default: false)
        }

        let training = top.section("training", known: trainingKeys)
        if let training {
            config.epochs = training.int("epochs", default: 10, minimum: 1) ?? 10
            config.startEpoch = training.int("start_epoch", default: 1, minimum: 1) ?? 1
            // A negative seed is reported (minimum 0); clamping keeps it from trapping meanwhile.
            config.seed = UInt64(clamping: training.int("seed", default: 0, minimum: 0) ?? 0)
            // `multilabel` is the spelling of earlier configs; `multi_label` matches TaskMode.multiLabel.
            if training.string("mode") == "multilabel" {
                config.mode = "multi_label"
            } else {
                config.mode = training.oneOf("mode", ["classification", "multi_label", "regression"], default: "classification")
            }
            config.labelSmoothing = training.float("label_smoothing", default: 0, minimum: 0) ?? 0
        }
        if let spec = LossSpec.parse(top, reader: reader) {
            config.lossSpec = spec
            // The loss's labels imply the task (and so the metrics) unless training.mode says.
            let implied: String
            switch spec.loss.target {
            case .classIndices: implied = "classification"
            case .binary: implied = "multi_label"
            case .values: implied = "regression"
            }
            if training?.node("mode") == nil {
                config.mode = implied
            } else if config.mode != implied {
                reader.report(
                    top.node("loss"), "loss",
                    "\(spec.name) is a \(implied.replacingOccurrences(of: "_", with: "-")) loss, but training.mode is \(config.mode)")
            }
        }
        config.parseFeatures(training: training, top: top, reader: reader)

        if let s = top.section("checkpoint", known: CheckpointSpec.keys) { config.checkpoint = CheckpointSpec.parse(s) }
        config.imageLayerPlace = config.firstImageLayer(modelSection)
        if !reader.issues.isEmpty { throw ConfigError(file: file, issues: reader.issues) }
        return config
    }

    func makeOptimizer() -> Optimizer {
        let lr = Float(learningRate)
        switch optimizerName {
        case "sgd": return SGD(learningRate: lr, momentum: Float(momentum), weightDecay: Float(weightDecay), nesterov: nesterov)
        case "adamw": return AdamW(learningRate: lr, weightDecay: Float(weightDecay))
        case "rmsprop": return RMSProp(learningRate: lr, weightDecay: Float(weightDecay), momentum: Float(momentum))
        default: return Adam(learningRate: lr, weightDecay: Float(weightDecay))
        }
    }

    var loss: Loss {
        if let lossSpec { return lossSpec.loss }
        switch mode {
        case "regression": return .meanSquaredError
        case "multi_label": return .sigmoidCrossEntropy
        default: return .softmaxCrossEntropy(labelSmoothing: Float(labelSmoothing))
        }
    }

    /// The task the mode names (its default metrics use `training.metric_threshold`).
    var taskMode: TaskMode {
        switch mode {
        case "regression": return .regression
        case "multi_label": return .multiLabel(threshold: Float(metricThreshold))
        default: return .classification
        }
    }
}

/// Every problem found in a config file.
struct ConfigError: Error, CustomStringConvertible {
    var file: String
    var issues: [ConfigIssue]

    init(file: String, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    /// One problem, found once the data or the model is known, at the key's place in the file.
    init(file: String, at place: ConfigPlace, _ path: String, _ message: String) {
        self.init(file: file, issues: [ConfigIssue(line: place.line, column: place.column, path: path, message: message)])
    }
    var description: String {
        let sorted = issues.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
        return (["\(file): \(issues.count) problem\(issues.count == 1 ? "" : "s"):"] + sorted.map { "  \($0)" }).joined(separator: "\n")
    }
}
