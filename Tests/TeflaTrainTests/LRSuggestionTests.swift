import Foundation
import Learner
import XCTest

@testable import tefla_train

/// The LR finder's suggestion is worth following: on Configs/digits-lr-finder.yml, one-cycle
/// training with `max_lr` = the suggested upper rate does at least as well as the config's own
/// constant rate, for the same epochs, seeds and initial weights.
///
/// One run's validation accuracy moves by a few samples of 360 with the seed alone, whichever
/// rate is used, so the comparison is over six seeds (finder, baseline and suggestion each per
/// seed) and allows one sample of 360: the resolution of a single run's accuracy.
final class LRSuggestionTests: XCTestCase {
    func learner(_ config: TrainConfig, featureSize: Int) throws -> SupervisedLearner {
        let learner = SupervisedLearner(
            model: try config.makeModel(sampleShape: [featureSize]), loss: config.loss, optimizer: config.makeOptimizer(),
            seed: config.seed)
        learner.options.verbose = 0
        return learner
    }

    func testSuggestedRangeTrainsDigitsAtLeastAsWellAsTheDefaultRate() throws {
        let path = "Configs/digits-lr-finder.yml"
        let text = try String(contentsOf: ConfigTests.root.appendingPathComponent(path), encoding: .utf8)
        var config = try TrainConfig.parse(yaml: text, file: path)
        XCTAssertNil(config.schedule, "the baseline is the config's constant rate")
        let keys = FeatureKeys(input: config.inputKey, label: config.labelKey)
        let root = ConfigTests.root.path + "/"
        let train = try InMemoryDataset.load(directory: root + config.trainDir, keys: keys)
        let val = try InMemoryDataset.load(directory: root + XCTUnwrap(config.valDir), keys: keys)
        let steps = config.epochs * ((train.count + config.batchSize - 1) / config.batchSize)

        var baseCorrect = 0, tunedCorrect = 0
        var report: [String] = []
        let seeds: [UInt64] = [1, 2, 3, 4, 5, 6]
        for seed in seeds {
            config.seed = seed
            let finder = try learner(config, featureSize: train.featureSize)
            let sweep = try finder.findLearningRate(
                training: train, startLR: Float(config.lrFinder.startLR), endLR: Float(config.lrFinder.endLR),
                iterations: config.lrFinder.iterations, batchSize: config.batchSize)
            XCTAssertTrue(sweep.diverged)
            let upper = sweep.suggestedRange.upper

            let baseline = try learner(config, featureSize: train.featureSize)
            XCTAssertEqual(
                baseline.model.parameters.map { $0.value.scalars }, finder.model.parameters.map { $0.value.scalars },
                "both runs start from the same weights (and the finder put them back)")
            let base = try baseline.fit(training: train, validation: val, epochs: config.epochs, batchSize: config.batchSize)

            let suggested = try learner(config, featureSize: train.featureSize)
            suggested.options.schedule = OneCycleLR(maxLR: upper, totalSteps: steps)
            let tuned = try suggested.fit(training: train, validation: val, epochs: config.epochs, batchSize: config.batchSize)

            let b = try XCTUnwrap(base.epochs.last?.validationAccuracy), t = try XCTUnwrap(tuned.epochs.last?.validationAccuracy)
            baseCorrect += Int((b * Float(val.count)).rounded())
            tunedCorrect += Int((t * Float(val.count)).rounded())
            report.append(String(format: "seed %d: max_lr %.3g -> %.4f, lr %.3g -> %.4f", seed, upper, t, config.learningRate, b))
        }
        // Mean accuracies in whole samples: tuned/6 ≥ base/6 − 1 sample.
        XCTAssertGreaterThanOrEqual(tunedCorrect, baseCorrect - seeds.count, report.joined(separator: "\n"))
        print(
            "digits, one-cycle at the suggested max_lr vs the config's constant lr:\n" + report.joined(separator: "\n")
                + String(
                    format: "\nmean val_accuracy %.4f vs %.4f", Double(tunedCorrect) / Double(seeds.count * val.count),
                    Double(baseCorrect) / Double(seeds.count * val.count)))
    }
}
