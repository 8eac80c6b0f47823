import Foundation
import Learner
import TestSupport
import XCTest

/// One `fit(dataDir:featureKeys:)` for every record kind: what the records hold is recognised,
/// images are decoded to the size they are stored at (or one given), evaluation images are
/// centre-cropped to the model's aspect.
final class RecordDataTests: XCTestCase {
    static let data = DataTestFiles.root.appendingPathComponent("Data")
    static let imageKeys = FeatureKeys(input: "image/encoded", label: "image/class/label")

    func testProbeTellsFeatureVectorsFromEncodedImages() throws {
        let vectors = try Shards.resolve(DataTestFiles.digits + "/train")
        XCTAssertEqual(try RecordContent.probe(files: vectors, keys: FeatureKeys()), .featureVector(count: 64))
        let pngs = try Shards.resolve(Self.data.appendingPathComponent("digits-png/val").path)
        XCTAssertEqual(try RecordContent.probe(files: pngs, keys: Self.imageKeys), .encodedImage(.png))
        XCTAssertThrowsError(try RecordContent.probe(files: pngs, keys: FeatureKeys(input: "pixels"))) { error in
            XCTAssertTrue("\(error)".contains("'pixels' is missing in record 0"), "\(error)")
        }
    }

    func testScanFindsTheSizeEveryImageIsStoredAt() throws {
        let files = try Shards.resolve(Self.data.appendingPathComponent("digits-png/train").path)
        let stored = try StoredImageSize.scan(files: files, key: "image/encoded")
        XCTAssertEqual(stored, StoredImageSize(height: 32, width: 32, channels: 1, count: 1437))
        var options = ImageDataOptions()
        XCTAssertEqual(try options.sampleShape(files: files, key: "image/encoded"), [1, 32, 32])
        options.size = ImageSize(height: 20, width: 24)
        XCTAssertEqual(try options.sampleShape(files: files, key: "image/encoded"), [1, 20, 24], "a given size wins")
        options.channels = 3
        XCTAssertEqual(try options.sampleShape(files: files, key: "image/encoded"), [3, 20, 24])
    }

    /// The header-only read gives what a full decode gives, for every fixture image kind.
    func testInfoAgreesWithTheDecoder() throws {
        let folder = DataTestFiles.fixtures.appendingPathComponent("images")
        for name in ["grey.jpg", "grey.png", "grey16.png", "palette.png", "rgb.jpg", "rgb.png", "rgb16.png", "rgba.png"] {
            let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
            let info = try ImageDecoder.info(bytes)
            let decoded = try ImageDecoder.decodeBytes(bytes)
            XCTAssertEqual([info.height, info.width, info.channels], [decoded.height, decoded.width, decoded.channels], name)
        }
        XCTAssertThrowsError(try ImageDecoder.info([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0])) { error in
            guard case DataError.undecodableImage = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try ImageDecoder.info(Array("GIF89a".utf8)))
    }

    /// torchvision's Resize(⌈S / f⌉) + CenterCrop(S) keeps the centred S / (S / f) = f of the
    /// shorter side; other aspects keep the largest centred rectangle of the output's aspect.
    func testCenterCropKeepsTheCentredPartOfTheOutputsAspect() {
        var random = SampleRandom(seed: 0, epoch: 0, index: 0)
        let landscape = CropWindow.whole(height: 40, width: 60)
        XCTAssertEqual(
            CenterCrop(height: 32, width: 32).window(of: landscape, random: &random),
            CropWindow(top: 0, left: 10, height: 40, width: 40))
        XCTAssertEqual(
            CenterCrop(height: 32, width: 32, fraction: 0.875).window(of: landscape, random: &random),
            CropWindow(top: 2, left: 12, height: 35, width: 35))
        XCTAssertEqual(
            CenterCrop(height: 16, width: 32).window(of: landscape, random: &random),
            CropWindow(top: 5, left: 0, height: 30, width: 60))
        XCTAssertEqual(
            CenterCrop(height: 24, width: 36).window(of: landscape, random: &random), landscape, "the same aspect: the whole image")
        // apply gives the window's pixels.
        let image = Image(height: 4, width: 6, channels: 1, pixels: (0..<24).map(Float.init))
        XCTAssertEqual(
            CenterCrop(height: 2, width: 2).apply(image, random: &random).pixels, [1, 2, 3, 4, 7, 8, 9, 10, 13, 14, 15, 16, 19, 20, 21, 22])
    }

