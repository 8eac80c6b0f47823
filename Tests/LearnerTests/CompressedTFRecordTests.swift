import CLearner
import Foundation
import Learner
import TestSupport
import XCTest

/// GZIP/ZLIB TFRecords: TensorFlow's compressed files read record for record, our compressed
/// writer's output checked against independent decompressors, and errors that name the place.
final class CompressedTFRecordTests: XCTestCase {
    static let gzipShard = DataTestFiles.fixtures.appendingPathComponent("tf_examples.tfrecord.gz").path
    static let zlibShard = DataTestFiles.fixtures.appendingPathComponent("tf_examples.zlib").path

    private func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// TensorFlow's GZIP and ZLIB files, detected and given explicitly, hold the same records
    /// as its uncompressed one.
    func testReadsTensorFlowCompressedShards() throws {
        let expected = try DataTestFiles.expectedTFExamples()
        let plain = try TFRecordReader.readAll(path: DataTestFiles.tfShard)
        for (path, kind) in [(Self.gzipShard, TFRecordCompression.gzip), (Self.zlibShard, .zlib)] {
            for given in [nil, kind] {
                let reader = try TFRecordReader(path: path, compression: given, bufferSize: 64)
                XCTAssertEqual(reader.compression, kind)
                var records: [[UInt8]] = []
                var offsets: [Int] = []
                try reader.forEachRecord { bytes, location in
                    records.append([UInt8](bytes))
                    offsets.append(location.offset)
                    XCTAssertTrue(location.compressed)
                }
                XCTAssertEqual(records, plain, path)
                XCTAssertEqual(try records.map { try Example(serialized: $0) }, expected)
                XCTAssertEqual(
                    offsets, DataTestFiles.recordOffsets(try bytes(DataTestFiles.tfShard)), "uncompressed offsets")
            }
        }
    }

    func testDetection() throws {
        XCTAssertEqual(try TFRecordReader(path: DataTestFiles.tfShard).compression, TFRecordCompression.none)
        // Detection trusts the bytes over the name: an uncompressed shard named .gz is read as is.
        let dir = try Scratch.directory("tefla-data", for: self)
        let misnamed = try DataTestFiles.write(try bytes(DataTestFiles.tfShard), to: "plain.gz", in: dir)
        XCTAssertEqual(try TFRecordReader.readAll(path: misnamed).count, 20)
        XCTAssertEqual(TFRecordCompression.detect(head: [], path: "a.tfrecord.gz"), .gzip)
        XCTAssertEqual(TFRecordCompression.detect(head: [], path: "a.zlib"), .zlib)
        XCTAssertEqual(TFRecordCompression.detect(head: [], path: "a.tfrecord"), TFRecordCompression.none)
    }

    /// Our GZIP output is a GZIP file as `gzip -dc` reads it, and its content is exactly the
    /// uncompressed framing (which matches TensorFlow's byte for byte, see TFRecordTests).
    func testGzipWriterOutputDecompressesWithGzip() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("ours.tfrecord.gz").path
        let writer = try TFRecordWriter(path: path, compression: .gzip, bufferSize: 100)
        for record in try TFRecordReader.readAll(path: DataTestFiles.tfShard) { try writer.write(record) }
        try writer.close()
        XCTAssertEqual(Array(try bytes(path).prefix(2)), [0x1f, 0x8b])

