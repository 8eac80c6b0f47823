import Foundation
import TestSupport
import XCTest

@testable import Learner

/// Dense labels stored as float lists (feature-vector records): a class index or a target value
/// per pixel, flat, beside flat inputs reshaped to images.
final class DenseFeatureVectorTests: XCTestCase {
    /// 8×8 grey images with a bright square; the mask marks it (segmentation) and the target is
    /// the clean image (regression).
    static func data(_ count: Int, seed: UInt64) -> (inputs: [Float], masks: [Float], clean: [Float]) {
        var g = RandomGenerator(seed: seed)
        var inputs: [Float] = [], masks: [Float] = [], clean: [Float] = []
        for _ in 0..<count {
            let top = Int(g.next() % 5), left = Int(g.next() % 5)
            for y in 0..<8 {
                for x in 0..<8 {
                    let inside = (top..<(top + 3)).contains(y) && (left..<(left + 3)).contains(x)
                    clean.append(inside ? 0.9 : 0.1)
                    masks.append(inside ? 1 : 0)
                    inputs.append((inside ? 0.9 : 0.1) + g.nextNormal() * 0.1)
                }
            }
        }
        return (inputs, masks, clean)
    }

    func testPerPixelClassesFromFloatLists() throws {
        let d = Self.data(64, seed: 1)
        let train = InMemoryDataset(inputs: d.inputs, labels: d.masks, featureSize: 64, labelSize: 64)
        let model = Sequential([Reshape([1, 8, 8]), UNet(inputChannels: 1, outputChannels: 2, depth: 1, baseFilters: 8, seed: 1)])
        let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-2), seed: 1)
        learner.options.verbose = 0
        learner.metrics = [MeanIoU()]
        let history = try learner.fit(train, validation: train, epochs: 8, batchSize: 16)
        XCTAssertGreaterThan(history.epochs.last?.validationMetrics["mean_iou"] ?? 0, 0.8)
    }

    func testPerPixelTargetsFromFloatLists() throws {
        let d = Self.data(64, seed: 2)
        let train = InMemoryDataset(inputs: d.inputs, labels: d.clean, featureSize: 64, labelSize: 64)
        let model = Sequential([
            Reshape([1, 8, 8]), UNet(inputChannels: 1, outputChannels: 1, depth: 1, baseFilters: 8, batchNorm: false, seed: 1),
        ])
        let learner = SupervisedLearner(model: model, loss: .meanSquaredError, optimizer: Adam(learningRate: 1e-2), seed: 1)
        learner.options.verbose = 0
        learner.metrics = [PSNR()]
        let history = try learner.fit(train, validation: train, epochs: 10, batchSize: 16)
        // The noisy inputs score 20 dB against the clean targets (noise σ 0.1).
        XCTAssertGreaterThan(history.epochs.last?.validationMetrics["psnr"] ?? 0, 24)
    }

    /// The same from TFRecords through fit(dataDir:): an input and a mask as float lists.
    func testFloatListMasksFromRecords() throws {
        let dir = try Scratch.directory("tefla-dense-floats", for: self)
        let d = Self.data(48, seed: 3)
        let writer = try TFRecordWriter(path: dir.appendingPathComponent("part-00000.tfrecord").path)
        for i in 0..<48 {
            try writer.write(
                Example([
                    "image": .floats(Array(d.inputs[(i * 64)..<((i + 1) * 64)])),
                    "mask": .floats(Array(d.masks[(i * 64)..<((i + 1) * 64)])),
                ]).serialized())
        }
        try writer.close()
        let model = Sequential([Reshape([1, 8, 8]), UNet(inputChannels: 1, outputChannels: 2, depth: 1, baseFilters: 8, seed: 1)])
        let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-2), seed: 1)
        learner.options.verbose = 0
        learner.metrics = [MeanIoU()]
        let history = try learner.fit(
            dataDir: dir.path, featureKeys: FeatureKeys(input: "image", label: "mask"), validationDir: dir.path, epochs: 8, batchSize: 16)
        XCTAssertGreaterThan(history.epochs.last?.validationMetrics["mean_iou"] ?? 0, 0.8)
    }
}
