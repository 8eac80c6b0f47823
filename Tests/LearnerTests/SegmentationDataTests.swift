import Foundation
import TestSupport
import XCTest

@testable import Learner

/// Records in DeepLab's format: an image and a PNG of class indices, augmented together.
final class SegmentationDataTests: XCTestCase {
    static let maskKey = "image/segmentation/class/encoded"

    /// A 40×48 grey image whose pixels encode their own class (class k is grey 60·k) over four
    /// regions and a disc; the mask holds the classes, 255 on a band that is ignored.
    static func pair(_ n: Int) throws -> (image: [UInt8], mask: [UInt8]) {
        let (h, w) = (40, 48)
        var image = [UInt8](repeating: 0, count: h * w), mask = [UInt8](repeating: 0, count: h * w)
        for y in 0..<h {
            for x in 0..<w {
                var k = (y < h / 2 ? 0 : 2) + (x < w / 2 ? 0 : 1)
                let (dy, dx) = (Double(y) - 20 - Double(n % 5), Double(x) - 30 + Double(n % 7))
                if dy * dy + dx * dx < 64 { k = (k + 2) % 4 }
                image[y * w + x] = UInt8(60 * k)
                mask[y * w + x] = x == 3 ? 255 : UInt8(k)
            }
        }
        return (try ImageEncoder.png(image, height: h, width: w, channels: 1), try ImageEncoder.png(mask, height: h, width: w, channels: 1))
    }

    static func shard(_ dir: URL, count: Int, maskSize: (Int, Int)? = nil) throws -> String {
        let path = dir.appendingPathComponent("seg-\(count).tfrecord").path
        let writer = try TFRecordWriter(path: path)
        for n in 0..<count {
            var (image, mask) = try pair(n)
            if let (h, w) = maskSize, n == count - 1 {
                mask = try ImageEncoder.png([UInt8](repeating: 1, count: h * w), height: h, width: w, channels: 1)
            }
            try writer.write(Example(["image/encoded": .bytes([image]), maskKey: .bytes([mask])]).serialized())
        }
        try writer.close()
        return path
    }

    func options(_ transform: any ImageTransform, height: Int = 32, width: Int = 32) -> ImagePipelineOptions {
        var o = ImagePipelineOptions(
            batchSize: 4, height: height, width: width, channels: 1, shuffle: true, seed: 9, workers: 2,
            keys: FeatureKeys(input: "image/encoded", label: Self.maskKey), transform: transform)
        o.denseLabel = .classMask()
        return o
    }

    /// Every pixel's class read from the augmented image against the augmented mask: (agreeing,
    /// compared) over pixels whose image value is a class's grey, not a blend of two.
    func agreement(_ pipeline: ImagePipeline) throws -> (Int, Int, Int) {
        var agree = 0, compared = 0, pixels = 0
        let batches = pipeline.batches(epoch: 1)
        while let batch = try batches.next() {
            XCTAssertEqual(batch.labelShape, [pipeline.options.height, pipeline.options.width])
            XCTAssertEqual(batch.labels.count, batch.inputs.count)
            for (value, label) in zip(batch.inputs, batch.labels) {
                pixels += 1
                let grey = value * 255 / 60
                guard label != 255, abs(grey - grey.rounded()) < 0.01 else { continue }
                compared += 1
                if Float(label) == grey.rounded() { agree += 1 }
            }
        }
        return (agree, compared, pixels)
    }

    func testExactTransformsMoveTheMaskPixelForPixel() throws {
        let dir = try Scratch.directory("tefla-seg", for: self)
        let file = try Self.shard(dir, count: 12)
        let transform = Compose([RandomCrop(height: 32, width: 32, padding: 4), RandomHorizontalFlip(), RandomVerticalFlip()])
        let (agree, compared, pixels) = try agreement(ImagePipeline(files: [file], options: options(transform)))
        XCTAssertEqual(agree, compared)
        XCTAssertGreaterThan(compared, pixels * 8 / 10)
    }

    func testWarpsAndResizedCropsKeepImageAndMaskAligned() throws {
        let dir = try Scratch.directory("tefla-seg-warp", for: self)
        let file = try Self.shard(dir, count: 16)
        let transform = Compose([
            RandomResizedCrop(height: 36, width: 36, scale: 0.3...1), RandomRotation(degrees: 40), RandomPerspective(distortion: 0.4, p: 1),
            RandomHorizontalFlip(), ColorJitter(brightness: 0),
        ])
        let (agree, compared, pixels) = try agreement(ImagePipeline(files: [file], options: options(transform, height: 24, width: 24)))
        // Resampling blends the image at class borders; the pixels left unblended must agree.
        XCTAssertGreaterThan(Double(agree) / Double(compared), 0.98, "\(agree) of \(compared)")
        XCTAssertGreaterThan(compared, pixels / 2)
    }