    /// Validation images of another aspect are centre-cropped, not stretched: a 32×48 image
    /// whose middle 32×32 holds a pattern evaluates to exactly that pattern at 32×32.
    func testEvaluationImagesAreCroppedNotStretched() throws {
        let dir = try Scratch.directory("tefla-center-crop", for: self)
        var pixels = [UInt8](repeating: 0, count: 32 * 48)
        for y in 0..<32 { for x in 8..<40 { pixels[y * 48 + x] = UInt8((x - 8) * 8) } }
        let png = TestPNG.encode(pixels, height: 32, width: 48, channels: 1)
        let file = dir.appendingPathComponent("wide-00000-of-00001.tfrecord").path
        let writer = try TFRecordWriter(path: file)
        try writer.write(
            Example(["image/encoded": .bytes([png]), "image/class/label": .int64s([0])]).serialized())
        try writer.close()
        var options = ImageDataOptions()
        options.size = ImageSize(32)
        let source = try options.source(files: [file], keys: Self.imageKeys, shape: [1, 32, 32])
        let stream = try source.batches(BatchRequest(epoch: 1, batchSize: 1, training: false, seed: 0))
        let batch = try XCTUnwrap(try stream.next())
        let row = Array(batch.inputs.scalars[0..<32])
        XCTAssertEqual(row, (0..<32).map { Float($0 * 8) / 255 }, "the centre 32×32, pixel for pixel")
        options.evaluationResize = .stretch
        let stretched = try options.source(files: [file], keys: Self.imageKeys, shape: [1, 32, 32])
        let squeezed = try XCTUnwrap(try stretched.batches(BatchRequest(epoch: 1, batchSize: 1, training: false, seed: 0)).next())
        XCTAssertEqual(squeezed.inputs.scalars[0], 0, "the stretch keeps the black border")
    }

    private func smallCNN(channels: Int) -> Sequential {
        Sequential([
            Conv2D(inputChannels: channels, outputChannels: 16, kernelSize: 3, padding: .same, seed: 1), BatchNorm2D(features: 16),
            ActivationLayer(.relu), MaxPool2D(kernelSize: 2),
            Conv2D(inputChannels: 16, outputChannels: 32, kernelSize: 3, padding: .same, seed: 2), BatchNorm2D(features: 32),
            ActivationLayer(.relu), MaxPool2D(kernelSize: 2),
            Conv2D(inputChannels: 32, outputChannels: 64, kernelSize: 3, padding: .same, seed: 3), BatchNorm2D(features: 64),
            ActivationLayer(.relu), GlobalAvgPool2D(), Dense(inputSize: 64, units: 10, seed: 4),
        ])
    }

