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

    static var versionString: String {
        "tefla-train \(LearnerVersion.string) (CUDA support: \(CUDAContext.isBuiltIn ? "built in, libraries loaded at run time" : "not built in"); CPU: OpenBLAS)"
    }
}

/// Prints the message as `tefla-train: error: ...` and gives exit status 2.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data(("tefla-train: error: " + message + "\n").utf8))
    return ExitCode(2)
}

/// Runs `body`, turning the library's typed errors into clear messages and exit status 2.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as DataError {
        throw fail(error.description)
    } catch let error as LearnerError {
        throw fail(error.description)
    } catch let error as CheckpointError {
        throw fail(error.description)
    } catch let error as AtomicFile.WriteError {
        throw fail(error.description)
    } catch let error as ConfigError {
        throw fail(error.description)
    }
}
