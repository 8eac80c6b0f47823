import CLearner
import Foundation
import Learner
import TestSupport
import XCTest

/// Damaged shards through the image pipeline: each fault is an error naming its file, record and
/// offset by default, and one counted skip with `skipCorrupt`, the intact records still batched.
final class CorruptDataTests: XCTestCase {
    /// The 12 records of the pipeline fixture (16x16 RGB, label = record % 3).
    private let clean = try! TFRecordReader.readAll(path: ImagePipelineTests.shard)

    private struct Fault {
        var name: String
        /// The damaged shard's bytes; `extra` files (written too) come before it in name order.
        var bytes: [UInt8]
        var extra: [String: [UInt8]] = [:]
        /// The error's reason, and the record it names (nil: the file as a whole).
        var reason: String
        var record: Int?
        /// Records of the damaged shard that survive in skip mode.
        var kept: [Int]
    }

    /// TFRecord framing of `records` (see TFRecord.swift).
    private func shard(_ records: [[UInt8]]) -> [UInt8] {
        records.flatMap { record -> [UInt8] in
            var out: [UInt8] = []
            withUnsafeBytes(of: UInt64(record.count).littleEndian) { out += $0 }
            out += crc(out)
            out += record
            out += crc(record)
            return out
        }
    }

    private func crc(_ bytes: [UInt8]) -> [UInt8] {
        let masked = bytes.withUnsafeBytes { tl_masked_crc32c($0.baseAddress, $0.count) }
        return withUnsafeBytes(of: masked.littleEndian) { Array($0) }
    }

    /// Record 5 replaced by `payload`.
    private func replacing5(_ payload: [UInt8]) -> [UInt8] {
        var records = clean
        records[5] = payload
        return shard(records)
    }

    private func example5(_ edit: (inout Example) -> Void) throws -> [UInt8] {
        var example = try Example(serialized: clean[5])
        edit(&example)
        return replacing5(example.serialized())
    }

    private func faults() throws -> [Fault] {
        let whole = shard(clean)
        let offsets = DataTestFiles.recordOffsets(whole)
        let all = Array(0..<12)
        var flippedLength = whole
        flippedLength[offsets[5] + 2] ^= 0x40
        var flippedData = whole
        flippedData[offsets[5] + 12 + 20] ^= 0x01
        guard case .bytes(let blobs)? = try Example(serialized: clean[5])["image/encoded"] else {
            throw XCTSkip("fixture without image/encoded")
        }
        return [
            Fault(
                name: "truncated", bytes: Array(whole.dropLast(10)), reason: "truncated record", record: 11,
                kept: Array(0..<11)),
            Fault(
                name: "flipped length", bytes: flippedLength, reason: "corrupt length", record: 5, kept: Array(0..<5)),
            Fault(
                name: "flipped data", bytes: flippedData, reason: "corrupt data", record: 5,
                kept: all.filter { $0 != 5 }),
            Fault(
                name: "unparsable", bytes: replacing5([0x0A, 0xFF, 0x01]), reason: "unparsable Example", record: 5,
                kept: all.filter { $0 != 5 }),
            Fault(
                name: "missing key", bytes: try example5 { $0.features["image/encoded"] = nil },
                reason: "missing feature 'image/encoded'", record: 5, kept: all.filter { $0 != 5 }),
            Fault(
                name: "wrong type", bytes: try example5 { $0.features["label"] = .bytes([[1]]) },
                reason: "wrong kind of feature 'label'", record: 5, kept: all.filter { $0 != 5 }),
            Fault(
                name: "undecodable image",
                bytes: try example5 { $0.features["image/encoded"] = .bytes([Array(blobs[0].prefix(40))]) },
                reason: "undecodable image 'image/encoded'", record: 5, kept: all.filter { $0 != 5 }),
            Fault(
                name: "zero-length file", bytes: whole, extra: ["a-empty.tfrecord": []], reason: "empty file",
                record: nil, kept: all),
            Fault(
                name: "not a TFRecord", bytes: whole, extra: ["a-notes.txt": Array("label,image\n1,2\n".utf8)],
                reason: "corrupt length", record: 0, kept: all),
        ]
    }

    private func run(_ dir: URL, skip: Bool, workers: Int = 3) throws -> (batches: [ImageBatch], skipped: SkipReport) {
        var options = ImagePipelineOptions(batchSize: 5, height: 16, width: 16, workers: workers)
        options.skipCorrupt = skip
        let iterator = try ImagePipeline(source: dir.path, options: options).batches(epoch: 0)
        var batches: [ImageBatch] = []
        while let batch = try iterator.next() { batches.append(batch) }
        return (batches, iterator.skipped)
    }

