import ArgumentParser
import Foundation
import Learner

extension Precision: ExpressibleByArgument {}

/// Options every subcommand shares: the config, its overrides, the device, the weights.
struct RunOptions: ParsableArguments {
    @Option(name: .long, help: "The YAML config file.")
    var config: String

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp(GPUSelection.helpText))
    var gpu: GPUSelection = .cpu

    @Option(
        name: [.customLong("gpu-mem-frac"), .customLong("gpu_mem_frac")],
        help: "Fraction of the GPU's memory the trainer may hold (0 < f <= 1).")
    var gpuMemFrac: Float?

    @Option(name: .long, help: "Overrides training.seed.")
    var seed: UInt64?

    @Option(
        name: .long,
        help: "Mixed precision of matrix products and convolutions: fp32, bf16 or fp16 (overrides training.precision).")
    var precision: Precision?

    @Option(name: .long, help: "0: silent, 1: a progress bar per epoch, 2: one line per epoch (default: training.verbose, else 2).")
    var verbose: Int?

    @Option(
        name: [.customLong("weights-from"), .customLong("model_fname"), .customLong("model-fname")],
        help: "Initialise the model from a safetensors file (overrides checkpoint.weights_from).")
    var weightsFrom: String?

    @Option(name: .long, help: "Sets any config key, e.g. --override optimizer.learning_rate=0.01 (repeatable).")
    var override: [String] = []

    func validate() throws {
        if let verbose, ![0, 1, 2].contains(verbose) { throw ValidationError("--verbose must be 0, 1 or 2, got \(verbose)") }
        if let gpuMemFrac, !(gpuMemFrac > 0 && gpuMemFrac <= 1) {
            throw ValidationError("--gpu-mem-frac must be in (0, 1], got \(gpuMemFrac)")
        }
        for o in override where (try? ConfigOverride(o)) == nil {
            throw ValidationError("--override \(o): expected key.path=value")
        }
    }
}

/// A config read and validated, its device chosen: what every subcommand starts from.
struct Session {
    var cfg: TrainConfig
    let text: String
    let options: RunOptions
    let device: Device
    let deviceName: String
    var verbose: Int { options.verbose ?? cfg.verbose ?? 2 }

    init(_ options: RunOptions, adjust: (inout TrainConfig) -> Void = { _ in }) throws {
        PlainLogHandler.bootstrap
        guard let text = try? String(contentsOfFile: options.config, encoding: .utf8) else {
            throw fail("cannot read config file '\(options.config)'")
        }
        do {
            cfg = try TrainConfig.parse(yaml: text, file: options.config, overrides: try options.override.map(ConfigOverride.init))
        } catch let error as ConfigError {
            throw fail(error.description)
        }
        if let seed = options.seed { cfg.seed = seed }
        if let precision = options.precision { cfg.precision = precision }
        adjust(&cfg)
        self.text = text
        self.options = options
        let local = MPICommunicator.isLaunched ? GPUSelection.localRank() : nil
        let chosen: Int?
        do {
            chosen = try options.gpu.device(
                localRank: local?.rank, ranksOnHost: local?.size, devices: options.gpu == .all ? CUDAContext.deviceCount : 0)
        } catch let error as ValidationError {
            throw fail(error.message)
        }
        if let index = chosen {
            do {
                try CUDAContext.use(device: index, memoryFraction: options.gpuMemFrac)
            } catch {
                throw fail("--gpu \(index): \(error)")
            }
            device = .cuda(index)
            deviceName = "cuda:\(index) (\(CUDAContext.deviceName(index)))"
        } else {
            device = .cpu
            deviceName = "cpu"
        }
    }

    var keys: FeatureKeys { FeatureKeys(input: cfg.inputKey, label: cfg.labelKey, sampleWeight: cfg.sampleWeightKey) }

