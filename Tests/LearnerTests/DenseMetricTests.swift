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
}
