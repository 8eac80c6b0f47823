import ArgumentParser
import CLearner
import Foundation
import Learner

@main
struct TeflaTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tefla-train",
        abstract: "Train a model from TFRecord shards, as configured in a YAML file.",
        discussion: """
            Examples:
              tefla-train --config Configs/digits-mlp.yml
              tefla-train --config Configs/digits-mlp.yml --epochs 5 --seed 3
              tefla-train --config Configs/digits-mlp.yml --gpu -1
              tefla-train --config Configs/digits-lr-finder.yml --find-lr
            """,
        version: TeflaTrain.versionString)

    @Option(name: .long, help: "The YAML config file.")
    var config: String

    @Option(name: .long, parsing: .unconditional, help: "GPU index; -1 or absent trains on the CPU.")
    var gpu: Int = -1

    @Option(name: [.customLong("gpu-mem-frac"), .customLong("gpu_mem_frac")],
            help: "Fraction of the GPU's memory the trainer may hold (0 < f <= 1).")
    var gpuMemFrac: Float?

    @Option(name: .long, help: "Overrides training.epochs.")
    var epochs: Int?

    @Option(name: .long, parsing: .unconditional, help: "Overrides training.start_epoch (counts from 1).")
    var startEpoch: Int?

    @Flag(name: .long, help: "Continue from the newest checkpoint in checkpoint.weights_dir.")
    var resume = false

    @Option(name: [.customLong("weights-from"), .customLong("model_fname"), .customLong("model-fname")],
            help: "Initialise the model from a safetensors file (overrides checkpoint.weights_from).")
    var weightsFrom: String?

    @Option(name: .long, help: "Overrides training.seed.")
    var seed: UInt64?

    @Option(name: .long, help: "0: silent, 1: a progress bar per epoch, 2: one line per epoch (default: training.verbose, else 2).")
    var verbose: Int?

    @Flag(name: .customLong("find-lr"),
          help: "Run the learning-rate range test (lr_finder section) instead of training; writes its plot.")
    var findLR = false

    static var versionString: String {
        "tefla-train \(LearnerVersion.string) (CUDA support: \(CUDAContext.isBuiltIn ? "built in, libraries loaded at run time" : "not built in"); CPU: OpenBLAS)"
    }

    func validate() throws {
        if gpu < -1 { throw ValidationError("--gpu must be -1 (CPU) or a device index >= 0, got \(gpu)") }
        if let verbose, ![0, 1, 2].contains(verbose) { throw ValidationError("--verbose must be 0, 1 or 2, got \(verbose)") }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be >= 1, got \(epochs)") }
        if let startEpoch, startEpoch < 1 { throw ValidationError("--start-epoch counts from 1, got \(startEpoch)") }
        if let gpuMemFrac, !(gpuMemFrac > 0 && gpuMemFrac <= 1) {
            throw ValidationError("--gpu-mem-frac must be in (0, 1], got \(gpuMemFrac)")
        }
    }

    func run() throws {
        guard let text = try? String(contentsOfFile: config, encoding: .utf8) else {
            throw fail("cannot read config file '\(config)'")
        }
        var cfg: TrainConfig
        do {
            cfg = try TrainConfig.parse(yaml: text, file: config)
        } catch let error as ConfigError {
            throw fail(error.description)
        }
        if let epochs { cfg.epochs = epochs }
        if let startEpoch { cfg.startEpoch = startEpoch }
        if let seed { cfg.seed = seed }
        var device = Device.cpu
        var deviceName = "cpu"
        if gpu >= 0 {
            do {
                try CUDAContext.use(device: gpu, memoryFraction: gpuMemFrac)
            } catch {
                throw fail("--gpu \(gpu): \(error)")
            }
            device = .cuda(gpu)
            deviceName = "cuda:\(gpu) (\(CUDAContext.deviceName(gpu)))"
        }

        let keys = FeatureKeys(input: cfg.inputKey, label: cfg.labelKey)
        do {
            let training = try InMemoryDataset.load(directory: cfg.trainDir, keys: keys)
            let validation = try cfg.valDir.map { try InMemoryDataset.load(directory: $0, keys: keys) }
            let model = cfg.makeModel(inputSize: training.featureSize)
            let learner = SupervisedLearner(model: model, loss: cfg.loss, optimizer: cfg.makeOptimizer(), seed: cfg.seed,
                                            device: device)
            let verbose = self.verbose ?? cfg.verbose ?? 2
            learner.verbose = verbose
            let stepsPerEpoch = cfg.dropLastBatch ? training.count / cfg.batchSize
                                                  : (training.count + cfg.batchSize - 1) / cfg.batchSize
            cfg.configure(learner, stepsPerEpoch: stepsPerEpoch)
            cfg.checkpoint.configure(learner, configText: text)
            if let path = weightsFrom ?? cfg.checkpoint.weightsFrom {
                let report = try model.loadWeights(from: path, strict: cfg.checkpoint.strict)
                if verbose > 0 { print("tefla-train: weights from \(path): \(report)") }
            }
            if resume || cfg.checkpoint.resume {
                guard learner.weightsDirectory != nil else {
                    throw fail("--resume needs checkpoint.weights_dir in \(config)")
                }
                cfg.startEpoch = try learner.resumeEpoch()
                if verbose > 0 {
                    print(cfg.startEpoch > 1 ? "tefla-train: resuming at epoch \(cfg.startEpoch) from \(cfg.checkpoint.weightsDir ?? "")"
                                             : "tefla-train: no checkpoint in \(cfg.checkpoint.weightsDir ?? "") yet; starting at epoch 1")
                }
                if cfg.startEpoch > cfg.epochs {
                    print("tefla-train: the run already finished its \(cfg.epochs) epochs")
                    return
                }
            }
            if verbose > 0 {
                print("tefla-train: \(training.count) training samples from \(cfg.trainDir)"
                      + (validation.map { ", \($0.count) validation samples from \(cfg.valDir ?? "")" } ?? "")
                      + "; model: \(model.parameterCount) parameters; device: \(deviceName)")
            }
            if findLR {
                try runLRFinder(learner, cfg, training)
                return
            }
            let history = try learner.fit(training: training, validation: validation, startEpoch: cfg.startEpoch,
                                          epochs: cfg.epochs, batchSize: cfg.batchSize, dropLastBatch: cfg.dropLastBatch)
            if verbose > 0, let last = history.epochs.last {
                let acc = last.validationAccuracy.map { String(format: "final val_accuracy: %.4f", $0) } ?? String(format: "final loss: %.4f", last.trainLoss)
                print("tefla-train: done, \(acc)")
            }
        } catch let error as DataError {
            throw fail(error.description)
        } catch let error as LearnerError {
            throw fail(error.description)
        } catch let error as CheckpointError {
            throw fail(error.description)
        } catch let error as AtomicFile.WriteError {
            throw fail(error.description)
        }
    }

    /// `--find-lr`: sweeps the learning rate, prints the suggestion and writes the plot.
    private func runLRFinder(_ learner: SupervisedLearner, _ cfg: TrainConfig, _ training: InMemoryDataset) throws {
        let spec = cfg.lrFinder
        let result = try learner.findLearningRate(training: training, startLR: Float(spec.startLR), endLR: Float(spec.endLR),
                                                  iterations: spec.iterations, batchSize: cfg.batchSize)
        do {
            try result.writeSVG(to: spec.plot)
        } catch {
            throw fail("cannot write the LR finder plot '\(spec.plot)': \(error)")
        }
        let range = result.suggestedRange
        print(String(format: "lr finder: %d steps from %.3g to %.3g%@; steepest descent at %.3g, lowest loss at %.3g",
                     result.learningRates.count, spec.startLR, Double(result.learningRates.last ?? 0),
                     result.diverged ? " (stopped: loss diverged)" : "", result.steepest, result.minimumLossRate))
        print(String(format: "lr finder: suggested range %.3g … %.3g; plot written to %@", range.lower, range.upper, spec.plot))
    }

    private func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data(("tefla-train: error: " + message + "\n").utf8))
        return ExitCode(2)
    }
}
