import Foundation
import Learner
import TestSupport
import XCTest

/// `tefla-data index` and the readers' use of the index files it writes.
final class IndexTests: XCTestCase {
    /// DALI's `tfrecord2idx`, written again from its description: for each record, the offset
    /// where it starts and the bytes up to the next (length, its CRC, data, data CRC).
    static let daliIndex = """
        import struct, sys
        with open(sys.argv[1], "rb") as f, open(sys.argv[2], "w") as out:
            while True:
                current = f.tell()
                head = f.read(8)
                if len(head) == 0:
                    break
                f.read(4)
                (length,) = struct.unpack("<q", head)
                f.read(length)
                f.read(4)
                out.write(str(current) + " " + str(f.tell() - current) + "\\n")
        """

    private func writeShard(_ path: String, sizes: [Int]) throws {
        let writer = try TFRecordWriter(path: path)
        for (i, n) in sizes.enumerated() {
            try writer.write(Example(["label": .int64s([Int64(i)]), "x": .floats([Float](repeating: 1, count: n))]).serialized())
        }
        try writer.close()
    }

    func testIndexFilesAreByteIdenticalToDALIs() throws {
        let python = try PeerPython.interpreter(with: ["struct"])
        let dir = try Scratch.directory("tefla-index", for: self)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shards = [
            root.appendingPathComponent("Data/digits/train/digits-train-00000-of-00002.tfrecord"),
            root.appendingPathComponent("Data/digits-png/val/digits-png-val-00000-of-00001.tfrecord"),
            root.appendingPathComponent("Tests/LearnerTests/Fixtures/tf_examples.tfrecord"),
        ]
        for shard in shards {
            try FileManager.default.copyItem(at: shard, to: dir.appendingPathComponent(shard.lastPathComponent))
        }
        try writeShard(dir.appendingPathComponent("empty.tfrecord").path, sizes: [])
        let result = try DataTool.run(["index", dir.path])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("index: 4 index files written, \(719 + 360 + 20) records"), result.output)
        let script = dir.appendingPathComponent("tfrecord2idx.py")
        try Self.daliIndex.write(to: script, atomically: true, encoding: .utf8)
        for name in shards.map(\.lastPathComponent) + ["empty.tfrecord"] {
            let shard = dir.appendingPathComponent(name).path
            let reference = try PeerPython.run(python, [script.path, shard, shard + ".dali"])
            XCTAssertEqual(reference.status, 0, reference.output)
            let ours = try Data(contentsOf: URL(fileURLWithPath: shard + ".idx"))
            XCTAssertEqual(ours, try Data(contentsOf: URL(fileURLWithPath: shard + ".dali")), name)
        }
        XCTAssertEqual(try RecordIndex.stored(for: dir.appendingPathComponent(shards[0].lastPathComponent).path)?.count, 719)
        // The indexes beside the shards are no shards themselves.
        XCTAssertFalse(try Shards.list(in: dir.path).contains { $0.hasSuffix(".idx") })
        XCTAssertFalse(try Shards.glob(dir.path + "/*").contains { $0.hasSuffix(".idx") })
    }

    /// An index is what the record count reads (one that merges two frames into one counts one
    /// record), and one that no longer fits its shard is an error naming both, never trusted.
    func testReadersCountFromTheIndexAndRefuseAStaleOne() throws {
        let dir = try Scratch.directory("tefla-index", for: self)
        let shard = dir.appendingPathComponent("a.tfrecord").path
        try writeShard(shard, sizes: [3, 5])
        let index = try RecordIndex.build(shard: shard)
        XCTAssertEqual(index.count, 2)
        let frames = index.entries.map(\.size)
        XCTAssertEqual(index.entries.map(\.offset), [0, frames[0]])
        let options = ImagePipelineOptions(batchSize: 1, height: 1, width: 1)
        XCTAssertEqual(try ImageDataSource(files: [shard], options: options).sampleCount, 2, "no index: the headers are walked")
        try RecordIndex(entries: [.init(offset: 0, size: frames[0] + frames[1])]).write(beside: shard)
        XCTAssertEqual(try ImageDataSource(files: [shard], options: options).sampleCount, 1, "the count comes from the index")

        try writeShard(shard, sizes: [3, 5, 7])  // rewritten: the index is stale
        XCTAssertThrowsError(try ImageDataSource(files: [shard], options: options)) { error in
            let text = "\(error)"
            for part in ["a.tfrecord.idx", "end at byte", "a.tfrecord' as it is now", "tefla-data index"] {
                XCTAssertTrue(text.contains(part), "\(part): \(text)")
            }
        }
        try "0 16\nnonsense\n".write(toFile: RecordIndex.path(for: shard), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RecordIndex.stored(for: shard)) { XCTAssertTrue("\($0)".contains("line 2 is not 'offset size'"), "\($0)") }
    }

    func testCompressedAndDamagedShardsAreNamedAndTheRestIndexed() throws {
        let dir = try Scratch.directory("tefla-index", for: self)
        try writeShard(dir.appendingPathComponent("a.tfrecord").path, sizes: [2, 2])
        let writer = try TFRecordWriter(path: dir.appendingPathComponent("b.tfrecord.gz").path, compression: .gzip)
        try writer.write([1, 2, 3])
        try writer.close()
        let cut = dir.appendingPathComponent("c.tfrecord").path
        try writeShard(cut, sizes: [4])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: cut))
        try bytes.prefix(bytes.count - 3).write(to: URL(fileURLWithPath: cut))
        let result = try DataTool.run(["index", dir.path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("b.tfrecord.gz") && result.error.contains("GZIP/ZLIB-compressed"), result.error)
        XCTAssertTrue(
            result.error.contains("truncated TFRecord: record 0 at byte offset 0 of") && result.error.contains("c.tfrecord"), result.error)
        XCTAssertTrue(result.output.contains("index: 1 index file written, 2 records; 2 shard(s) not indexed"), result.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a.tfrecord.idx").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("c.tfrecord.idx").path))
    }
}
