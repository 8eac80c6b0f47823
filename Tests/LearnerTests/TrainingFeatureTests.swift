import Foundation
import XCTest

@testable import Learner

/// Progress output, gradient clipping, weight EMA and modes; the one-cycle digits run.
final class TrainingFeatureTests: XCTestCase {
    func testProgressBarRendersAndThrottles() {
        var out: [String] = []
        let t0 = Date(timeIntervalSince1970: 1000)
        var bar = ProgressBar(epoch: 2, epochs: 5, totalBatches: 10, isTerminal: true, started: t0) { out.append($0) }
        bar.width = 10
        var reads = 0
        for b in 1...10 {
            // 40 ms a batch: at most one redraw per 100 ms.
            bar.update(batch: b, samples: b * 32, now: t0.addingTimeInterval(0.04 * Double(b))) {
                reads += 1
                return [("loss", 0.5)]
            }
        }
        XCTAssertEqual(reads, bar.draws)
        XCTAssertLessThanOrEqual(bar.draws, 5)
        XCTAssertTrue(out[0].hasPrefix("\rEpoch 2/5  1/10 [=>........] - ETA: "), out[0])
        XCTAssertTrue(out[0].contains("samples/s - loss: 0.5000"), out[0])
        let line = bar.render(batch: 10, samples: 320, now: t0.addingTimeInterval(2), values: [])
        XCTAssertTrue(line.hasPrefix("Epoch 2/5 10/10 [==========] - 2s - 160 samples/s"), line)
        var plain: [String] = []
        var quiet = ProgressBar(epoch: 1, epochs: 1, totalBatches: 100, isTerminal: false, started: t0) {
            plain.append($0)
        }
        for b in 1...100 { quiet.update(batch: b, samples: b, now: t0.addingTimeInterval(Double(b) * 0.25)) { [] } }
        XCTAssertEqual(plain.count, 2, "a plain line every 10 s: at 10 s and 20 s of 25 s")
        XCTAssertFalse(plain[0].contains("\r"))
    }

