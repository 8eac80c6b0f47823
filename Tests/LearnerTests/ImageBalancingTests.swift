import Foundation
import XCTest

@testable import Learner

/// tefla's per-epoch class balancing on image shards: records drawn by number, the same
/// draws ``BalancedDataset`` makes on the same samples in memory.
final class ImageBalancingTests: XCTestCase {
    static let png = DataTestFiles.root.appendingPathComponent("Data/digits-png/train").path

    func testBalancedImageEpochsDrawWhatTheInMemoryBalancingDraws() throws {
        // Data/digits-png holds Data/digits' samples in the same order.
        let floats = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let skewed = [0.5] + [Double](repeating: 0.5 / 9, count: 9)
        let memory = try BalancedDataset(floats, classCount: 10, epochs: 4, initProbabilities: skewed)
        let options = ImagePipelineOptions(
            batchSize: 1, height: 32, width: 32, channels: 1, workers: 2,
            keys: FeatureKeys(input: "image/encoded", label: "image/class/label"))
        let images = try ImageDataSource(files: try Shards.list(in: Self.png), options: options)
            .balanced(classCount: 10, epochs: 4, initProbabilities: skewed)
        XCTAssertEqual(try images.labels(), floats.labels)
        for epoch in [1, 4] {
            let request = BatchRequest(epoch: epoch, batchSize: 128, training: true, seed: 5)
            var want: [Float] = [], got: [Float] = []
            let a = try memory.batches(request), b = try images.batches(request)
            while let batch = try a.next() { want += batch.labels.scalars }
            while let batch = try b.next() { got += batch.labels.scalars }
            XCTAssertEqual(got, want, "epoch \(epoch)")
            XCTAssertEqual(got.count, 1437)
            let zeros = Double(got.filter { $0 == 0 }.count) / Double(got.count)
            // p(e) = u + (e − 1)/E · (q − u): 0.1 at epoch 1, 0.1 + 3/4 · 0.4 = 0.4 at epoch 4.
            XCTAssertEqual(zeros, epoch == 1 ? 0.1 : 0.4, accuracy: 0.04, "epoch \(epoch): share of class 0")
        }
        // Validation (and any evaluation) reads the plain data in order.
        let plain = try images.batches(BatchRequest(epoch: 1, batchSize: 2000, training: false, seed: 5))
        XCTAssertEqual(try plain.next()?.labels.scalars, floats.labels)
    }
}
