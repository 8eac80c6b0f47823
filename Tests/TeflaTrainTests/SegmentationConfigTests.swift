import Foundation
import Learner
import TestSupport
import XCTest

/// Configs/unet-shapes-segmentation.yml: a U-Net trained from DeepLab-format records
/// (Data/shapes, Scripts/make_shapes.py) reaches the stated validation mean IoU.
final class SegmentationConfigTests: XCTestCase {
    override func setUp() {
        _ = FileManager.default.changeCurrentDirectoryPath(ConfigTests.root.path)
    }

    func testTheUNetConfigSegmentsTheShapes() throws {
        let result = try Trainer.run(["--config", "Configs/unet-shapes-segmentation.yml", "--gpu", "-1", "--verbose", "2"])
        XCTAssertEqual(result.status, 0, result.error)
        let epochs = result.output.split(separator: "\n").filter { $0.hasPrefix("Epoch ") }
        XCTAssertEqual(epochs.count, 14, result.output)
        func value(_ key: String, _ line: Substring) -> Float? {
            line.components(separatedBy: " - \(key): ").dropFirst().first.flatMap { Float($0.prefix { $0 != " " }) }
        }
        let last = try XCTUnwrap(epochs.last)
        // Chance is far below: the background alone (class 0) gives a mean IoU near 0.2.
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(value("val_mean_iou", last)), 0.80, String(last))
        XCTAssertGreaterThan(try XCTUnwrap(value("val_pixel_accuracy", last)), 0.95, String(last))
        for k in 0..<4 { XCTAssertNotNil(value("val_iou_\(k)", last), "iou_\(k) in \(last)") }
    }
}