    func testVerboseOneWithoutTerminalLogsEpochLines() throws {
        let data = InMemoryDataset(
            inputs: (0..<64).map { Float($0 % 5) }, labels: (0..<32).map { Float($0 % 2) }, featureSize: 2)
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, outputSize: 2)]), loss: .softmaxCrossEntropy(),
            optimizer: SGD(learningRate: 0.01))
        var lines: [String] = []
        var drawn: [String] = []
        l.options.verbose = 1
        l.options.log = { lines.append($0) }
        l.options.progressOutput = { drawn.append($0) }
        try l.fit(training: data, epochs: 2, batchSize: 8)
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[1].hasPrefix("Epoch 2/2 - "), lines[1])
        XCTAssertTrue(drawn.contains { $0.contains("Epoch 1/2 1/4 [") }, "\(drawn)")
        XCTAssertEqual(drawn.last, "\r\u{1B}[K")
    }

    func testGlobalNormAndValueClipping() {
        let a = Parameter(Tensor([0, 0]))
        let b = Parameter(Tensor([0]))
        a.gradient = Tensor([3, 0])
        b.gradient = Tensor([4])
        let norm = GradientClipping.clipGlobalNorm([a, b], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-6)
        XCTAssertEqual(a.gradient!.scalars[0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.gradient!.scalars[0], 0.8, accuracy: 1e-5)
        GradientClipping.clipGlobalNorm([a, b], maxNorm: 10)
        XCTAssertEqual(b.gradient!.scalars[0], 0.8, accuracy: 1e-5, "under the limit: unchanged")
        a.gradient = Tensor([-3, 0.25])
        GradientClipping.clipValue([a], limit: 0.5)
        XCTAssertEqual(a.gradient!.scalars, [-0.5, 0.25])
    }

    func testClipNormBoundsTheStep() {
        // SGD lr 1 on one step: the update equals the clipped gradient.
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 1, outputSize: 1, seed: 1)]), loss: .meanSquaredError,
            optimizer: SGD(learningRate: 1))
        l.options.clipNorm = 0.1
        let before = l.model.parameters.map { $0.value.copy().scalars }.flatMap { $0 }
        l.trainStep(inputs: Tensor(shape: [1, 1], scalars: [100]), labels: Tensor([1000]))
        let after = l.model.parameters.map { $0.value.scalars }.flatMap { $0 }
        let moved = zip(before, after).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        XCTAssertEqual(moved, 0.1, accuracy: 1e-4)
        XCTAssertGreaterThan(l.lastGradientNorm!, 1000)
    }

    func testWeightEMAAveragesAndIsUsedForEvaluation() throws {
        let p = Parameter(Tensor([1]))
        let ema = WeightEMA(decay: 0.5, warmup: false)
        ema.update([p])
        p.assign(Tensor([3]))
        ema.update([p])
        XCTAssertEqual(ema.shadow[0].scalars, [2])
        let seen = ema.withAveragedWeights([p]) { p.value.scalars }
        XCTAssertEqual(seen, [2])
        XCTAssertEqual(p.value.scalars, [3])

        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 1, outputSize: 1, seed: 1)]), loss: .meanSquaredError,
            optimizer: SGD(learningRate: 0.1))
        l.options.emaDecay = 0.9
        let data = InMemoryDataset(inputs: [0, 1, 2, 3], labels: [1, 3, 5, 7], featureSize: 1)
        l.options.verbose = 0
        try l.fit(training: data, epochs: 3, batchSize: 2)
        let x = Tensor(shape: [1, 1], scalars: [1])
        let averaged = l.predict(x).scalars[0]
        let shadowW = l.ema!.shadow[0].scalars[0]
        let shadowB = l.ema!.shadow[1].scalars[0]
        XCTAssertEqual(averaged, shadowW + shadowB, accuracy: 1e-5)
        let raw = withoutGradients { l.model(x) }.scalars[0]
        XCTAssertNotEqual(averaged, raw)
    }

    func testModesHaveTheirDefaults() {
        XCTAssertEqual(TaskMode.multiLabel(threshold: 0.3).defaultMetrics.map(\.name), ["accuracy_thresh", "fbeta"])
        XCTAssertEqual(TaskMode.regression.defaultMetrics.map(\.name), ["mae", "rmse", "r2"])
        XCTAssertTrue(TaskMode.classification.defaultLoss.isClassification)
        XCTAssertEqual(TaskMode(loss: .sigmoidCrossEntropy), .multiLabel())
        // Multi-label training through trainStep with 0/1 target rows.
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, outputSize: 3, seed: 2)]), mode: .multiLabel(),
            optimizer: Adam(learningRate: 0.05))
        let x = Tensor(shape: [4, 2], scalars: [1, 0, 0, 1, 1, 1, 0, 0])
        let y = Tensor(shape: [4, 3], scalars: [1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1])
        for _ in 0..<300 { l.trainStep(inputs: x, labels: y) }
        var m = AccuracyThresh()
        m.update(outputs: l.predict(x), labels: y)
        XCTAssertEqual(m.values()["accuracy_thresh"], 1)
    }

    func testOneCycleOnDigitsReachesValidationAccuracy() throws {
        let keys = FeatureKeys(input: "image", label: "label")
        let train = try InMemoryDataset.load(directory: TrainingTests.digits + "/train", keys: keys)
        let val = try InMemoryDataset.load(directory: TrainingTests.digits + "/val", keys: keys)
        let model = Sequential([
            Dense(inputSize: 64, outputSize: 128, activation: .relu, seed: 7),
            Dense(inputSize: 128, outputSize: 10, seed: 8),
        ])
        let learner = SupervisedLearner(
            model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1, momentum: 0.9),
            seed: 7)
        learner.options.verbose = 0
        let epochs = 8
        let batchSize = 32
        let steps = epochs * ((train.count + batchSize - 1) / batchSize)
        learner.options.schedule = OneCycleLR(maxLR: 0.2, totalSteps: steps)
        learner.metrics = [Accuracy(), TopKAccuracy(k: 3), PrecisionRecall(classes: 10)]
        learner.options.clipNorm = 5
        let history = try learner.fit(training: train, validation: val, epochs: epochs, batchSize: batchSize)
        let last = try XCTUnwrap(history.epochs.last)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(last.validationAccuracy), 0.95)
        XCTAssertGreaterThanOrEqual(last.validationMetrics["top_3_accuracy"]!, last.validationAccuracy!)
        XCTAssertNotNil(last.validationMetrics["recall_9"])
        XCTAssertLessThan(last.learningRate!, 1e-4, "one-cycle ends near maxLR/25/1e4")
    }
}

