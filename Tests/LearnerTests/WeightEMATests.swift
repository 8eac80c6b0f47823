import Foundation
import XCTest

@testable import Learner

/// The weight EMA: its average, its warm-up, the batch-norm statistics it carries, and its use for evaluation.
final class WeightEMATests: XCTestCase {
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
            model: Sequential([Dense(inputSize: 1, units: 1, seed: 1)]), loss: .meanSquaredError,
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
