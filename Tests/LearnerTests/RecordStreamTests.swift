import Foundation
import TestSupport
import XCTest

@testable import Learner

/// Feature-vector shards over the memory budget are read from disk every epoch, by record
/// number, with the batches the in-memory data set gives for the same seed.
final class RecordStreamTests: XCTestCase {
    static let train = DataTestFiles.digits + "/train"
    static let val = DataTestFiles.digits + "/val"

    private func drain(_ source: any DataSource, _ request: BatchRequest) throws -> [DataBatch] {
        let stream = try source.batches(request)
        var out: [DataBatch] = []
        while let batch = try stream.next() { out.append(batch) }
        return out
    }

    func testStreamedBatchesAreTheInMemoryBatches() throws {
        let files = try Shards.list(in: Self.train)
        let memory = try InMemoryDataset.load(files: files, keys: FeatureKeys())
        let streamed = try RecordStreamDataset(files: files)
        XCTAssertEqual(streamed.sampleCount, memory.count)
        XCTAssertEqual(streamed.featureSize, 64)
        XCTAssertEqual(streamed.bytesInMemory, memory.count * 65 * 4)
        for training in [true, false] {
            for epoch in [1, 4] {
                let request = BatchRequest(epoch: epoch, batchSize: 100, training: training, seed: 11)
                let want = try drain(memory, request), got = try drain(streamed, request)
                XCTAssertEqual(got.count, want.count)
                for (g, w) in zip(got, want) {
                    XCTAssertEqual(g.inputs.shape, w.inputs.shape)
                    XCTAssertEqual(g.inputs.scalars, w.inputs.scalars, "epoch \(epoch), training \(training)")
                    XCTAssertEqual(g.labels.scalars, w.labels.scalars, "epoch \(epoch), training \(training)")
                }
                // Three replicas' shares side by side are the whole batches, each read alone.
                let shares = try (0..<3).map { rank -> [DataBatch] in
                    var r = request
                    r.replica = ReplicaShare(rank: rank, count: 3)
                    return try drain(streamed, r)
                }
                for (b, w) in want.enumerated() {
                    XCTAssertEqual(shares.flatMap { $0[b].labels.scalars }, w.labels.scalars, "batch \(b)")
                    XCTAssertEqual(shares[2][b].share, BatchShare(offset: 2 * w.count / 3, globalCount: w.count))
                }
            }
        }
        XCTAssertEqual(streamed.counts.read, 2 * 2 * memory.count * 2, "every epoch read from disk; shares once each")
    }

    func testFitOverTheBudgetTrainsAsInMemory() throws {
        let inMemory = try RecordData(training: Self.train, validation: Self.val, keys: FeatureKeys())
        XCTAssertTrue(inMemory.training is InMemoryDataset)
        let streamed = try RecordData(training: Self.train, validation: Self.val, keys: FeatureKeys(), memoryBudget: 100_000)
        XCTAssertTrue(streamed.training is RecordStreamDataset, "1,437 × 65 floats are over a 100 kB budget")
        XCTAssertTrue(streamed.validation is InMemoryDataset, "360 × 65 floats fit it")

        func train(_ budget: Int) throws -> (History, [[Float]]) {
            let model = Sequential([
                Dense(inputSize: 64, units: 32, activation: .relu, seed: 3), Dropout(rate: 0.1), Dense(inputSize: 32, units: 10, seed: 4),
            ])
            let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 2)
            learner.options.verbose = 0
            learner.options.dataMemoryBudget = budget
            let history = try learner.fit(
                dataDir: Self.train, featureKeys: FeatureKeys(), validationDir: Self.val, epochs: 3, batchSize: 32)
            return (history, model.parameters.map(\.value.scalars))
        }
        let (memoryHistory, memoryWeights) = try train(1 << 30)
        let (streamHistory, streamWeights) = try train(1)
        XCTAssertEqual(streamWeights, memoryWeights, "the same batches give the same weights")
        XCTAssertEqual(streamHistory.epochs.map(\.trainLoss), memoryHistory.epochs.map(\.trainLoss))
        XCTAssertEqual(streamHistory.epochs.map(\.validationAccuracy), memoryHistory.epochs.map(\.validationAccuracy))
        XCTAssertGreaterThan(streamHistory.epochs.last?.validationAccuracy ?? 0, 0.9)
    }

    func testCompressedShardsStayInMemoryAndABadRecordIsNamed() throws {
        let dir = try Scratch.directory("tefla-stream", for: self)
        let records = try TFRecordReader.readAll(path: try Shards.list(in: Self.train)[0])
        let gzip = dir.appendingPathComponent("gz").path
        try FileManager.default.createDirectory(atPath: gzip, withIntermediateDirectories: true)
        let writer = try TFRecordWriter(path: gzip + "/part-0.tfrecord.gz", compression: .gzip)
        for record in records.prefix(50) { try writer.write(record) }
        try writer.close()
        let data = try RecordData.featureVectors(files: try Shards.list(in: gzip), keys: FeatureKeys(), memoryBudget: 1)
        XCTAssertTrue(data.source is InMemoryDataset, "a compressed shard has no record offsets: read into memory")
        XCTAssertThrowsError(try RecordStreamDataset(files: try Shards.list(in: gzip))) { error in
            XCTAssertTrue("\(error)".contains("write the shards uncompressed"), "\(error)")
        }

        // Record 7 holds 63 values where the others hold 64.
        let bad = dir.appendingPathComponent("bad").path
        try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
        let plain = try TFRecordWriter(path: bad + "/part-0.tfrecord")
        for (n, record) in records.prefix(20).enumerated() {
            var example = try Example(serialized: record)
            if n == 7, case .floats(let values)? = example["image"] { example["image"] = .floats(Array(values.dropLast())) }
            try plain.write(example.serialized())
        }
        try plain.close()
        let streamed = try RecordStreamDataset(files: try Shards.list(in: bad))
        XCTAssertThrowsError(try drain(streamed, BatchRequest(epoch: 1, batchSize: 10, training: false, seed: 1))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("part-0.tfrecord") && text.contains("record 7") && text.contains("'image'"), text)
        }
    }

    /// A data set of many shards keeps no file open between reads (ImageNet's TFRecords are
    /// 1,024 shards; a process may open 1,024 files by default).
    func testManyShardsHoldNoDescriptorsOpen() throws {
        let dir = try Scratch.directory("tefla-many-shards", for: self)
        let records = try TFRecordReader.readAll(path: try Shards.list(in: Self.train)[0])
        for n in 0..<64 {
            let writer = try TFRecordWriter(path: dir.appendingPathComponent(String(format: "part-%05d.tfrecord", n)).path)
            try writer.write(records[n])
            try writer.close()
        }
        func openFiles() throws -> Int { try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count }
        let before = try openFiles()
        let streamed = try RecordStreamDataset(files: try Shards.list(in: dir.path))
        let batch = try streamed.read(Array(0..<64))
        XCTAssertEqual(try openFiles(), before, "no descriptor stays open")
        let memory = try InMemoryDataset.load(directory: dir.path, keys: FeatureKeys())
        XCTAssertEqual(batch.inputs.scalars, memory.inputs)
    }
}