    /// A target image (image-to-image regression) travels as the input does: with the input's
    /// own PNG as its target, every augmented pair is equal, value for value; colour jitter and
    /// normalisation change the input alone.
    func testATargetImageIsResampledAsTheInput() throws {
        let dir = try Scratch.directory("tefla-seg-target", for: self)
        let path = dir.appendingPathComponent("pairs.tfrecord").path
        let writer = try TFRecordWriter(path: path)
        for n in 0..<6 {
            let (image, _) = try Self.pair(n)
            try writer.write(Example(["image/encoded": .bytes([image]), "target": .bytes([image])]).serialized())
        }
        try writer.close()
        func batches(_ transform: any ImageTransform) throws -> [ImageBatch] {
            var o = ImagePipelineOptions(
                batchSize: 3, height: 24, width: 24, channels: 1, seed: 4, keys: FeatureKeys(input: "image/encoded", label: "target"),
                transform: transform)
            o.denseLabel = .targetImage(channels: 1)
            let it = ImagePipeline(files: [path], options: o).batches(epoch: 1)
            var out: [ImageBatch] = []
            while let b = try it.next() { out.append(b) }
            return out
        }
        let geometric = Compose([RandomResizedCrop(height: 30, width: 30), RandomRotation(degrees: 25), RandomHorizontalFlip()])
        for batch in try batches(geometric) {
            XCTAssertEqual(batch.labelShape, [1, 24, 24])
            XCTAssertEqual(batch.labels, batch.inputs)
        }
        let photometric = Compose([geometric, Normalize(mean: [0.5], std: [0.25])])
        for batch in try batches(photometric) {
            XCTAssertEqual(batch.labels.map { ($0 - 0.5) / 0.25 }.map { ($0 * 1e4).rounded() }, batch.inputs.map { ($0 * 1e4).rounded() })
        }
    }

    /// A 16-bit PNG target keeps its 16 bits: value v arrives as v / 65535, not rounded to 8 bits.
    func testASixteenBitTargetKeepsItsPrecision() throws {
        let dir = try Scratch.directory("tefla-seg-16", for: self)
        let target = try [UInt8](Data(contentsOf: DataTestFiles.fixtures.appendingPathComponent("images/grey16-6x4.png")))
        let input = try ImageEncoder.png([UInt8](repeating: 128, count: 24), height: 4, width: 6, channels: 1)
        let path = dir.appendingPathComponent("16.tfrecord").path
        let writer = try TFRecordWriter(path: path)
        try writer.write(Example(["image/encoded": .bytes([input]), "target": .bytes([target])]).serialized())
        try writer.close()
        var o = ImagePipelineOptions(
            batchSize: 1, height: 4, width: 6, channels: 1, keys: FeatureKeys(input: "image/encoded", label: "target"))
        o.denseLabel = .targetImage(channels: 1)
        let batch = try XCTUnwrap(try ImagePipeline(files: [path], options: o).batches(epoch: 1).next())
        let want = (0..<24).map { Float($0 * 2731 + 7) / 65535 }
        for (got, w) in zip(batch.labels, want) { XCTAssertEqual(got, w, accuracy: 1e-7) }
        XCTAssertNotEqual(batch.labels[1], (batch.labels[1] * 255).rounded() / 255, "not quantised to 8 bits")
        // A colour target for a grey model is named.
        o.denseLabel = .targetImage(channels: 3)
        XCTAssertThrowsError(try ImagePipeline(files: [path], options: o).batches(epoch: 1).next()) { error in
            XCTAssertTrue("\(error)".contains("'target'"), "\(error)")
        }
    }

    func testAMaskOfAnotherSizeIsNamedWithItsRecord() throws {
        let dir = try Scratch.directory("tefla-seg-size", for: self)
        let file = try Self.shard(dir, count: 3, maskSize: (20, 24))
        let pipeline = ImagePipeline(files: [file], options: options(Compose([])))
        XCTAssertThrowsError(try { while try pipeline.batches(epoch: 1).next() != nil {} }()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("the label image is 24×20, its input 'image/encoded' 48×40"), text)
            XCTAssertTrue(text.contains("record 2"), text)
        }
    }

    /// From a data directory through fit: the mask is detected as a dense label, the classes are
    /// checked per pixel, and a model whose outputs are not the classes is refused before a step.
    func testFitTakesDeepLabRecords() throws {
        let dir = try Scratch.directory("tefla-seg-fit", for: self)
        _ = try Self.shard(dir, count: 8)
        let keys = FeatureKeys(input: "image/encoded", label: Self.maskKey)
        let net = UNet(inputChannels: 1, outputChannels: 4, depth: 2, baseFilters: 4, seed: 1)
        let learner = SupervisedLearner(model: net, loss: .softmaxCrossEntropy(ignoreIndex: 255), optimizer: Adam(), seed: 1)
        learner.options.verbose = 0
        learner.options.images.size = ImageSize(height: 32, width: 32)
        learner.metrics = [MeanIoU()]
        let history = try learner.fit(dataDir: dir.path, featureKeys: keys, validationDir: dir.path, epochs: 1, batchSize: 4)
        XCTAssertNotNil(history.epochs.last?.validationMetrics["mean_iou"])

        let narrow = SupervisedLearner(
            model: UNet(inputChannels: 1, outputChannels: 3, depth: 2, baseFilters: 4), loss: .softmaxCrossEntropy(ignoreIndex: 255),
            optimizer: Adam(), seed: 1)
        narrow.options.verbose = 0
        narrow.options.images.size = ImageSize(height: 32, width: 32)
        XCTAssertThrowsError(try narrow.fit(dataDir: dir.path, featureKeys: keys, epochs: 1, batchSize: 4)) { error in
            XCTAssertTrue("\(error)".contains("has the label 3, but the model gives 3 class scores (labels 0...2)"), "\(error)")
        }
    }
}