    /// The records' images decoded one by one, as NCHW rows.
    private func rows(_ indices: [Int]) throws -> [Float] {
        try indices.flatMap { i -> [Float] in
            guard case .bytes(let blobs)? = try Example(serialized: clean[i])["image/encoded"] else { return [] }
            let image = try ImageDecoder.decode(blobs[0])
            var row = [Float](repeating: 0, count: image.pixels.count)
            row.withUnsafeMutableBufferPointer { image.copyCHW(to: $0.baseAddress!) }
            return row
        }
    }

    func testEachFaultIsAnErrorByDefaultAndOneSkipWhenSkipping() throws {
        for fault in try faults() {
            let dir = try Scratch.directory("tefla-data", for: self)
            let damaged = dir.appendingPathComponent("b-shard.tfrecord").path
            try Data(fault.bytes).write(to: URL(fileURLWithPath: damaged))
            for (name, bytes) in fault.extra { try Data(bytes).write(to: dir.appendingPathComponent(name)) }
            let culprit = fault.extra.keys.first.map { dir.appendingPathComponent($0).path } ?? damaged

            XCTAssertThrowsError(try run(dir, skip: false), fault.name) { error in
                guard let error = error as? DataError else { return XCTFail("\(fault.name): \(error)") }
                XCTAssertEqual(error.reason, fault.reason, "\(fault.name): \(error)")
                XCTAssertEqual(error.file, culprit, fault.name)
                XCTAssertTrue(error.description.contains(culprit), "\(fault.name): \(error)")
                if let record = fault.record {
                    XCTAssertEqual(error.location?.record, record, "\(fault.name): \(error)")
                    XCTAssertTrue(error.description.contains("record \(record) at byte offset"), "\(error)")
                }
            }

            let (batches, skipped) = try run(dir, skip: true)
            XCTAssertEqual(skipped.count, 1, "\(fault.name): \(skipped)")
            XCTAssertEqual(skipped.byFile, [culprit: [fault.reason: 1]], fault.name)
            XCTAssertEqual(skipped.errors.first?.location?.record, fault.record, fault.name)
            XCTAssertEqual(
                batches.map(\.count),
                stride(from: 0, to: fault.kept.count, by: 5).map {
                    min(5, fault.kept.count - $0)
                }, fault.name)
            XCTAssertEqual(batches.flatMap(\.labels), fault.kept.map { Float($0 % 3) }, fault.name)
            XCTAssertEqual(batches.flatMap(\.inputs), try rows(fault.kept), fault.name)
            XCTAssertEqual(batches.map(\.index), Array(batches.indices), fault.name)
        }
    }

    /// Several damaged records across shards: every one counted by file and reason, the same
    /// batches for any number of workers, and a dropped last batch still drops only the remainder.
    func testSkipsAreCountedPerFileAndDeterministic() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        var records = clean
        records[2] = [0x0A, 0xFF]
        records[8] = [0x0A, 0xFF]
        try Data(shard(records)).write(to: dir.appendingPathComponent("a.tfrecord"))
        try Data(Array(shard(clean).dropLast(3))).write(to: dir.appendingPathComponent("b.tfrecord"))
        let one = try run(dir, skip: true, workers: 1)
        let three = try run(dir, skip: true, workers: 3)
        XCTAssertEqual(one.batches, three.batches)
        XCTAssertEqual(one.skipped, three.skipped)
        let a = dir.appendingPathComponent("a.tfrecord").path
        let b = dir.appendingPathComponent("b.tfrecord").path
        XCTAssertEqual(one.skipped.byFile, [a: ["unparsable Example": 2], b: ["truncated record": 1]])
        XCTAssertEqual(one.skipped.description, "3 skipped: \(a): 2 unparsable Example; \(b): 1 truncated record")
        XCTAssertEqual(one.batches.map(\.count), [5, 5, 5, 5, 1])  // 10 + 11 intact records

        var options = ImagePipelineOptions(batchSize: 5, height: 16, width: 16, lastBatch: .drop)
        options.skipCorrupt = true
        let iterator = try ImagePipeline(source: dir.path, options: options).batches(epoch: 0)
        var counts: [Int] = []
        while let batch = try iterator.next() { counts.append(batch.count) }
        XCTAssertEqual(counts, [5, 5, 5, 5])
        XCTAssertEqual(iterator.skipped.count, 3)
    }
}