        let gzip = try Subprocess.run(URL(fileURLWithPath: "/bin/gzip"), ["-dc", path])
        XCTAssertEqual(gzip.status, 0)
        XCTAssertEqual([UInt8](gzip.outputData), try bytes(DataTestFiles.tfShard))
    }

    /// Our ZLIB output inflates with zlib's one-shot `uncompress` to the uncompressed framing.
    func testZlibWriterOutputDecompressesWithZlib() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("ours.zlib").path
        let writer = try TFRecordWriter(path: path, compression: .zlib, level: 9)
        for record in try TFRecordReader.readAll(path: DataTestFiles.tfShard) { try writer.write(record) }
        try writer.close()
        let compressed = try bytes(path)
        let plain = try bytes(DataTestFiles.tfShard)
        var out = [UInt8](repeating: 0, count: plain.count + 64)
        let n = tl_zlib_uncompress(compressed, compressed.count, &out, out.count)
        XCTAssertEqual(Array(out.prefix(max(n, 0))), plain)
    }

    /// Empty shards: a zero-byte file named .gz, and compressed streams holding no record.
    func testEmptyShards() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let empty = try DataTestFiles.write([], to: "empty.tfrecord.gz", in: dir)
        XCTAssertEqual(try TFRecordReader.readAll(path: empty), [])
        for kind in [TFRecordCompression.gzip, .zlib] {
            let path = dir.appendingPathComponent("none.\(kind.rawValue)").path
            try TFRecordWriter(path: path, compression: kind).close()
            XCTAssertEqual(try TFRecordReader(path: path).compression, kind)
            XCTAssertEqual(try TFRecordReader.readAll(path: path), [])
        }
    }

    /// The in-memory loader reads compressed shards through the same detection.
    func testInMemoryDatasetLoadsGzipShards() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        var paths: [String] = []
        for kind in [TFRecordCompression.none, .gzip] {
            let path = dir.appendingPathComponent("d.\(kind.rawValue)").path
            let writer = try TFRecordWriter(path: path, compression: kind)
            for i in 0..<7 {
                try writer.write(
                    Example(["image": .floats([Float(i), 0.5, -1]), "label": .int64s([Int64(i % 2)])]).serialized())
            }
            try writer.close()
            paths.append(path)
        }
        let plain = try InMemoryDataset.load(files: [paths[0]])
        let gzip = try InMemoryDataset.load(files: [paths[1]])
        XCTAssertEqual(gzip.inputs, plain.inputs)
        XCTAssertEqual(gzip.labels, plain.labels)
        XCTAssertEqual(gzip.count, 7)
    }

    /// Large records spanning many inflate chunks and buffer growths round-trip in both modes.
    func testLargeRecordsRoundTrip() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let records: [[UInt8]] = [0, 5, 300_000, 1, 1_000_000, 17].enumerated().map { i, n in
            (0..<n).map { UInt8(truncatingIfNeeded: ($0 &* 7) ^ ($0 >> 9) &+ i) }
        }
        for kind in [TFRecordCompression.gzip, .zlib] {
            let path = dir.appendingPathComponent("big.\(kind.rawValue)").path
            let writer = try TFRecordWriter(path: path, compression: kind, bufferSize: 4096)
            for record in records { try writer.write(record) }
            try writer.close()
            let reader = try TFRecordReader(path: path, bufferSize: 64)
            XCTAssertEqual(reader.compression, kind)
            var read: [[UInt8]] = []
            while let record = try reader.next() { read.append(record) }
            XCTAssertEqual(read, records)
        }
    }

    /// A cut GZIP file fails with a decompression or truncation error naming the file and the
    /// record, its offset counted in the uncompressed stream.
    func testTruncatedGzipNamesFileRecordAndUncompressedOffset() throws {
        let whole = try bytes(Self.gzipShard)
        let path = try DataTestFiles.write(
            Array(whole.prefix(whole.count / 2)), to: "cut.tfrecord.gz", in: Scratch.directory("tefla-data", for: self))
        let offsets = DataTestFiles.recordOffsets(try bytes(DataTestFiles.tfShard))
        XCTAssertThrowsError(try TFRecordReader.readAll(path: path)) { error in
            guard let location = (error as? DataError)?.location else { return XCTFail("got \(error)") }
            XCTAssertEqual(location.file, path)
            XCTAssertTrue(location.compressed)
            XCTAssertEqual(location.offset, offsets[location.record])
            let message = "\(error)"
            XCTAssertTrue(message.contains("uncompressed stream of \(path)"), message)
            XCTAssertTrue(message.contains("record \(location.record)"), message)
        }
    }

    /// Damaged deflate data is a decompression error, never a crash or a silent short read.
    func testCorruptZlibIsADecompressionError() throws {
        var damaged = try bytes(Self.zlibShard)
        for i in stride(from: 10, to: damaged.count - 8, by: 7) { damaged[i] ^= 0xA5 }
        let path = try DataTestFiles.write(damaged, to: "bad.zlib", in: Scratch.directory("tefla-data", for: self))
        XCTAssertThrowsError(try TFRecordReader.readAll(path: path)) { error in
            guard let dataError = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertEqual(dataError.location?.file, path)
        }
    }
}