    /// A data directory as the learner's source, as its records say: encoded images through the
    /// decoding pipeline (to `shape` when given, the training set's, else as `data` says or the
    /// images are stored), feature vectors read into memory (class-balanced for training when
    /// `data.balancing` asks).
    func data(_ directory: String, training: Bool, shape: [Int]? = nil, labelsRequired: Bool = true) throws -> SessionData {
        let spec = cfg.data
        let files = try Shards.resolve(directory)
        if case .encodedImage = try RecordContent.probe(files: files, keys: keys) {
            var images = spec.imageOptions
            images.labelsRequired = labelsRequired
            let sampleShape = try shape ?? images.sampleShape(files: files, key: keys.input)
            if let mean = spec.normalizeMean, mean.count != sampleShape[0], let place = spec.imageKeys["normalize"] {
                throw ConfigError(
                    file: cfg.file, at: place, "data.normalize",
                    "has \(mean.count) values per list, but the images of \(directory) have \(sampleShape[0]) channels")
            }
            var source = try images.source(files: files, keys: keys, shape: sampleShape)
            if training && spec.balancing {
                source = try source.balanced(epochs: cfg.epochs, initProbabilities: spec.initProbs)
            }
            return SessionData(source: source, count: source.sampleCount ?? 0, sampleShape: sampleShape, inMemory: nil)
        }
        if let (key, place) = spec.imageKeys.min(by: { $0.value.line < $1.value.line }) {
            throw ConfigError(
                file: cfg.file, at: place, "data.\(key)",
                "applies to encoded images, but the records' '\(keys.input)' in \(directory) holds feature vectors")
        }
        let data = try RecordData.featureVectors(files: files, keys: keys, memoryBudget: spec.memoryBudget)
        var source = data.source
        if training && spec.balancing {
            guard let dataset = data.inMemory else {
                throw fail(
                    "data.balancing draws samples by class from data in memory, but \(directory) is larger than "
                        + "data.memory_budget_mb (\(spec.memoryBudget >> 20) MiB) and is read from disk: raise the budget")
            }
            let classes = spec.initProbs?.count ?? Int(dataset.labels.max() ?? 0) + 1
            source = try BalancedDataset(dataset, classCount: classes, epochs: cfg.epochs, initProbabilities: spec.initProbs)
        }
        return SessionData(source: source, count: data.count, sampleShape: [data.featureSize], inMemory: data.inMemory)
    }

    /// The image shape the model was trained on, for evaluating or predicting on `directory`:
    /// nil when its records are no images (or hold the training shape anyway); else from
    /// `data.image_size` and `data.channels`, read from the training images where they are not given.
    func trainingImageShape(for directory: String) throws -> [Int]? {
        guard case .encodedImage = try RecordContent.probe(files: try Shards.resolve(directory), keys: keys) else { return nil }
        return try cfg.data.imageOptions.sampleShape(files: try Shards.resolve(cfg.trainDir), key: keys.input)
    }

    /// "balanced" class weights (`data.class_weights: balanced`), computed from the training
    /// labels (scikit-learn's formula); nil when the config lists them or asks for none.
    func balancedClassWeights(for training: SessionData) throws -> [Float]? {
        guard cfg.data.balancedClassWeights else { return nil }
        let values =
            try training.inMemory?.labels ?? (training.source as? ImageDataSource)?.labels()
            ?? (training.source as? RecordStreamDataset)?.labels() ?? []
        let labels = values.map { Int($0) }
        let balancer = try ClassBalancer(labels: labels, classCount: (labels.max() ?? 0) + 1, epochs: 1)
        return balancer.balancedClassWeights()
    }

    /// The learner for samples of `sampleShape`, configured from every section, with
    /// `--weights-from` / `checkpoint.weights_from` loaded.
    func makeLearner(sampleShape: [Int]) throws -> SupervisedLearner {
        let model = try cfg.makeModel(sampleShape: sampleShape)
        let learner = SupervisedLearner(
            model: model, loss: cfg.loss, optimizer: cfg.makeOptimizer(), seed: cfg.seed,
            device: device, options: cfg.trainingOptions(verbose: verbose))
        learner.metrics = cfg.makeMetrics()
        learner.callbacks = cfg.makeCallbacks()
        learner.checkpoint = cfg.checkpoint.makeCheckpoint(configText: text)
        if let path = options.weightsFrom ?? cfg.checkpoint.weightsFrom {
            let report = try model.loadWeights(from: path, strict: cfg.checkpoint.strict)
            if verbose > 0 { print("tefla-train: weights from \(path): \(report)") }
        }
        return learner
    }

    /// Loads trained weights for evaluation or prediction: `--checkpoint FOLDER`, else
    /// `--weights-from`, else the newest checkpoint of `checkpoint.weights_dir`.
    func loadTrainedWeights(_ learner: SupervisedLearner, checkpoint: String?) throws {
        if let checkpoint {
            try learner.restoreCheckpoint(from: checkpoint)
        } else if options.weightsFrom != nil || cfg.checkpoint.weightsFrom != nil {
            return  // loaded by makeLearner
        } else if let dir = learner.checkpoint?.directory, let newest = dir.newestEpoch() {
            try learner.restoreCheckpoint(from: dir.folder(epoch: newest))
        } else {
            throw fail("no trained weights: pass --checkpoint FOLDER or --weights-from FILE, or set checkpoint.weights_dir")
        }
    }
}

/// A data directory ready for the learner.
struct SessionData {
    let source: any DataSource
    let count: Int
    /// One sample's shape: `[values]`, or `[channels, height, width]` for images.
    let sampleShape: [Int]
    /// The samples themselves when they were read into memory (feature-vector data).
    let inMemory: InMemoryDataset?
}