    private func learner(channels: Int, epochs: Int) -> SupervisedLearner {
        var options = TrainingOptions()
        options.verbose = 0
        options.schedule = OneCycleLR(maxLR: 0.01)
        options.images.normalize = Normalize(mean: Array(repeating: 0.3, count: channels), std: Array(repeating: 0.4, count: channels))
        options.images.augmentation = { size in RandomCrop(height: size.height, width: size.width, padding: 2) }
        return SupervisedLearner(
            model: smallCNN(channels: channels), loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.003), seed: 1,
            options: options)
    }

    /// tefla's call on shards of PNGs, no size given: the size they are stored at.
    func testFitDataDirDecodesPNGShardsAtTheirStoredSize() throws {
        let history = try learner(channels: 1, epochs: 3).fit(
            dataDir: Self.data.appendingPathComponent("digits-png/train").path, featureKeys: Self.imageKeys,
            validationDir: Self.data.appendingPathComponent("digits-png/val").path, epochs: 3)
        let accuracy = try XCTUnwrap(history.epochs.last?.validationAccuracy)
        XCTAssertGreaterThanOrEqual(accuracy, 0.85, "\(history.epochs.map(\.validationAccuracy))")
    }

    /// The case: shards written by TensorFlow (JPEG and PNG, `image/format` set, tefla's
    /// keys), through `fit(dataDir:featureKeys:startEpoch:)` with no size, to the accuracy the
    /// CLI's PNG config reaches; and the two data sets that cannot train, named.
    func testFitDataDirTrainsOnTensorFlowWrittenJPEGAndPNGShards() throws {
        let python = try PeerPython.interpreter(with: ["tensorflow", "numpy"])
        let dir = try Scratch.directory("tefla-tf-images", for: self)
        let script = DataTestFiles.root.appendingPathComponent("Scripts/fixtures/write_tf_image_shards.py").path
        let written = try PeerPython.run(python, [script, DataTestFiles.root.path, dir.path])
        XCTAssertEqual(written.status, 0, written.output)
        let train = dir.appendingPathComponent("train").path
        let files = try Shards.resolve(train)
        XCTAssertEqual(try RecordContent.probe(files: files, keys: Self.imageKeys), .encodedImage(.jpeg))
        XCTAssertEqual(
            try StoredImageSize.scan(files: files, key: "image/encoded"),
            StoredImageSize(height: 32, width: 32, channels: 3, count: 1437), "a colour JPEG makes the set RGB")

        let learner = learner(channels: 3, epochs: 12)
        let history = try learner.fit(
            dataDir: train, featureKeys: Self.imageKeys, validationDir: dir.appendingPathComponent("val").path, epochs: 12)
        let accuracy = try XCTUnwrap(history.epochs.last?.validationAccuracy)
        XCTAssertGreaterThanOrEqual(accuracy, 0.98, "\(history.epochs.map(\.validationAccuracy))")

        XCTAssertThrowsError(
            try self.learner(channels: 1, epochs: 1).fit(dataDir: dir.appendingPathComponent("mixed").path, featureKeys: Self.imageKeys)
        ) {
            let text = "\($0)"
            for part in ["differ in size", "record 0 at byte offset 0 of", "is 32×32", "record 2 at byte offset", "is 28×28", "imageSize"] {
                XCTAssertTrue(text.contains(part), "\(part): \(text)")
            }
        }
        // Given a size, the same images train.
        XCTAssertNoThrow(
            try self.learner(channels: 1, epochs: 1).fit(
                dataDir: dir.appendingPathComponent("mixed").path, featureKeys: Self.imageKeys, epochs: 1, imageSize: ImageSize(28)))
        XCTAssertThrowsError(
            try self.learner(channels: 1, epochs: 1).fit(dataDir: dir.appendingPathComponent("bmp").path, featureKeys: Self.imageKeys)
        ) {
            let text = "\($0)"
            XCTAssertTrue(text.contains("image/format is 'bmp'") && text.contains("bmp-00000-of-00001.tfrecord"), text)
        }
    }

    /// Every option on image shards as on feature vectors: the label scan that `balanced` class
    /// weights need, per-sample weights from a feature, the LR finder over decoded batches.
    func testLabelsSampleWeightsAndTheLRFinderOnImageShards() throws {
        let dir = try Scratch.directory("tefla-image-options", for: self)
        let source = Self.data.appendingPathComponent("digits-png/val").path
        let records = try Shards.list(in: source).flatMap { try TFRecordReader.readAll(path: $0) }
        let shard = dir.appendingPathComponent("weighted-00000-of-00001.tfrecord").path
        let writer = try TFRecordWriter(path: shard)
        var labels: [Float] = []
        for (n, record) in records.enumerated() {
            var example = try Example(serialized: record)
            example["weight"] = .floats([Float(n % 3)])
            if case .int64s(let label)? = example["image/class/label"] { labels.append(Float(label[0])) }
            try writer.write(example.serialized())
        }
        try writer.close()
        var options = ImageDataOptions()
        let keys = FeatureKeys(input: "image/encoded", label: "image/class/label", sampleWeight: "weight")
        let data = try options.source(files: [shard], keys: keys, shape: [1, 32, 32])
        XCTAssertEqual(try data.labels(), labels, "the label scan reads every record in file order")
        let stream = try data.batches(BatchRequest(epoch: 1, batchSize: 100, training: false, seed: 0))
        var weights: [Float] = []
        var seen: [Float] = []
        while let batch = try stream.next() {
            weights += try XCTUnwrap(batch.sampleWeights).scalars
            seen += batch.labels.scalars
        }
        XCTAssertEqual(weights, (0..<records.count).map { Float($0 % 3) })
        XCTAssertEqual(seen, labels)

        options.normalize = Normalize(mean: [0.3], std: [0.4])
        let learner = SupervisedLearner(
            model: smallCNN(channels: 1), loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-3), seed: 1)
        let sweep = try learner.findLearningRate(
            training: try options.source(files: [shard], keys: Self.imageKeys, shape: [1, 32, 32]), startLR: 1e-5, endLR: 10,
            iterations: 30, batchSize: 32)
        XCTAssertGreaterThanOrEqual(sweep.learningRates.count, 10)
        XCTAssertLessThan(sweep.suggestedRange.upper, 10)
        XCTAssertGreaterThan(sweep.suggestedRange.upper, 1e-5)
    }
}
