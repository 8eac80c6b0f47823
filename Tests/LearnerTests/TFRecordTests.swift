import CLearner
import Foundation
import Learner
import TestSupport
import XCTest

final class TFRecordTests: XCTestCase {
    /// Reads TensorFlow's own shard and compares every feature of every record with the JSON.
    func testReadsShardWrittenByTensorFlow() throws {
        let expected = try DataTestFiles.expectedTFExamples()
        let reader = try TFRecordReader(path: DataTestFiles.tfShard)
        var index = 0
        while let record = try reader.next() {
            XCTAssertLessThan(index, expected.count)
            let example = try Example(serialized: record)
            XCTAssertEqual(example, expected[index], "record \(index)")
            // -0.0 == 0.0 as Floats: check the sign survived too.
            if case .floats(let score)? = example["score"] { XCTAssertEqual(score[1].sign, .minus) }
            index += 1
        }
        XCTAssertEqual(index, 20)
        XCTAssertEqual(expected.count, 20)
        XCTAssertEqual(reader.recordIndex, 20)
        XCTAssertEqual(
            try TFRecordReader.readAll(path: DataTestFiles.tfShard).last, [], "an empty Example is an empty record")
    }

    /// Our writer frames records exactly as TensorFlow's does.
    func testWriterReproducesTensorFlowBytes() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("copy.tfrecord").path
        let writer = try TFRecordWriter(path: path)
        for record in try TFRecordReader.readAll(path: DataTestFiles.tfShard) { try writer.write(record) }
        try writer.close()
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: path)),
            try Data(contentsOf: URL(fileURLWithPath: DataTestFiles.tfShard)))
    }

    func testWriterReaderRoundTripAcrossBufferBoundaries() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("round.tfrecord").path
        // Sizes around and far beyond the tiny buffers below exercise compaction and growth.
        let records: [[UInt8]] = [0, 1, 50, 51, 52, 100, 1000, 0, 70_000, 3].enumerated().map { i, n in
            (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
        }
        let writer = try TFRecordWriter(path: path, bufferSize: 100)
        for record in records { try writer.write(record) }
        try writer.close()
        XCTAssertThrowsError(try writer.write([1]), "a closed writer refuses records")

        let reader = try TFRecordReader(path: path, bufferSize: 64)
        var read: [[UInt8]] = []
        var offsets: [Int] = []
        try reader.forEachRecord { bytes, location in
            read.append([UInt8](bytes))
            offsets.append(location.offset)
            XCTAssertEqual(location.record, read.count - 1)
            XCTAssertEqual(location.file, path)
        }
        XCTAssertEqual(read, records)
        XCTAssertEqual(offsets, DataTestFiles.recordOffsets([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))))
        XCTAssertNil(try reader.next(), "stays at the end")
    }

    func testFlippedDataByteNamesFileRecordAndOffset() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: DataTestFiles.tfShard)))
        let offsets = DataTestFiles.recordOffsets(bytes)
        bytes[offsets[3] + 12 + 5] ^= 0x01
        let path = try DataTestFiles.write(bytes, to: "bad-data.tfrecord", in: Scratch.directory("tefla-data", for: self))

        let reader = try TFRecordReader(path: path)
        for _ in 0..<3 { XCTAssertNotNil(try reader.next()) }
        XCTAssertThrowsError(try reader.next()) { error in
            guard case .corruptData(let at)? = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertEqual(at, RecordLocation(file: path, record: 3, offset: offsets[3]))
            let message = "\(error)"
            XCTAssertTrue(message.contains(path), message)
            XCTAssertTrue(message.contains("record 3"), message)
            XCTAssertTrue(message.contains("byte offset \(offsets[3])"), message)
            XCTAssertTrue(message.contains("data CRC"), message)
        }
    }

    func testFlippedLengthByteIsALengthCRCError() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: DataTestFiles.tfShard)))
        let offsets = DataTestFiles.recordOffsets(bytes)
        bytes[offsets[5] + 1] ^= 0x40
        let path = try DataTestFiles.write(bytes, to: "bad-length.tfrecord", in: Scratch.directory("tefla-data", for: self))

        XCTAssertThrowsError(try TFRecordReader.readAll(path: path)) { error in
            XCTAssertEqual(
                error as? DataError, .corruptLength(RecordLocation(file: path, record: 5, offset: offsets[5])))
            XCTAssertTrue("\(error)".contains("length CRC"), "\(error)")
        }
    }

    func testTruncatedFileIsATruncationError() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: DataTestFiles.tfShard)))
        let offsets = DataTestFiles.recordOffsets(bytes)
        let dir = try Scratch.directory("tefla-data", for: self)

        // Cut inside the payload of the second-to-last record (the last one is empty).
        let cut = try DataTestFiles.write(Array(bytes[..<(offsets[18] + 20)]), to: "cut-data.tfrecord", in: dir)
        XCTAssertThrowsError(try TFRecordReader.readAll(path: cut)) { error in
            guard case .truncatedRecord(let at, let needed, let available)? = error as? DataError else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual(at, RecordLocation(file: cut, record: 18, offset: offsets[18]))
            XCTAssertEqual(available, 20)
            XCTAssertEqual(needed, offsets[19] - offsets[18])
            XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
        }

        // Cut inside a length header.
        let cutHeader = try DataTestFiles.write(Array(bytes[..<(offsets[2] + 7)]), to: "cut-header.tfrecord", in: dir)
        XCTAssertThrowsError(try TFRecordReader.readAll(path: cutHeader)) { error in
            XCTAssertEqual(
                error as? DataError,
                .truncatedRecord(
                    RecordLocation(file: cutHeader, record: 2, offset: offsets[2]), needed: 12, available: 7))
        }
    }

    /// CRC32C catches every single-byte error, so a flipped byte anywhere must fail the read
    /// (every 5th position, and every byte of the first record's framing, to keep the test fast).
    func testFlippedBytesAnywhereAreDetected() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: DataTestFiles.tfShard)))
        let dir = try Scratch.directory("tefla-data", for: self)
        for position in Set(Array(0..<16) + Array(stride(from: 0, to: bytes.count, by: 5))).sorted() {
            var damaged = bytes
            damaged[position] ^= 0x5A
            let path = try DataTestFiles.write(damaged, to: "flip.tfrecord", in: dir)
            XCTAssertThrowsError(try TFRecordReader.readAll(path: path), "flip at byte \(position)")
        }
    }

    /// A length with a valid CRC but beyond the end of the file is reported, not allocated.
    func testHugeLengthIsTruncationNotAllocation() throws {
        let length = withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Array($0) }
        let crc = withUnsafeBytes(of: tl_masked_crc32c(length, 8).littleEndian) { Array($0) }
        let path = try DataTestFiles.write(
            length + crc + [1, 2, 3], to: "huge.tfrecord", in: Scratch.directory("tefla-data", for: self))
        XCTAssertThrowsError(try TFRecordReader.readAll(path: path)) { error in
            XCTAssertEqual(
                error as? DataError,
                .truncatedRecord(
                    RecordLocation(file: path, record: 0, offset: 0), needed: (1 << 40) + 16, available: 15))
        }
    }

    /// A GZIP file opened explicitly as uncompressed is named as compressed, not as corrupt.
    func testGzipFileOpenedAsUncompressedIsNamedAsCompressed() throws {
        let gzipHeader: [UInt8] = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04]
        let path = try DataTestFiles.write(gzipHeader, to: "x.tfrecord.gz", in: Scratch.directory("tefla-data", for: self))
        XCTAssertThrowsError(try TFRecordReader(path: path, compression: TFRecordCompression.none).next()) { error in
            XCTAssertEqual(error as? DataError, .compressedFile(path: path))
        }
    }

    func testMissingFileIsAnIOErrorNamingIt() throws {
        let path = "/nonexistent/tefla/shard.tfrecord"
        XCTAssertThrowsError(try TFRecordReader(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }
}
