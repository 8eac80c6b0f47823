import Foundation
import Learner
import XCTest

@testable import tefla_train

/// The article "From a config file to Swift" (Sources/Learner/Learner.docc/ConfigMap.md) shows a
/// config and the Swift it becomes (its program, Examples/Consumer/Sources/ConfigMap, trains the
/// Swift side). Here the trainer reads the article's config: it must parse, and build what the
/// article says it builds.
final class ConfigMapArticleTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    override func setUp() {
        _ = FileManager.default.changeCurrentDirectoryPath(Self.root.path)
    }

    /// The article's ```yaml block.
    static func articleConfig() throws -> String {
        let article = try String(
            contentsOf: root.appendingPathComponent("Sources/Learner/Learner.docc/ConfigMap.md"), encoding: .utf8)
        guard let start = article.range(of: "```yaml\n"),
            let end = article.range(of: "\n```", range: start.upperBound..<article.endIndex)
        else {
            throw XCTSkip("ConfigMap.md has no yaml block")
        }
        return String(article[start.upperBound..<end.lowerBound])
    }

    func testTheArticlesConfigBuildsWhatTheArticleShows() throws {
        let config = try TrainConfig.parse(yaml: try Self.articleConfig(), file: "ConfigMap.md")

        // model: layer i seeded with training.seed + 7919·i.
        let model = try config.makeModel(sampleShape: [64])
        let swift = Sequential([
            Dense(inputSize: 64, units: 128, activation: .relu, seed: 7),
            Dropout(rate: 0.1),
            Dense(inputSize: 128, units: 10, seed: 7 &+ 2 &* 7919),
        ])
        XCTAssertEqual(model.namedParameters.map(\.name), swift.namedParameters.map(\.name))
        for (a, b) in zip(model.namedParameters, swift.namedParameters) {
            XCTAssertEqual(a.parameter.value.scalars, b.parameter.value.scalars, a.name)
        }

        // optimizer, loss, metrics.
        let optimizer = try XCTUnwrap(config.makeOptimizer() as? SGD)
        XCTAssertEqual(optimizer.learningRate, 0.01)
        XCTAssertEqual(optimizer.momentum, 0.9)
        XCTAssertFalse(optimizer.nesterov)
        let loss = try XCTUnwrap(config.loss.function as? SoftmaxCrossEntropy)
        XCTAssertEqual(loss.labelSmoothing, 0.05)
        XCTAssertEqual(config.makeMetrics().map(\.name), ["accuracy", "top_3_accuracy", "kappa"])

        // schedule and training options.
        let options = config.trainingOptions(verbose: 2)
        let schedule = try XCTUnwrap(options.schedule as? OneCycleLR)
        XCTAssertEqual(schedule.maxLR, 0.2)
        XCTAssertEqual(schedule.pctStart, 0.3)
        XCTAssertNil(schedule.totalSteps)
        XCTAssertEqual(schedule.momentumRange?.base, 0.85)
        XCTAssertEqual(schedule.momentumRange?.max, 0.95)
        XCTAssertEqual(options.clipNorm, 5)
        XCTAssertEqual(options.emaDecay, 0.99)
        XCTAssertEqual(options.accumulationSteps, 1)
        XCTAssertFalse(options.checksInputsAreFinite)

        // callbacks and checkpoint.
        let callbacks = config.makeCallbacks()
        let early = try XCTUnwrap(callbacks.first as? EarlyStopping)
        XCTAssertEqual(early.monitor, "val_loss")
        XCTAssertEqual(early.patience, 3)
        XCTAssertEqual(early.mode, .min)
        XCTAssertTrue(early.restoreBestWeights)
        XCTAssertEqual((callbacks.compactMap { $0 as? CSVLogger }.first)?.path, "runs/digits/history.csv")
        XCTAssertEqual((callbacks.compactMap { $0 as? HistoryPlot }.first)?.path.hasSuffix("/runs/digits/weights/history.svg"), true)
        let logger = try XCTUnwrap(callbacks.compactMap { $0 as? TensorBoardLogger }.first)
        XCTAssertEqual(logger.directory, "runs/digits/summaries")
        XCTAssertEqual(logger.summaryEvery, 20)
        let checkpoint = try XCTUnwrap(config.checkpoint.makeCheckpoint(configText: ""))
        XCTAssertEqual(checkpoint.directory.path, "runs/digits/weights")
        XCTAssertEqual(checkpoint.directory.maxToKeep, 5)
        XCTAssertEqual(checkpoint.monitor, "val_accuracy")
        XCTAssertTrue(checkpoint.saveBest)
        XCTAssertNil(checkpoint.everySteps)

        // data, training, lr_finder.
        XCTAssertEqual(config.trainDir, "Data/digits/train")
        XCTAssertEqual(config.valDir, "Data/digits/val")
        XCTAssertEqual(config.batchSize, 32)
        XCTAssertEqual(config.epochs, 2)
        XCTAssertEqual(config.seed, 7)
        XCTAssertEqual(config.lrFinder.iterations, 50)
    }
}
