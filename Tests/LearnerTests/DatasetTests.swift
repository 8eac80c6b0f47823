import Foundation
import Learner
import TestSupport
import XCTest

final class DatasetTests: XCTestCase {
    /// Writes `examples` as one TFRecord shard named `name` in `dir`; returns its path.
    @discardableResult
    private func writeShard(_ examples: [Example], _ name: String, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(name).path
        let writer = try TFRecordWriter(path: path)
        for example in examples { try writer.write(example.serialized()) }
        try writer.close()
        return path
    }

    // MARK: Shards

    func testShardsAreSortedRegularVisibleFiles() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        for name in ["train-00001-of-00002", "train-00000-of-00002", ".hidden", "b.tfrecord"] {
            try writeShard([], name, in: dir)
        }
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("sub"), withIntermediateDirectories: false)
        let names = try Shards.list(in: dir.path).map { URL(fileURLWithPath: $0).lastPathComponent }
        XCTAssertEqual(names, ["b.tfrecord", "train-00000-of-00002", "train-00001-of-00002"])
    }

    func testEmptyDirectoryIsAnErrorNamingIt() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        try writeShard([], ".only-hidden", in: dir)
        XCTAssertThrowsError(try InMemoryDataset.load(directory: dir.path)) { error in
            XCTAssertEqual(error as? DataError, .emptyDirectory(path: dir.path))
            XCTAssertTrue("\(error)".contains(dir.path), "\(error)")
        }
    }

    func testMissingDirectoryIsAnErrorNamingIt() throws {
        let path = try Scratch.directory("tefla-data", for: self).appendingPathComponent("no-such-split").path
        XCTAssertThrowsError(try Shards.list(in: path)) { error in
            XCTAssertEqual(error as? DataError, .missingDirectory(path: path))
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
        // A file is not a data directory either.
        XCTAssertThrowsError(try Shards.list(in: DataTestFiles.tfShard)) { error in
            XCTAssertEqual(error as? DataError, .missingDirectory(path: DataTestFiles.tfShard))
        }
    }

    // MARK: InMemoryDataset

    func testLoadsFloatInt64AndBytesInputs() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        try writeShard(
            [
                Example(["image": .floats([0.25, 0.5, 1]), "label": .int64s([2])]),
                Example(["image": .int64s([1, -2, 3]), "label": .floats([0.75])]),
            ], "a-00000", in: dir)
        try writeShard([Example(["image": .bytes([[0, 51, 255]]), "label": .int64s([4])])], "a-00001", in: dir)

        let data = try InMemoryDataset.load(directory: dir.path)
        XCTAssertEqual(data.count, 3)
        XCTAssertEqual(data.featureSize, 3)
        XCTAssertEqual(data.inputs, [0.25, 0.5, 1, 1, -2, 3, 0, 0.2, 1])
        XCTAssertEqual(data.labels, [2, 0.75, 4])
        XCTAssertEqual(data.sources.map { URL(fileURLWithPath: $0).lastPathComponent }, ["a-00000", "a-00001"])
    }

    func testSampleWeightsComeFromTheirFeatureAndWeighTheLoss() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        try writeShard(
            [
                Example(["image": .floats([0.5, 1]), "label": .int64s([1]), "w": .floats([2])]),
                Example(["image": .floats([0.25, 0]), "label": .int64s([0]), "w": .int64s([3])]),
                Example(["image": .floats([1, 1]), "label": .int64s([1]), "w": .floats([0])]),
            ], "weighted", in: dir)
        let data = try InMemoryDataset.load(directory: dir.path, keys: FeatureKeys(input: "image", label: "label", sampleWeight: "w"))
        XCTAssertEqual(data.sampleWeights, [2, 3, 0])
        let batch = data.collate([2, 0])
        XCTAssertEqual(batch.sampleWeights?.scalars, [0, 2])
        // Σ wᵢ·ℓᵢ / N: a weight-0 sample adds nothing, so two copies of the rest give the same loss.
        let model = Sequential([Dense(inputSize: 2, units: 2, seed: 3)])
        let weighted = withoutGradients {
            Loss.softmaxCrossEntropy()(model(batch.inputs), batch.labels, sampleWeights: batch.sampleWeights)
        }
        let alone = withoutGradients { Loss.softmaxCrossEntropy()(model(data.collate([0]).inputs), data.collate([0]).labels) }
        XCTAssertEqual(weighted.scalar, alone.scalar, accuracy: 1e-6)
        XCTAssertNil(try InMemoryDataset.load(directory: dir.path).sampleWeights)
        XCTAssertThrowsError(try InMemoryDataset.load(directory: dir.path, keys: FeatureKeys(sampleWeight: "weight"))) { error in
            XCTAssertTrue("\(error)".contains("weight"), "\(error)")
        }
    }

    func testMultiValueLabelsKeepTheFirstRecordsWidth() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        try writeShard(
            [
                Example(["image": .floats([0.5]), "label": .int64s([1, 0, 1])]),
                Example(["image": .floats([0.25]), "label": .floats([0, 1, 1])]),
            ], "multi", in: dir)
        let data = try InMemoryDataset.load(directory: dir.path)
        XCTAssertEqual(data.count, 2)
        XCTAssertEqual(data.labelSize, 3)
        XCTAssertEqual(data.labels, [1, 0, 1, 0, 1, 1])

        let other = try Scratch.directory("tefla-data", for: self)
        try writeShard(
            [
                Example(["image": .floats([0.5]), "label": .int64s([2])]),
                Example(["image": .floats([0.25]), "label": .floats([0.75, 9])]),
            ], "mixed", in: other)
        XCTAssertThrowsError(try InMemoryDataset.load(directory: other.path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("'label' has 2 values, expected 1") && text.contains("record 1"), text)
        }
    }

    func testCustomKeys() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        try writeShard([Example(["x": .floats([1, 2]), "y": .floats([3.5])])], "s", in: dir)
        let data = try InMemoryDataset.load(directory: dir.path, keys: FeatureKeys(input: "x", label: "y"))
        XCTAssertEqual(data.inputs, [1, 2])
        XCTAssertEqual(data.labels, [3.5])
    }

    func testMissingKeyNamesKeyFileAndRecord() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let good = Example(["image": .floats([1, 2]), "label": .int64s([0])])
        let path = try writeShard(
            [good, good, Example(["image": .floats([1, 2]), "target": .int64s([0])])], "s", in: dir)
        XCTAssertThrowsError(try InMemoryDataset.load(directory: dir.path)) { error in
            guard case .missingFeature(let key, let present, let at)? = error as? DataError else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual(key, "label")
            XCTAssertEqual(Set(present), ["image", "target"])
            XCTAssertEqual(at?.file, path)
            XCTAssertEqual(at?.record, 2)
            let message = "\(error)"
            for part in ["'label'", path, "record 2", "image, target"] {
                XCTAssertTrue(message.contains(part), "\(part) not in: \(message)")
            }
        }
    }

    func testInconsistentFeatureSizeNamesRecord() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = try writeShard(
            [
                Example(["image": .floats([1, 2, 3]), "label": .int64s([0])]),
                Example(["image": .floats([1, 2]), "label": .int64s([0])]),
            ], "s", in: dir)
        XCTAssertThrowsError(try InMemoryDataset.load(directory: dir.path)) { error in
            guard case .wrongLength(let key, let expected, let found, let at)? = error as? DataError else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual([key, "\(expected)", "\(found)"], ["image", "3", "2"])
            XCTAssertEqual(at?.file, path)
            XCTAssertEqual(at?.record, 1)
        }
    }

    func testBytesLabelIsAKindError() throws {
        let dir = try Scratch.directory("tefla-data", for: self)
        try writeShard([Example(["image": .floats([1]), "label": .bytes([Array("cat".utf8)])])], "s", in: dir)
        XCTAssertThrowsError(try InMemoryDataset.load(directory: dir.path)) { error in
            guard case .wrongFeatureKind(key: "label", _, found: "bytes", _)? = error as? DataError else {
                return XCTFail("got \(error)")
            }
        }
    }

    func testCorruptShardFailsTheLoad() throws {
        // A shard that loads whole, so that the error below comes from the damage alone.
        let dir = try Scratch.directory("tefla-data", for: self)
        let path = dir.appendingPathComponent("s").path
        let writer = try TFRecordWriter(path: path)
        for i in 0..<20 {
            try writer.write(Example(["x": .floats([Float(i), 1, 2]), "y": .int64s([Int64(i % 3)])]).serialized())
        }
        try writer.close()
        let keys = FeatureKeys(input: "x", label: "y")
        XCTAssertEqual(try InMemoryDataset.load(directory: dir.path, keys: keys).count, 20)
        // One bit flipped inside the last record's data: its CRC no longer matches.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 10] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try InMemoryDataset.load(directory: dir.path, keys: keys)) { error in
            guard case .corruptData(let at)? = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertEqual(at.record, 19)
            XCTAssertTrue(at.file.hasSuffix("/s"), at.file)
        }
    }

    // MARK: The embedded digits data set

    func testEmbeddedDigits() throws {
        let root = DataTestFiles.root.appendingPathComponent("Data/digits")
        let train = try InMemoryDataset.load(directory: root.appendingPathComponent("train").path)
        let val = try InMemoryDataset.load(directory: root.appendingPathComponent("val").path)
        XCTAssertEqual(train.sources.count, 2)
        XCTAssertEqual(train.count, 1437)
        XCTAssertEqual(val.count, 360)
        XCTAssertEqual(train.count + val.count, 1797)
        for data in [train, val] {
            XCTAssertEqual(data.featureSize, 64)
            XCTAssertEqual(data.inputs.count, data.count * 64)
            XCTAssertEqual(Set(data.labels), Set((0...9).map(Float.init)), "every class present")
            XCTAssertTrue(data.inputs.allSatisfy { (0...1).contains($0) })
            XCTAssertEqual(data.inputs.max(), 1)
        }
    }
}
