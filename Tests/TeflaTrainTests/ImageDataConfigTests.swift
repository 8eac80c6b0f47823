import Foundation
import Learner
import TestSupport
import XCTest

@testable import tefla_train

/// The `data` keys of image training: PNG shards decoded and augmented by the pipeline, class
/// weights and balancing, iterations per epoch, checkpoints within an epoch.
final class ImageDataConfigTests: XCTestCase {
    func testThePNGDigitsCNNConfigTrainsFromEncodedImages() throws {
        let result = try Trainer.run(["--config", "Configs/digits-png-cnn.yml", "--verbose", "2"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("1437 training samples from Data/digits-png/train, 360 validation samples"), result.output)
        let accuracy = try XCTUnwrap(result.output.components(separatedBy: "final val_accuracy: ").last.flatMap { Float($0.prefix(6)) })
        XCTAssertGreaterThanOrEqual(accuracy, 0.98, result.output)
    }

    /// `balanced` class weights, the LR finder and a weight per sample on image shards.
    func testTrainingOptionsWorkOnImageShards() throws {
        let dir = try Scratch.directory("tefla-image-options", for: self)
        let balanced = try Trainer.run([
            "--config", "Configs/digits-png-cnn.yml", "--epochs", "1", "--verbose", "0",
            "--override", "data.class_weights=balanced",
        ])
        XCTAssertEqual(balanced.status, 0, balanced.error)
        let plot = dir.appendingPathComponent("lr.svg").path
        let sweep = try Trainer.run([
            "lr-find", "--config", "Configs/digits-png-cnn.yml", "--override", "lr_finder.plot=\(plot)",
            "--override", "lr_finder.iterations=20",
        ])
        XCTAssertEqual(sweep.status, 0, sweep.error)
        XCTAssertTrue(sweep.output.contains("lr finder: suggested range"), sweep.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: plot))
    }

    func testDataKeysReachThePipelineAndTheLearner() throws {
        _ = FileManager.default.changeCurrentDirectoryPath(ConfigTests.root.path)
        let yaml = """
            model: {layers: [{type: dense, units: 10}]}
            data:
              train_dir: Data/digits-png/train
              image_size: [28, 24]
              channels: 1
              augmentation:
                flip_left_right: true
                random_crop: {padding: 3}
                color_jitter: {brightness: 0.2}
              normalize: {mean: [0.5], std: [0.25]}
              workers: 3
              max_queue_size: 4
              shuffle_buffer_size: 64
              class_weights: [1, 2, 1, 1, 1, 1, 1, 1, 1, 3]
              n_iters_per_epoch: 7
            checkpoint: {weights_dir: /tmp/unused, every_steps: 5}
            """
        let cfg = try TrainConfig.parse(yaml: yaml, file: "image.yml")
        XCTAssertEqual(cfg.inputKey, "image/encoded")
        XCTAssertEqual(cfg.labelKey, "image/class/label")
        let images = cfg.data.imageOptions
        XCTAssertEqual(images.size, ImageSize(height: 28, width: 24))
        XCTAssertEqual(images.channels, 1)
        XCTAssertEqual(images.evaluationResize, .centerCrop(fraction: 1), "no random_resized_crop: the whole image")
        let files = try Shards.resolve("Data/digits-png/train")
        let keys = FeatureKeys(input: cfg.inputKey, label: cfg.labelKey)
        let shape = try images.sampleShape(files: files, key: keys.input)
        XCTAssertEqual(shape, [1, 28, 24])
        let training = try images.source(files: files, keys: keys, shape: shape).options
        XCTAssertEqual(
            [
                training.height, training.width, training.channels, training.workers, training.maxQueueSize,
                training.shuffleBufferSize,
            ], [28, 24, 1, 3, 4, 64])
        XCTAssertTrue(training.shuffle)
        let steps = try XCTUnwrap(training.transform as? Compose).transforms
        let augmentation = try XCTUnwrap(steps[0] as? Compose).transforms
        XCTAssertTrue(
            augmentation[0] is RandomCrop && augmentation[1] is RandomHorizontalFlip && augmentation[2] is ColorJitter
                && steps[1] is Normalize)
        let evaluation = try XCTUnwrap(try images.source(files: files, keys: keys, shape: shape).evaluationTransform as? Compose)
        XCTAssertTrue(
            evaluation.transforms[0] is CenterCrop && evaluation.transforms[1] is Normalize,
            "validation images are centre-cropped to the model's aspect and normalised, never augmented")
        XCTAssertEqual(cfg.data.classWeights, [1, 2, 1, 1, 1, 1, 1, 1, 1, 3])
        XCTAssertEqual(cfg.data.iterationsPerEpoch, 7)
        XCTAssertEqual(cfg.checkpoint.everySteps, 5)
    }

