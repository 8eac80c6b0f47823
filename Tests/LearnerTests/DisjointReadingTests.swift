import Foundation
import TestSupport
import XCTest

@testable import Learner

/// Data-parallel replicas reading image shards: each replica reads and decodes only its share
/// of every global batch, and N replicas still train exactly as one replica given the whole
/// batch (with augmentation, whose draws are keyed by a sample's position in the epoch).
final class DisjointReadingTests: XCTestCase {
    static let shards = DataTestFiles.root.appendingPathComponent("Data/digits-png/train").path

    static func source(workers: Int) throws -> ImageDataSource {
        var options = ImagePipelineOptions(
            batchSize: 1, height: 16, width: 16, channels: 1, shuffle: true, shuffleBufferSize: 512, workers: workers,
            keys: FeatureKeys(input: "image/encoded", label: "image/class/label"),
            transform: Compose([RandomResizedCrop(height: 16, width: 16, scale: 0.5...1), RandomHorizontalFlip()]))
        options.maxQueueSize = 4
        return try ImageDataSource(files: try Shards.list(in: shards), options: options)
    }

    /// A small conv net without batch norm (its statistics are per replica), with dropout.
    static func learner(initSeed: UInt64) -> SupervisedLearner {
        let model = Sequential([
            Conv2D(inputChannels: 1, outputChannels: 6, kernelSize: 3, activation: .relu, seed: initSeed),
            MaxPool2D(kernelSize: 2), Dropout(rate: 0.1), Flatten(),
            Dense(inputSize: 6 * 7 * 7, units: 10, seed: initSeed + 1),
        ])
        let l = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 4)
        l.options.verbose = 0
        return l
    }

    func testReplicasReadTheirSharesAndTrainAsOneReplica() throws {
        let epochs = 2, batch = 64
        let single = Self.learner(initSeed: 1)
        let whole = try Self.source(workers: 2)
        let reference = try single.fit(whole, epochs: epochs, batchSize: batch)
        let expected = single.model.parameters.map(\.value.scalars)
        let records = try XCTUnwrap(whole.sampleCount)
        XCTAssertEqual(records, 1437)
        // fit checks the first batch against the model before training, then trains.
        XCTAssertEqual(whole.counts.decoded, batch + epochs * records, "one replica decodes every record once an epoch")

        for n in [2, 3] {
            let results = PerRank<(weights: [[Float]], losses: [Float], read: Int, decoded: Int)>()
            try InProcessGroup(size: n, timeout: 120).run { communicator in
                let rank = communicator.rank
                // Any worker count gives the same batches.
                let source = try Self.source(workers: 1 + rank % 2)
                let replica = Self.learner(initSeed: 1 + UInt64(rank) * 100)
                replica.gradientSynchronizer = DataParallel(communicator)
                let history = try replica.fit(source, epochs: epochs, batchSize: batch)
                results.set(
                    rank,
                    (
                        replica.model.parameters.map(\.value.scalars), history.epochs.map(\.trainLoss), source.counts.read,
                        source.counts.decoded
                    ))
            }
            // Rank r's share of a batch of b is r·b/n ..< (r+1)·b/n; the last batch is short.
            let batches = (0..<(records + batch - 1) / batch).map { min(batch, records - $0 * batch) }
            for rank in 0..<n {
                let result = try XCTUnwrap(results[rank])
                let shareOf = { (b: Int) in (rank + 1) * b / n - rank * b / n }
                let share = batches.reduce(0) { $0 + shareOf($1) }
                XCTAssertEqual(result.decoded, shareOf(batch) + epochs * share, "N = \(n), rank \(rank): records decoded")
                XCTAssertEqual(result.read, result.decoded, "N = \(n), rank \(rank): records read")
                for (got, want) in zip(result.weights, expected) {
                    XCTAssertTrue(got.allSatisfy(\.isFinite), "N = \(n), rank \(rank): not finite")
                    let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertLessThan(worst, 1e-5, "N = \(n), rank \(rank)")
                }
                for (got, want) in zip(result.losses, reference.epochs.map(\.trainLoss)) {
                    XCTAssertEqual(got, want, accuracy: 1e-5 * max(1, abs(want)), "N = \(n), rank \(rank): epoch loss")
                }
            }
            let total = (0..<n).reduce(0) { $0 + (results[$1]?.decoded ?? 0) }
            XCTAssertEqual(total, batch + epochs * records, "N = \(n): the replicas together decode each record once an epoch")
        }
        // Training moved the weights: the comparison means something.
        let initial = Self.learner(initSeed: 1).model.parameters.map(\.value.scalars)
        let moved = zip(initial, expected).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
        XCTAssertGreaterThan(moved, 1e-3)
    }

    /// A run resumed mid-epoch passes over the epoch's first batches without decoding them.
    func testAResumedEpochDecodesOnlyTheBatchesItTrainsOn() throws {
        let source = try Self.source(workers: 2)
        let stream = try source.batches(BatchRequest(epoch: 3, batchSize: 100, training: true, seed: 7, startBatch: 10))
        var seen = 0
        while let batch = try stream.next() { seen += batch.count }
        XCTAssertEqual(seen, 1437 - 1000)
        XCTAssertEqual(source.counts.decoded, 437)
        // And the batches are those an unbroken epoch gives from there.
        let full = try source.batches(BatchRequest(epoch: 3, batchSize: 100, training: true, seed: 7))
        for _ in 0..<10 { _ = try full.next() }
        let resumed = try source.batches(BatchRequest(epoch: 3, batchSize: 100, training: true, seed: 7, startBatch: 10))
        while let want = try full.next() {
            let got = try XCTUnwrap(try resumed.next())
            XCTAssertEqual(got.inputs.scalars, want.inputs.scalars)
            XCTAssertEqual(got.labels.scalars, want.labels.scalars)
        }
    }

    /// The replicas' shares of every batch, put side by side, are the whole batches: for shards
    /// read by record number and for GZIP shards (streamed: every replica reads every record
    /// but decodes only its share).
    func testSharesOfEveryBatchMakeUpTheWholeBatch() throws {
        let files = Array(try Shards.list(in: Self.shards).prefix(2))
        let dir = try Scratch.directory("tefla-shares", for: self)
        var gzipped: [String] = []
        for (n, file) in files.enumerated() {
            let path = dir.appendingPathComponent("part-\(n).tfrecord.gz").path
            let writer = try TFRecordWriter(path: path, compression: .gzip)
            for record in try TFRecordReader.readAll(path: file) { try writer.write(record) }
            try writer.close()
            gzipped.append(path)
        }
        for (files, random) in [(files, true), (gzipped, false)] {
            func batches(_ replica: ReplicaShare?) throws -> (batches: [DataBatch], counts: RecordCounts) {
                let source = try ImageDataSource(files: files, options: try Self.source(workers: 2).options)
                let stream = try source.batches(BatchRequest(epoch: 2, batchSize: 50, training: true, seed: 3, replica: replica))
                var out: [DataBatch] = []
                while let batch = try stream.next() { out.append(batch) }
                return (out, source.counts)
            }
            let (whole, wholeCounts) = try batches(nil)
            XCTAssertGreaterThan(whole.count, 3)
            XCTAssertEqual(wholeCounts.decoded, whole.reduce(0) { $0 + $1.count })
            let ranks = try (0..<3).map { try batches(ReplicaShare(rank: $0, count: 3)) }
            for (b, want) in whole.enumerated() {
                var inputs: [Float] = [], labels: [Float] = []
                for (rank, (shares, _)) in ranks.enumerated() {
                    let share = shares[b]
                    XCTAssertEqual(share.share, BatchShare(offset: rank * want.count / 3, globalCount: want.count))
                    inputs += share.inputs.scalars
                    labels += share.labels.scalars
                }
                XCTAssertEqual(inputs, want.inputs.scalars, "batch \(b): the shares' pixels")
                XCTAssertEqual(labels, want.labels.scalars, "batch \(b): the shares' labels")
            }
            for (rank, (shares, counts)) in ranks.enumerated() {
                XCTAssertEqual(counts.decoded, shares.reduce(0) { $0 + $1.count }, "rank \(rank) decodes its share alone")
                XCTAssertEqual(counts.read, random ? counts.decoded : wholeCounts.read, "rank \(rank): records read")
            }
        }
    }
}
