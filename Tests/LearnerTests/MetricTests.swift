import XCTest

@testable import Learner

/// Metrics against scikit-learn 1.x on small fixtures (values printed by sklearn), streamed
/// in uneven batches to check they are exact over the whole set.
final class MetricTests: XCTestCase {
    let logits: [[Float]] = [
        [2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [0.2, 0.1, 3.0], [1.5, 1.6, 0.0], [0.0, 0.2, 0.1],
        [3.0, 0.5, 0.2], [0.1, 0.3, 0.2], [0.4, 0.1, 0.9],
    ]
    let classes: [Float] = [0, 1, 2, 0, 2, 0, 1, 1]

    /// Feeds rows [0, 3) and [3, n) as two batches, returns the values.
    func streamed<M: Metric>(_ metric: M, _ rows: [[Float]], _ labels: [[Float]]) -> [String: Float] {
        var m = metric
        let split = 3
        for range in [0..<split, split..<rows.count] {
            let out = Tensor(shape: [range.count, rows[0].count], scalars: rows[range].flatMap { $0 })
            let width = labels[0].count
            let y =
                width == 1
                ? Tensor(labels[range].flatMap { $0 })
                : Tensor(shape: [range.count, width], scalars: labels[range].flatMap { $0 })
            m.update(outputs: out, labels: y)
        }
        return m.values()
    }

    func testClassificationMetricsMatchSklearn() {
        let y = classes.map { [$0] }
        XCTAssertEqual(streamed(Accuracy(), logits, y)["accuracy"]!, 0.625, accuracy: 1e-6)
        XCTAssertEqual(streamed(ErrorRate(), logits, y)["error_rate"]!, 0.375, accuracy: 1e-6)
        XCTAssertEqual(streamed(TopKAccuracy(k: 2), logits, y)["top_2_accuracy"]!, 0.875, accuracy: 1e-6)
        XCTAssertEqual(streamed(QuadraticWeightedKappa(), logits, y)["kappa"]!, 0.6666667, accuracy: 1e-5)
        let pr = streamed(PrecisionRecall(), logits, y)
        for (c, (p, r)) in [(1.0, 0.6666667), (0.5, 0.6666667), (0.5, 0.5)].enumerated() {
            XCTAssertEqual(pr["precision_\(c)"]!, Float(p), accuracy: 1e-5)
            XCTAssertEqual(pr["recall_\(c)"]!, Float(r), accuracy: 1e-5)
        }
        XCTAssertEqual(pr["precision"]!, 2.0 / 3.0, accuracy: 1e-5)
    }

    func testMultiLabelMetricsMatchSklearn() {
        let outputs: [[Float]] = [
            [2.0, -1.0, 0.5, -3.0], [-0.5, 1.5, -2.0, 0.2], [1.0, 1.0, 1.0, -1.0],
            [-2.0, -2.0, -2.0, -2.0], [0.3, -0.3, 2.0, 1.0],
        ]
        let targets: [[Float]] = [[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 1], [0, 0, 0, 1], [1, 1, 1, 0]]
        XCTAssertEqual(
            streamed(FBeta(beta: 2, average: .samples), outputs, targets)["fbeta"]!, 0.6333333, accuracy: 1e-5)
        XCTAssertEqual(streamed(FBeta(beta: 2, average: .micro), outputs, targets)["fbeta"]!, 0.7, accuracy: 1e-5)
        XCTAssertEqual(streamed(FBeta(beta: 2, average: .macro), outputs, targets)["fbeta"]!, 0.625, accuracy: 1e-5)
        XCTAssertEqual(streamed(AccuracyThresh(), outputs, targets)["accuracy_thresh"]!, 0.7, accuracy: 1e-6)
    }

    func testRegressionMetricsMatchSklearn() {
        let truth: [Float] = [1, 2, 3, 4, 5, 6, 7]
        let predicted: [Float] = [1.5, 1.8, 3.3, 3.9, 5.5, 5.6, 7.4]
        let rows = predicted.map { [$0] }
        let labels = truth.map { [$0] }
        XCTAssertEqual(streamed(MeanAbsoluteError(), rows, labels)["mae"]!, 0.34285714, accuracy: 1e-5)
        XCTAssertEqual(streamed(RootMeanSquaredError(), rows, labels)["rmse"]!, 0.37032804, accuracy: 1e-5)
        XCTAssertEqual(streamed(RSquared(), rows, labels)["r2"]!, 0.96571429, accuracy: 1e-5)
    }

    func testResetAndFactory() {
        var m = Accuracy()
        m.update(outputs: Tensor(shape: [1, 2], scalars: [0, 1]), labels: Tensor([1]))
        XCTAssertEqual(m.values()["accuracy"], 1)
        m.reset()
        m.update(outputs: Tensor(shape: [1, 2], scalars: [0, 1]), labels: Tensor([0]))
        XCTAssertEqual(m.values()["accuracy"], 0)
        for name in Metrics.names { XCTAssertNotNil(Metrics.make(name), name) }
        XCTAssertEqual(Metrics.make("top_3_accuracy")?.name, "top_3_accuracy")
        XCTAssertNil(Metrics.make("accuracyy"))
    }

    func testLearnerReportsTrainAndValidationMetrics() throws {
        var g = RandomGenerator(seed: 5)
        var inputs: [Float] = []
        var labels: [Float] = []
        for _ in 0..<128 {
            let a = g.nextUniform() * 2 - 1
            let b = g.nextUniform() * 2 - 1
            inputs += [a, b]
            labels.append(3 * a + b)
        }
        let data = InMemoryDataset(inputs: inputs, labels: labels, featureSize: 2)
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 1, seed: 2)]), mode: .regression,
            optimizer: SGD(learningRate: 0.1, momentum: 0.9), seed: 1)
        var lines: [String] = []
        learner.options.log = { lines.append($0) }
        let history = try learner.fit(training: data, validation: data, epochs: 20, batchSize: 16)
        let last = try XCTUnwrap(history.epochs.last)
        XCTAssertEqual(Set(last.metrics.keys), ["mae", "rmse", "r2"])
        XCTAssertEqual(Set(last.validationMetrics.keys), ["mae", "rmse", "r2"])
        XCTAssertGreaterThan(last.validationMetrics["r2"]!, 0.999)
        XCTAssertEqual(
            last.validationMetrics["rmse"]! * last.validationMetrics["rmse"]!, last.validationLoss!, accuracy: 1e-5)
        XCTAssertTrue(lines.last!.contains("val_r2: "), lines.last!)
        XCTAssertEqual(history["val_mae"].count, 20)
        XCTAssertNil(last.trainAccuracy)
    }
}
