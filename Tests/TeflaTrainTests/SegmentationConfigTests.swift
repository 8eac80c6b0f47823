import Foundation
import Learner
import TestSupport
import XCTest

/// The dense-prediction configs: Configs/unet-shapes-segmentation.yml, a U-Net trained from
/// DeepLab-format records (Data/shapes, Scripts/make_shapes.py), reaches the stated validation
/// mean IoU; Configs/unet-shapes-denoising.yml improves PSNR over its noisy inputs by the stated margin.
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

    static func value(_ key: String, _ line: Substring) -> Float? {
        line.components(separatedBy: " - \(key): ").dropFirst().first.flatMap { Float($0.prefix { $0 != " " }) }
    }

    func testTheDenoisingConfigBeatsItsNoisyInputs() throws {
        // The noisy inputs' own PSNR against the clean targets, over the validation set.
        var o = ImagePipelineOptions(
            batchSize: 64, height: 32, width: 32, channels: 1,
            keys: FeatureKeys(input: "image/encoded", label: "image/clean/encoded"))
        o.denseLabel = .targetImage(channels: 1)
        let batches = ImagePipeline(files: try Shards.resolve("Data/shapes-denoise/val"), options: o).batches(epoch: 1)
        var noisy = PSNR()
        while let b = try batches.next() {
            noisy.update(outputs: Tensor(shape: b.shape, scalars: b.inputs), labels: Tensor(shape: b.shape, scalars: b.labels))
        }
        let baseline = try XCTUnwrap(noisy.values()["psnr"])
        XCTAssertEqual(baseline, 20.3, accuracy: 0.05, "σ 25/255 noise")

        let result = try Trainer.run(["--config", "Configs/unet-shapes-denoising.yml", "--gpu", "-1", "--verbose", "2"])
        XCTAssertEqual(result.status, 0, result.error)
        let last = try XCTUnwrap(result.output.split(separator: "\n").last { $0.hasPrefix("Epoch ") })
        // 27.1 dB seen, 6.8 dB above the inputs; at least 4 dB asserted.
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(Self.value("val_psnr", last)), baseline + 4, String(last))
        XCTAssertGreaterThan(try XCTUnwrap(Self.value("val_ssim", last)), 0.6, String(last))
    }

    /// `predict` on a segmentation model writes one PNG mask per record, named after its
    /// image/filename, of the input's size and holding classes only; the CSV lists them.
    func testPredictWritesAMaskPerImage() throws {
        let dir = try Scratch.directory("tefla-seg-predict", for: self)
        let common = [
            "--config", "Configs/unet-shapes-segmentation.yml", "--override", "checkpoint.weights_dir=\(dir.path)/weights",
        ]
        let train = try Trainer.run(common + ["--epochs", "1", "--verbose", "0", "--gpu", "-1"])
        XCTAssertEqual(train.status, 0, train.error)
        let csv = dir.appendingPathComponent("p.csv").path
        let predict = try Trainer.run(["predict"] + common + ["--data", "Data/shapes/val", "--output", csv, "--gpu", "-1"])
        XCTAssertEqual(predict.status, 0, predict.error)
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "index,filename,output_file")
        XCTAssertEqual(lines.count, 65)
        let row = lines[1].split(separator: ",").map(String.init)
        XCTAssertTrue(row[2].hasSuffix("p-images/\(row[1].replacingOccurrences(of: ".png", with: "")).png"), row[2])
        let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: row[2])))
        let pixels = try ImageDecoder.withPixels(png) { decoded in
            XCTAssertEqual([decoded.channels, decoded.height, decoded.width], [1, 64, 64])
            return decoded.image().pixels.map { Int(($0 * 255).rounded()) }
        }
        XCTAssertTrue(pixels.allSatisfy { (0..<4).contains($0) }, "class indices only")
    }
}