    func testBalancedClassWeightsAndIterationsTrainThroughTheCLI() throws {
        let weights = try Scratch.directory("tefla-cli-steps", for: self).path
        let result = try Trainer.run([
            "--config", "Configs/digits-mlp.yml", "--epochs", "2", "--verbose", "2",
            "--override", "data.class_weights=balanced", "--override", "data.balancing=true",
            "--override", "data.n_iters_per_epoch=10", "--override", "checkpoint.weights_dir=\(weights)",
            "--override", "checkpoint.every_steps=4",
        ])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("Epoch 2/2"), result.output)
        let state = try WeightsDirectory.readState(weights + "/epoch-0002")
        XCTAssertEqual(state.globalStep, 20, "two epochs of n_iters_per_epoch 10")
        XCTAssertEqual(History.plotted(in: weights + "/history.svg").map(\.epoch), [1, 2], "the curves beside the checkpoints")
    }

    /// `data.balancing` on image shards, and feature vectors over `data.memory_budget_mb` read
    /// from disk: both train through the CLI.
    func testBalancingOnImagesAndStreamedFeatureVectorsTrainThroughTheCLI() throws {
        let images = try Trainer.run([
            "--config", "Configs/digits-png-cnn.yml", "--epochs", "3", "--verbose", "2",
            "--override", "data.balancing={init_probs: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}",
            "--override", "checkpoint.weights_dir=\(try Scratch.directory("tefla-cli-balance", for: self).path)",
        ])
        XCTAssertEqual(images.status, 0, images.error)
        let last = try XCTUnwrap(images.output.split(separator: "\n").last { $0.hasPrefix("Epoch 3/3") })
        let accuracy = try XCTUnwrap(last.components(separatedBy: "val_accuracy: ").last.flatMap { Float($0.prefix(6)) })
        XCTAssertGreaterThan(accuracy, 0.85, String(last))

        func mlp(_ budget: Int) throws -> String {
            let run = try Trainer.run([
                "--config", "Configs/digits-mlp.yml", "--epochs", "2", "--verbose", "2",
                "--override", "data.memory_budget_mb=\(budget)",
                "--override", "checkpoint.weights_dir=\(try Scratch.directory("tefla-cli-budget-\(budget)", for: self).path)",
            ])
            XCTAssertEqual(run.status, 0, run.error)
            return String(run.output.split(separator: "\n").last { $0.hasPrefix("Epoch 2/2") } ?? "")
        }
        // A budget of 0 reads any feature vectors from disk: the same epochs as in memory.
        let streamed = try mlp(0), inMemory = try mlp(1024)
        XCTAssertFalse(streamed.isEmpty)
        XCTAssertEqual(
            streamed.components(separatedBy: " - ").filter { !$0.contains("s/step") && !$0.hasSuffix("s") },
            inMemory.components(separatedBy: " - ").filter { !$0.contains("s/step") && !$0.hasSuffix("s") })
    }

    func testTheMultiLabelConfigTrainsOnZeroOneLists() throws {
        let result = try Trainer.run(["--config", "Configs/digits-multilabel.yml", "--verbose", "2"])
        XCTAssertEqual(result.status, 0, result.error)
        let last = try XCTUnwrap(result.output.split(separator: "\n").last { $0.hasPrefix("Epoch 15/15") })
        let value = try XCTUnwrap(last.components(separatedBy: "val_accuracy_thresh: ").last.flatMap { Float($0.prefix(6)) })
        XCTAssertGreaterThan(value, 0.95, String(last))
        XCTAssertTrue(last.contains("val_fbeta: "), String(last))
    }

    func testEvaluateWithTestTimeFlipsAveragesMirroredImages() throws {
        let weights = try Scratch.directory("tefla-cli-tta", for: self).path
        let train = try Trainer.run([
            "--config", "Configs/digits-png-cnn.yml", "--epochs", "1", "--verbose", "0",
            "--override", "checkpoint.weights_dir=\(weights)",
        ])
        XCTAssertEqual(train.status, 0, train.error)
        func evaluate(_ extra: [String]) throws -> String {
            let run = try Trainer.run(
                [
                    "evaluate", "--config", "Configs/digits-png-cnn.yml",
                    "--override", "checkpoint.weights_dir=\(weights)",
                ] + extra)
            XCTAssertEqual(run.status, 0, run.error)
            return try XCTUnwrap(run.output.components(separatedBy: "loss: ").last?.prefix(6).description)
        }
        let plain = try evaluate([]), flipped = try evaluate(["--tta"])
        XCTAssertNotEqual(plain, flipped, "mirrored digits change the predictions")
        XCTAssertEqual(try evaluate(["--tta"]), flipped, "deterministic")
    }
}
