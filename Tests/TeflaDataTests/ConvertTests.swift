import Foundation
import Learner
import TestSupport
import XCTest

/// `tefla-data convert`: image folders and CSV files to TFRecords, read back with our reader.
final class ConvertTests: XCTestCase {
    func readExamples(_ dir: URL) throws -> [Example] {
        try Shards.list(in: dir.path).flatMap { try TFRecordReader.readAll(path: $0) }.map {
            try Example(serialized: $0)
        }
    }

    func testImageFolderToGzipShards() throws {
        let out = try Scratch.directory("tefla-data", for: self).appendingPathComponent("train")
        let result = try DataTool.run([
            "convert", "images", DataTool.fixtures.appendingPathComponent("images").path, out.path,
            "--shards", "2", "--compression", "gzip",
        ])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("0: cat (3 images)"), result.output)
        XCTAssertTrue(result.output.contains("1: dog (2 images)"), result.output)
        let shards = try Shards.list(in: out.path)
        XCTAssertEqual(
            shards.map { URL(fileURLWithPath: $0).lastPathComponent },
            ["train-00000-of-00002.tfrecord.gz", "train-00001-of-00002.tfrecord.gz"])
        XCTAssertEqual(try TFRecordReader(path: shards[0]).compression, .gzip)

        let examples = try readExamples(out)
        XCTAssertEqual(examples.count, 5)
        var byName: [String: Example] = [:]
        for example in examples {
            guard case .bytes(let name)? = example["image/filename"] else { return XCTFail("no filename") }
            byName[String(decoding: name[0], as: UTF8.self)] = example
        }
        let expected: [String: (label: Int64, text: String, height: Int64, width: Int64, format: String)] = [
            "c0.png": (0, "cat", 3, 4, "PNG"), "c1.png": (0, "cat", 4, 5, "PNG"), "c2.png": (0, "cat", 3, 3, "PNG"),
            "d0.png": (1, "dog", 2, 6, "PNG"), "d1.jpg": (1, "dog", 8, 8, "JPEG"),
        ]
        XCTAssertEqual(Set(byName.keys), Set(expected.keys))
        for (name, want) in expected {
            guard let example = byName[name] else { continue }
            XCTAssertEqual(example["image/class/label"], .int64s([want.label]), name)
            XCTAssertEqual(example["image/class/text"], .bytes([Array(want.text.utf8)]), name)
            XCTAssertEqual(example["image/height"], .int64s([want.height]), name)
            XCTAssertEqual(example["image/width"], .int64s([want.width]), name)
            XCTAssertEqual(example["image/format"], .bytes([Array(want.format.utf8)]), name)
            let file = DataTool.fixtures.appendingPathComponent("images/\(want.text)/\(name)")
            XCTAssertEqual(example["image/encoded"], .bytes([[UInt8](try Data(contentsOf: file))]), name)
        }
    }

    func testCSVToFloatFeatures() throws {
        let out = try Scratch.directory("tefla-data", for: self).appendingPathComponent("table")
        let result = try DataTool.run([
            "convert", "csv", DataTool.fixtures.appendingPathComponent("table.csv").path, out.path, "--compression",
            "zlib",
        ])
        XCTAssertEqual(result.status, 0, result.error)
        let examples = try readExamples(out)
        XCTAssertEqual(examples.count, 4)
        XCTAssertEqual(
            examples[0].features,
            ["label": .int64s([1]), "x1": .floats([0.5]), "x2": .floats([2]), "x3": .floats([-1.5])])
        XCTAssertEqual(
            examples[2].features,
            ["label": .int64s([2]), "x1": .floats([-2]), "x2": .floats([1e-3]), "x3": .floats([4])])
    }

    func testCSVFeaturesKeyFeedsInMemoryDataset() throws {
        let out = try Scratch.directory("tefla-data", for: self).appendingPathComponent("table")
        let result = try DataTool.run([
            "convert", "csv", DataTool.fixtures.appendingPathComponent("table.csv").path, out.path,
            "--features-key", "features", "--shards", "3",
        ])
        XCTAssertEqual(result.status, 0, result.error)
        // Round-robin sharding: records 0 and 3 in shard 0, 1 in shard 1, 2 in shard 2.
        let data = try InMemoryDataset.load(directory: out.path, keys: FeatureKeys(input: "features", label: "label"))
        XCTAssertEqual(data.featureSize, 3)
        XCTAssertEqual(data.labels, [1, 1, 0, 2])
        XCTAssertEqual(Array(data.inputs[0..<3]), [0.5, 2, -1.5])
        XCTAssertEqual(Array(data.inputs[3..<6]), [3.75, 0.25, 8.5])
    }

    func testBadCSVNamesFileAndLine() throws {
        let out = try Scratch.directory("tefla-data", for: self).appendingPathComponent("bad")
        let csv = DataTool.fixtures.appendingPathComponent("bad.csv").path
        let result = try DataTool.run(["convert", "csv", csv, out.path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("\(csv):3: column 'x2' holds 'oops', not a number"), result.error)

        let noLabel = try DataTool.run(["convert", "csv", csv, out.path, "--label-column", "y"])
        XCTAssertEqual(noLabel.status, 1)
        XCTAssertTrue(noLabel.error.contains("\(csv):1: no label column 'y'"), noLabel.error)
    }

    func testCSVRowWithWrongFieldCount() {
        XCTAssertThrowsError(try CSVExamples(text: "a,label\n1,2\n3\n", path: "t.csv")) { error in
            XCTAssertEqual("\(error)", "t.csv:3: 1 fields, the header has 2")
        }
    }

    func testMissingImageRootAndBadImage() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let missing = try DataTool.run(["convert", "images", dir.appendingPathComponent("nope").path, dir.path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.error.contains("holds no class folders"), missing.error)

        let classDir = dir.appendingPathComponent("root/a")
        try FileManager.default.createDirectory(at: classDir, withIntermediateDirectories: true)
        let bad = classDir.appendingPathComponent("broken.png")
        try Data("not a png".utf8).write(to: bad)
        let result = try DataTool.run([
            "convert", "images", dir.appendingPathComponent("root").path, dir.appendingPathComponent("out").path,
        ])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("cannot decode image '\(bad.path)'"), result.error)
    }

    /// TensorFlow reads what we wrote: `tf.data.TFRecordDataset` + `tf.io.parse_single_example`.
    func testTensorFlowReadsConvertedFiles() throws {
        let python = try PeerPython.interpreter(with: ["tensorflow"])
        let dir = try Scratch.directory("tefla-data", for: self)
        let images = dir.appendingPathComponent("images")
        let table = dir.appendingPathComponent("table")
        XCTAssertEqual(
            try DataTool.run([
                "convert", "images", DataTool.fixtures.appendingPathComponent("images").path, images.path,
                "--shards", "2", "--compression", "gzip", "--val-fraction", "0.4", "--resize", "3",
            ]).status, 0)
        XCTAssertEqual(
            try DataTool.run([
                "convert", "csv", DataTool.fixtures.appendingPathComponent("table.csv").path, table.path,
                "--compression", "zlib",
            ]).status, 0)
        let script = """
            import glob, os, sys
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
            import tensorflow as tf
            spec = {
                "image/encoded": tf.io.FixedLenFeature([], tf.string),
                "image/format": tf.io.FixedLenFeature([], tf.string),
                "image/class/label": tf.io.FixedLenFeature([], tf.int64),
                "image/class/text": tf.io.FixedLenFeature([], tf.string),
                "image/height": tf.io.FixedLenFeature([], tf.int64),
                "image/width": tf.io.FixedLenFeature([], tf.int64),
            }
            files = sorted(glob.glob(sys.argv[1] + "/*/*"))
            rows, sizes = [], []
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP").map(lambda s: tf.io.parse_single_example(s, spec)):
                image = tf.io.decode_image(r["image/encoded"])
                assert image.shape[0] == r["image/height"] and image.shape[1] == r["image/width"], image.shape
                rows.append((int(r["image/class/label"]), r["image/class/text"].numpy().decode(), r["image/format"].numpy().decode()))
                sizes.append((int(image.shape[0]), int(image.shape[1])))
            print("images", sorted(rows))
            print("sizes", sorted(sizes))
            print("split", [len(list(tf.data.TFRecordDataset(glob.glob(sys.argv[1] + "/" + d + "/*"), compression_type="GZIP"))) for d in ("train", "val")])
            spec = {k: tf.io.FixedLenFeature([], tf.float32) for k in ("x1", "x2", "x3")}
            spec["label"] = tf.io.FixedLenFeature([], tf.int64)
            files = sorted(glob.glob(sys.argv[2] + "/*"))
            for r in tf.data.TFRecordDataset(files, compression_type="ZLIB").map(lambda s: tf.io.parse_single_example(s, spec)):
                print("csv", int(r["label"]), float(r["x1"]), float(r["x2"]), float(r["x3"]))
            """
        let result = try Subprocess.run(URL(fileURLWithPath: python), ["-c", script, images.path, table.path])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(
            result.output.contains(
                "images [(0, 'cat', 'PNG'), (0, 'cat', 'PNG'), (0, 'cat', 'PNG'), (1, 'dog', 'JPEG'), (1, 'dog', 'PNG')]"
            ),
            result.output + result.error)
        XCTAssertTrue(result.output.contains("sizes [(2, 6), (3, 3), (3, 3), (3, 4), (3, 4)]"), "--resize 3: \(result.output)")
        XCTAssertTrue(result.output.contains("split [3, 2]"), "--val-fraction 0.4 of 3 cats and 2 dogs: \(result.output)")
        XCTAssertTrue(result.output.contains("csv 1 0.5 2.0 -1.5\ncsv 0 1.25 3.5 0.0\n"), result.output)
        XCTAssertTrue(result.output.contains("csv 1 3.75 0.25 8.5"), result.output)
    }
}
