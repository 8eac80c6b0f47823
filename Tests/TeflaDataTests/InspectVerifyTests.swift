import Foundation
import Learner
import TestSupport
import XCTest

/// `tefla-data inspect` and `tefla-data verify` on files written here.
final class InspectVerifyTests: XCTestCase {
    /// Writes `count` Examples with labels `i % 3` to `path`.
    func writeShard(_ path: String, count: Int, compression: TFRecordCompression = .none, first: Int = 0) throws {
        let writer = try TFRecordWriter(path: path, compression: compression)
        for i in first..<(first + count) {
            try writer.write(Example(["label": .int64s([Int64(i % 3)]), "x": .floats([1, 2, Float(i)])]).serialized())
        }
        try writer.close()
    }

    func testInspectCountsShardsFeaturesAndLabels() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        try writeShard(dir.appendingPathComponent("a.tfrecord").path, count: 4)
        try writeShard(dir.appendingPathComponent("b.tfrecord.gz").path, count: 3, compression: .gzip, first: 4)
        let result = try DataTool.run(["inspect", dir.path, "--label-key", "label"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("a.tfrecord: 4 records"), result.output)
        XCTAssertTrue(result.output.contains("compression gzip"), result.output)
        XCTAssertTrue(result.output.contains("total records: 7"), result.output)
        XCTAssertTrue(result.output.contains("  label: int64, 1 values, in 7 of 7 records"), result.output)
        XCTAssertTrue(result.output.contains("  x: float, 3 values, in 7 of 7 records"), result.output)
        XCTAssertTrue(result.output.contains("labels (label):\n  0: 3\n  1: 2\n  2: 2\n"), result.output)
    }

    func testInspectLibrarySummary() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("a.tfrecord").path
        try writeShard(path, count: 5, compression: .zlib)
        let summary = try DatasetInspector.inspect(files: [path], labelKey: "missing")
        XCTAssertEqual(summary.totalRecords, 5)
        XCTAssertEqual(summary.shards.first?.compression, .zlib)
        XCTAssertEqual(summary.features.map(\.key), ["label", "x"])
        XCTAssertEqual(summary.labelHistogram?.map(\.label), [DatasetInspector.missingLabel])
        XCTAssertEqual(summary.labelHistogram?.map(\.count), [5])
    }

    func testVerifyGoodFiles() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        try writeShard(dir.appendingPathComponent("a").path, count: 4)
        try writeShard(dir.appendingPathComponent("b").path, count: 2, compression: .gzip)
        let result = try DataTool.run(["verify", dir.path])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertEqual(result.output, "ok: 6 records in 2 files\n")
    }

    /// Flips a byte inside the payloads of records 1 and 3; stops at the first, or lists both with --all.
    func testVerifyNamesFileRecordAndOffset() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("bad.tfrecord").path
        try writeShard(path, count: 5)
        let records = try TFRecordReader.readAll(path: path)
        let recordSize = records[0].count + 16  // every record has the same size here
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[recordSize + 14] ^= 0xFF
        bytes[3 * recordSize + 14] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let first = try DataTool.run(["verify", path])
        XCTAssertEqual(first.status, 1)
        XCTAssertTrue(
            first.error.contains("data CRC mismatch at record 1 at byte offset \(recordSize) of \(path)"), first.error)
        XCTAssertFalse(first.error.contains("record 3"), first.error)

        let all = try DataTool.run(["verify", "--all", path])
        XCTAssertEqual(all.status, 1)
        XCTAssertTrue(all.error.contains("record 1 at byte offset \(recordSize) of"), all.error)
        XCTAssertTrue(all.error.contains("record 3 at byte offset \(3 * recordSize) of"), all.error)
        XCTAssertTrue(all.output.contains("FAILED: 2 bad, 3 good records"), all.output)
    }

    func testVerifyTruncatedFile() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("cut.tfrecord").path
        try writeShard(path, count: 3)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 5).write(to: URL(fileURLWithPath: path))
        let report = RecordVerifier.verify(files: [path], stopAtFirst: false)
        XCTAssertEqual(report.goodRecords, 2)
        guard case .truncatedRecord(let at, _, _)? = report.problems.first else {
            return XCTFail("\(report.problems)")
        }
        XCTAssertEqual(at.record, 2)
    }

    func testBenchReadRuns() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("a.tfrecord").path
        try writeShard(path, count: 10)
        let result = try DataTool.run(["bench-read", path, "--repeats", "1", "--json"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("\"records\": 10"), result.output)
    }
}
