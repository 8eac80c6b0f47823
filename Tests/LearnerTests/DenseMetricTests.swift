import Foundation
import XCTest

@testable import Learner

/// Segmentation and image-to-image metrics: exact over a data set (batches add up to the whole),
/// against hand counts and scikit-image (Scripts/fixtures/make_ssim_fixture.py).
final class DenseMetricTests: XCTestCase {
    /// Logits [1, 3, 2, 3] whose arg-max per pixel is `predicted`.
    static func logits(_ predicted: [[Int]]) -> Tensor {
        let n = predicted.count, pixels = predicted[0].count
        var values = [Float](repeating: 0, count: n * 3 * pixels)
        for (i, row) in predicted.enumerated() { for (p, k) in row.enumerated() { values[(i * 3 + k) * pixels + p] = 5 } }
        return Tensor(shape: [n, 3, 2, pixels / 2], scalars: values)
    }

    func testMeanIoUCountsPixelsOverTheWholeSet() {
        // Labels 0 0 1 | 1 2 255; predictions 0 1 1 | 2 2 0 (the ignored pixel counts nowhere).
        let outputs = Self.logits([[0, 1, 1, 2, 2, 0]])
        let labels = Tensor(shape: [1, 2, 3], scalars: [0, 0, 1, 1, 2, 255])
        var metric = MeanIoU()
        metric.update(outputs: outputs, labels: labels)
        let v = metric.values()
        // class 0: TP 1, FN 1, FP 0 → 1/2; class 1: TP 1, FP 1, FN 1 → 1/3; class 2: TP 1, FP 1 → 1/2.
        XCTAssertEqual(v["iou_0"] ?? -1, 0.5, accuracy: 1e-6)
        XCTAssertEqual(v["iou_1"] ?? -1, 1.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(v["iou_2"] ?? -1, 0.5, accuracy: 1e-6)
        XCTAssertEqual(v["mean_iou"] ?? -1, Float((0.5 + 1.0 / 3 + 0.5) / 3), accuracy: 1e-6)
        XCTAssertEqual(v["pixel_accuracy"] ?? -1, 3.0 / 5, accuracy: 1e-6)
        XCTAssertEqual(v["dice"] ?? -1, Float((2.0 / 3 + 2.0 / 4 + 2.0 / 3) / 3), accuracy: 1e-6)

        // Two batches give the confusion matrix of the two together, not a mean of two scores.
        let second = Self.logits([[2, 2, 2, 2, 2, 2]])
        let secondLabels = Tensor(shape: [1, 2, 3], scalars: [2, 2, 2, 2, 2, 0])
        metric.update(outputs: second, labels: secondLabels)
        var whole = MeanIoU()
        whole.update(
            outputs: Tensor.concatenate([outputs, second], alongAxis: 0), labels: Tensor.concatenate([labels, secondLabels], alongAxis: 0))
        XCTAssertEqual(metric.values(), whole.values())
        XCTAssertEqual(metric.statistics, whole.statistics)
        XCTAssertNotNil(Metrics.make("mean_iou"))
    }

    struct SSIMCase: Decodable {
        let height: Int, width: Int
        let output: [Float], target: [Float]
        let ssim: Double, psnr: Double
    }

    func testSSIMAndPSNRMatchScikitImage() throws {
        struct File: Decodable { let cases: [SSIMCase] }
        let url = DataTestFiles.fixtures.appendingPathComponent("metrics/ssim.json")
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
        for c in cases {
            let shape = [1, 1, c.height, c.width]
            var ssim = SSIM(), psnr = PSNR()
            ssim.update(outputs: Tensor(shape: shape, scalars: c.output), labels: Tensor(shape: shape, scalars: c.target))
            psnr.update(outputs: Tensor(shape: shape, scalars: c.output), labels: Tensor(shape: shape, scalars: c.target))
            XCTAssertEqual(Double(ssim.values()["ssim"] ?? 0), c.ssim, accuracy: 1e-5, "\(c.height)×\(c.width)")
            XCTAssertEqual(Double(psnr.values()["psnr"] ?? 0), c.psnr, accuracy: 1e-4, "\(c.height)×\(c.width)")
        }
        let same = Tensor(shape: [2, 3, 12, 12], scalars: (0..<864).map { Float($0 % 17) / 17 })
        var identical = SSIM()
        identical.update(outputs: same, labels: same)
        XCTAssertEqual(identical.values()["ssim"] ?? 0, 1, accuracy: 1e-6)
    }

    /// A dense metric on a model it cannot measure is an error naming it before any step.
    func testADenseMetricThatDoesNotFitTheModelIsNamed() throws {
        let data = InMemoryDataset(inputs: (0..<40).map { Float($0 % 7) }, labels: (0..<10).map { Float($0 % 2) }, featureSize: 4)
        // A classifier's [N, 2] scores: no target images for PSNR, no images for SSIM; a single
        // regression output: no class scores for MeanIoU (which does take a classifier's [N, C]).
        for (metric, units, loss, words) in [
            (PSNR() as any Metric, 2, Loss.softmaxCrossEntropy(), "metric 'psnr' cannot measure"),
            (SSIM(), 2, .softmaxCrossEntropy(), "it compares images"), (MeanIoU(), 1, .meanSquaredError, "it takes class scores"),
        ] {
            let learner = SupervisedLearner(model: Dense(inputSize: 4, units: units, seed: 1), loss: loss, optimizer: Adam())
            learner.options.verbose = 0
            learner.metrics = [metric]
            XCTAssertThrowsError(try learner.fit(data, epochs: 1, batchSize: 5)) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error)")
            }
        }
    }
}
