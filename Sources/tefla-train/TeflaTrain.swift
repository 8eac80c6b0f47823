import ArgumentParser
import CLearner
import Foundation
import Learner

@main
struct TeflaTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tefla-train",
        abstract: "Train, evaluate and run models from TFRecord shards, as configured in a YAML file.",
        discussion: """
            Examples:
              tefla-train --config Configs/digits-mlp.yml
              tefla-train --config Configs/digits-mlp.yml --epochs 5 --seed 3 --gpu -1
              tefla-train --config run.yml --override optimizer.learning_rate=0.01
              tefla-train --config run.yml --resume
              tefla-train lr-find --config Configs/digits-lr-finder.yml
              tefla-train evaluate --config run.yml --checkpoint weights/epoch-0010
              tefla-train predict --config run.yml --output predictions.csv
              tefla-train summary --config Configs/digits-mlp.yml
            Every config key: Configs/REFERENCE.md.
            """,
        version: TeflaTrain.versionString,
        subcommands: [Train.self, Evaluate.self, Predict.self, LRFind.self, Summary.self],
        defaultSubcommand: Train.self)

    /// The `--version` text. The configuration holding it is built at every start, so the cuDNN
    /// probe (a dlopen) runs only when the version is what was asked for.
    static var versionString: String {
        guard CommandLine.arguments.contains("--version") else { return "tefla-train \(LearnerVersion.string)" }
        let convolutions: String
        switch CUDABackend.cuDNNStatus() {
        case .success(let found) where CUDABackend.usesCuDNN:
            convolutions = "cuDNN \(found.version / 10000).\(found.version / 100 % 100) (\(found.library))"
        case .success: convolutions = "built-in kernels (cuDNN turned off by TEFLA_CUDNN=0)"
        case .failure: convolutions = "built-in kernels (no cuDNN library found)"
        }
        return "tefla-train \(LearnerVersion.string) (CUDA support: built in, libraries loaded at run time; "
            + "GPU convolutions: \(convolutions); CPU: OpenBLAS)"
    }
}

/// Exit statuses: 0 done; 1 the run failed (bad data, a model that does not fit it, a full
/// disk, a device error), the last good checkpoint kept; 2 the command or the config is wrong
/// (nothing was run); 128 + signal (130 SIGINT, 143 SIGTERM, 138 SIGUSR1) stopped by that signal
/// at a step boundary, the step saved when a weights folder is configured.
enum ExitStatus {
    static let runFailed: Int32 = 1
    static let usage: Int32 = 2
}

/// Prints the message as `tefla-train: error: ...` and gives exit status 2 (a mistake in the
/// command or the config).
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data(("tefla-train: error: " + message + "\n").utf8))
    return ExitCode(ExitStatus.usage)
}

/// Prints the message as `tefla-train: error: ...` and gives exit status 1 (the run failed).
func runFailed(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data(("tefla-train: error: " + message + "\n").utf8))
    return ExitCode(ExitStatus.runFailed)
}

/// Runs `body`, turning errors into one clear line each: a config error exits with status 2,
/// anything that stopped the run (data, model, checkpoints, files) with status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ConfigError {
        throw fail(error.description)
    } catch LearnerError.invalidArgument(let message) {
        throw fail(message)
    } catch {
        throw runFailed(String(describing: error))
    }
}