final class LRFinderTests: XCTestCase {
    func testSweepDivergesSuggestsARangeAndRestoresTheModel() throws {
        let keys = FeatureKeys(input: "image", label: "label")
        let train = try InMemoryDataset.load(directory: TrainingTests.digits + "/train", keys: keys)
        let model = Sequential([
            Dense(inputSize: 64, outputSize: 64, activation: .relu, seed: 1),
            Dense(inputSize: 64, outputSize: 10, seed: 2),
        ])
        let sgd = SGD(learningRate: 0.05, momentum: 0.9)
        let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: sgd, seed: 3)
        learner.options.verbose = 0
        learner.options.emaDecay = 0.9
        try learner.fit(training: train, epochs: 1)  // optimizer state exists before the sweep
        let averaged = try XCTUnwrap(learner.ema).shadow.map(\.scalars)
        let weights = model.parameters.map { $0.value.scalars }
        let momentum = sgd.state.values.map {
            $0.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) }
        }
        let step = learner.globalStep
        let result = try learner.findLearningRate(training: train, startLR: 1e-5, endLR: 100, iterations: 120)
        XCTAssertTrue(result.diverged)
        XCTAssertLessThan(result.learningRates.count, 120)
        XCTAssertEqual(Double(result.learningRates[1] / result.learningRates[0]), pow(1e7, 1.0 / 119), accuracy: 1e-4)
        XCTAssertEqual(model.parameters.map { $0.value.scalars }, weights)
        XCTAssertEqual(
            sgd.state.values.map { $0.map { Array(UnsafeBufferPointer(start: $0.pointer, count: $0.count)) } }, momentum
        )
        XCTAssertEqual(learner.globalStep, step)
        XCTAssertEqual(try XCTUnwrap(learner.ema).shadow.map(\.scalars), averaged)
        XCTAssertEqual(sgd.learningRate, 0.05)
        let range = result.suggestedRange
        XCTAssertLessThanOrEqual(range.lower, range.upper)
        XCTAssertGreaterThan(range.lower, 1e-5)
        XCTAssertLessThan(range.upper, 10)
        let svg = result.svg()
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("<polyline") && svg.contains("1e-3"), svg)
        // Smoothing: s₀ is the first loss, s₁ the bias-corrected mean of the first two.
        XCTAssertEqual(result.smoothedLosses[0], result.losses[0], accuracy: 1e-5)
        let a1 = 0.98 * 0.02 * Double(result.losses[0]) + 0.02 * Double(result.losses[1])
        XCTAssertEqual(Double(result.smoothedLosses[1]), a1 / (1 - 0.98 * 0.98), accuracy: 1e-4)
    }
}

final class WeightEMATests: XCTestCase {
    func testTheDecayWarmsUpAsTensorFlowsNumUpdates() {
        let p = Parameter(Tensor([0]))
        let ema = WeightEMA(decay: 0.99)
        var expected = 0.0
        for k in 0..<40 {
            p.assign(Tensor([Float(k)]))
            ema.update([p])
            // The first update starts the average; the k-th after it decays by min(d, (1 + k)/(10 + k)).
            let d = k == 0 ? 0 : min(0.99, Double(1 + k) / Double(10 + k))
            expected = d * expected + (1 - d) * Double(k)
            XCTAssertEqual(Double(ema.shadow[0].scalars[0]), expected, accuracy: 1e-4 * max(1, expected), "update \(k)")
        }
        XCTAssertEqual(ema.updates, 40)
        XCTAssertEqual(ema.decay(afterUpdates: 1), 2 / 11, accuracy: 1e-7)
        XCTAssertEqual(ema.decay(afterUpdates: 10_000), 0.99)
        XCTAssertEqual(WeightEMA(decay: 0.99, warmup: false).decay(afterUpdates: 1), 0.99)
    }

    func testBatchNormStatisticsAreAveragedWithTheWeights() {
        let model = Sequential([BatchNorm2D(features: 2)])
        let ema = WeightEMA(decay: 0.5, warmup: false)
        let named = model.namedParametersAndBuffers
        let runningMean = named.first { $0.name.hasSuffix("running_mean") }!.parameter
        let counter = named.first { $0.name.hasSuffix("num_batches_tracked") }!.parameter
        ema.update(model)
        runningMean.assign(Tensor([4, 8]))
        counter.assign(Tensor(shape: counter.shape, scalars: [7]))
        ema.update(model)
        let shadow = Dictionary(uniqueKeysWithValues: zip(named.map(\.name), ema.shadow))
        XCTAssertEqual(shadow[named.first { $0.name.hasSuffix("running_mean") }!.name]!.scalars, [2, 4])
        XCTAssertEqual(shadow[named.first { $0.name.hasSuffix("num_batches_tracked") }!.name]!.scalars, [7], "counters are copied")
        // Evaluation swaps in the averaged statistics and puts the trained ones back.
        let seen = ema.withAveragedWeights(model) { runningMean.value.scalars }
        XCTAssertEqual(seen, [2, 4])
        XCTAssertEqual(runningMean.value.scalars, [4, 8])
    }
}
