import Foundation
import Learner
import TestSupport
import XCTest

/// The shard-to-batch image pipeline over the 12-image fixture shard (Scripts/fixtures/make_image_fixtures.py:
/// 16x16 RGB, JPEG at even and PNG at odd records, label = record % 3).
final class ImagePipelineTests: XCTestCase {
    static let shard = DataTestFiles.fixtures.appendingPathComponent("images/images.tfrecord").path

    private func drain(_ pipeline: ImagePipeline, epoch: Int = 0) throws -> [ImageBatch] {
        let batches = pipeline.batches(epoch: epoch)
        var out: [ImageBatch] = []
        while let batch = try batches.next() { out.append(batch) }
        return out
    }

    /// The fixture's images decoded one by one, as NCHW rows.
    private func referenceRows() throws -> [[Float]] {
        try TFRecordReader.readAll(path: Self.shard).map { record in
            guard case .bytes(let blobs)? = try Example(serialized: record)["image/encoded"] else { return [] }
            let image = try ImageDecoder.decode(blobs[0])
            var row = [Float](repeating: 0, count: image.pixels.count)
            row.withUnsafeMutableBufferPointer { image.copyCHW(to: $0.baseAddress!) }
            return row
        }
    }

    /// Splits the fixture into two shards, the second GZIP-compressed, in a scratch directory.
    private func twoShards() throws -> URL {
        let dir = try Scratch.directory("tefla-data", for: self)
        let records = try TFRecordReader.readAll(path: Self.shard)
        for (name, range, compression) in [
            ("a.tfrecord", 0..<5, TFRecordCompression.none), ("b.tfrecord.gz", 5..<12, .gzip),
        ] {
            let writer = try TFRecordWriter(path: dir.appendingPathComponent(name).path, compression: compression)
            for record in records[range] { try writer.write(record) }
            try writer.close()
        }
        return dir
    }

    func testUnshuffledBatchesFollowTheFileInNCHW() throws {
        let pipeline = ImagePipeline(
            files: [Self.shard], options: ImagePipelineOptions(batchSize: 5, height: 16, width: 16))
        let batches = try drain(pipeline)
        XCTAssertEqual(batches.map(\.shape), [[5, 3, 16, 16], [5, 3, 16, 16], [2, 3, 16, 16]])
        XCTAssertEqual(batches.map(\.index), [0, 1, 2])
        XCTAssertEqual(batches.flatMap(\.labels), (0..<12).map { Float($0 % 3) })
        XCTAssertEqual(batches.flatMap(\.inputs), try referenceRows().flatMap { $0 })

        let dropped = ImagePipeline(
            files: [Self.shard], options: ImagePipelineOptions(batchSize: 5, height: 8, width: 8, lastBatch: .drop))
        XCTAssertEqual(try drain(dropped).map(\.shape), [[5, 3, 8, 8], [5, 3, 8, 8]])
        let grey = ImagePipeline(
            files: [Self.shard], options: ImagePipelineOptions(batchSize: 12, height: 4, width: 6, channels: 1))
        XCTAssertEqual(try drain(grey).map(\.shape), [[12, 1, 4, 6]])
    }

    /// A seeded shuffle across shards is a permutation, the same for the same (seed, epoch) and
    /// different for another epoch.
    func testShuffleIsAnEpochKeyedPermutationAcrossShards() throws {
        let dir = try twoShards()
        let options = ImagePipelineOptions(
            batchSize: 4, height: 16, width: 16, shuffle: true, seed: 9, shuffleBufferSize: 4)
        let pipeline = try ImagePipeline(source: dir.path, options: options)
        XCTAssertEqual(pipeline.files.count, 2)
        let rows = try referenceRows()
        func order(_ epoch: Int) throws -> [Int] {
            let inputs = try drain(pipeline, epoch: epoch).flatMap(\.inputs)
            return stride(from: 0, to: inputs.count, by: 768).map { start in
                rows.firstIndex(of: Array(inputs[start..<start + 768])) ?? -1
            }
        }
        let first = try order(0)
        XCTAssertEqual(first.sorted(), Array(0..<12))
        XCTAssertNotEqual(first, Array(0..<12))
        XCTAssertEqual(try order(0), first)
        XCTAssertNotEqual(try order(1), first)
        let globbed = try ImagePipeline(source: dir.appendingPathComponent("*.tfrecord*").path, options: options)
        XCTAssertEqual(globbed.files, pipeline.files)
    }

    /// Workers 1 and 3 give identical batches, augmentation and shuffling included.
    func testSameBatchesForAnyNumberOfWorkers() throws {
        let dir = try twoShards()
        let augment = Compose([
            RandomResizedCrop(height: 12, width: 12, scale: 0.5...1), RandomHorizontalFlip(),
            RandomRotation(degrees: 10),
            ColorJitter(brightness: 0.3, contrast: 0.3, saturation: 0.3),
            Normalize(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]),
        ])
        func run(workers: Int, queue: Int) throws -> [ImageBatch] {
            let options = ImagePipelineOptions(
                batchSize: 5, height: 12, width: 12, shuffle: true, seed: 3, shuffleBufferSize: 6, workers: workers,
                maxQueueSize: queue, transform: augment)
            return try drain(try ImagePipeline(source: dir.path, options: options), epoch: 2)
        }
        let one = try run(workers: 1, queue: 1)
        XCTAssertEqual(one.count, 3)
        XCTAssertEqual(try run(workers: 3, queue: 2), one)
        XCTAssertEqual(try run(workers: 2, queue: 8), one)
    }

    func testUndecodableImageNamesFileAndRecord() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("bad.tfrecord").path
        let writer = try TFRecordWriter(path: path)
        for record in try TFRecordReader.readAll(path: Self.shard).prefix(3) { try writer.write(record) }
        try writer.write(Example(["image/encoded": .bytes([[1, 2, 3]]), "label": .int64s([1])]).serialized())
        try writer.close()
        let offsets = DataTestFiles.recordOffsets([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        for workers in [1, 3] {
            let pipeline = ImagePipeline(
                files: [path], options: ImagePipelineOptions(batchSize: 4, height: 8, width: 8, workers: workers))
            XCTAssertThrowsError(try drain(pipeline)) { error in
                guard case .undecodableImage(let key, _, let at)? = error as? DataError else {
                    return XCTFail("got \(error)")
                }
                XCTAssertEqual(key, "image/encoded")
                XCTAssertEqual(at, RecordLocation(file: path, record: 3, offset: offsets[3]))
                XCTAssertTrue("\(error)".contains("record 3"), "\(error)")
            }
        }
        let missing = ImagePipeline(
            files: [Self.shard],
            options: ImagePipelineOptions(batchSize: 4, height: 8, width: 8, keys: FeatureKeys(input: "jpeg")))
        XCTAssertThrowsError(try drain(missing)) { error in
            guard case .missingFeature("jpeg", _, let at)? = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertEqual(at?.record, 0)
        }
    }

    /// Dropping an iterator mid-epoch stops its producer instead of blocking it forever.
    func testAbandonedEpochDoesNotHang() throws {
        let pipeline = ImagePipeline(
            files: [Self.shard], options: ImagePipelineOptions(batchSize: 1, height: 8, width: 8, maxQueueSize: 1))
        for _ in 0..<5 {
            let batches = pipeline.batches(epoch: 0)
            XCTAssertNotNil(try batches.next())
        }
        XCTAssertEqual(try drain(pipeline).count, 12)
    }
}
