import Foundation
import Learner
import TestSupport
import XCTest

/// Broken inputs a user or the environment can hand the built `tefla-train` and `tefla-data`:
/// each must end with exit status 1 or 2 and one message naming the culprit (a file, record,
/// key, layer or config line), never a signal.
final class BadInputMatrixTests: XCTestCase {
    /// One broken input: the tool, its arguments (made in the case's own folder), and the texts
    /// the error message must contain.
    struct Case: Sendable {
        var name: String
        var tool = "tefla-train"
        var expect: [String]
        var make: @Sendable (URL) throws -> [String]
    }

    static let digits = ConfigTests.root.appendingPathComponent("Data/digits").path

    /// A config over the digits data (or `train`/`val`) with `layers` and extra lines.
    static func config(
        train: String = digits + "/train", val: String? = digits + "/val",
        layers: String = "    - {type: dense, units: 16, activation: relu}\n    - {type: dense, units: 10}",
        data: String = "", extra: String = ""
    ) -> String {
        """
        model:
          layers:
        \(layers)
        data:
          train_dir: \(train)
        \(val.map { "  val_dir: \($0)\n" } ?? "")  batch_size: 32
        \(data)
        optimizer: {name: adam, learning_rate: 0.01}
        training: {epochs: 1, seed: 1, verbose: 0}
        \(extra)
        """
    }

    /// Writes `text` as `dir/name` and returns its path.
    @discardableResult
    static func write(_ text: String, _ dir: URL, _ name: String = "cfg.yml") throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A folder `dir/name` holding one shard of `count` records made by `example`.
    static func shards(_ dir: URL, _ name: String, count: Int = 40, _ example: (Int) -> Example) throws -> String {
        let folder = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let writer = try TFRecordWriter(path: folder.appendingPathComponent("part-00000.tfrecord").path)
        for i in 0..<count { try writer.write(example(i).serialized()) }
        try writer.close()
        return folder.path
    }

    /// Records of 8 float features and an int64 class label in 0..<3.
    static func example(_ i: Int, label: Feature? = nil, image: Feature? = nil) -> Example {
        Example([
            "image": image ?? .floats((0..<8).map { Float(($0 * 7 + i) % 5) / 5 }),
            "label": label ?? .int64s([Int64(i % 3)]),
        ])
    }

    static let small = "    - {type: dense, units: 3}"

    /// Trains a small model on the digits for one epoch into `weights`; returns the config's path.
    static func trained(_ dir: URL, weights: String) throws -> String {
        let file = try write(config(extra: "checkpoint: {weights_dir: \(weights)}"), dir, "trained.yml")
        let result = try Trainer.run(["--config", file])
        XCTAssertEqual(result.status, 0, result.error)
        return file
    }

    static let cases: [Case] = [
        Case(name: "last dense narrower than the classes", expect: ["has the label", "5 class scores", ".tfrecord"]) { dir in
            ["--config", try write(config(layers: "    - {type: dense, units: 5}"), dir)]
        },
        Case(name: "input_shape that does not match the records", expect: ["data.input_shape", "64"]) { dir in
            [
                "--config",
                try write(
                    config(layers: "    - {type: conv2d, filters: 4}\n    - {type: dense, units: 10}", data: "  input_shape: [1, 7, 7]"),
                    dir),
            ]
        },
        Case(name: "image augmentation on feature-vector records", expect: ["data.augmentation", "holds feature vectors"]) { dir in
            let data = "  augmentation: {flip_left_right: true}\n  features_keys: {input: image, label: label}"
            return ["--config", try write(config(data: data), dir)]
        },
        Case(name: "pooling on flat feature vectors", expect: ["model.layers[0]", "max_pool", "input_shape"]) { dir in
            ["--config", try write(config(layers: "    - {type: max_pool}\n    - {type: dense, units: 10}"), dir)]
        },
        Case(name: "a kernel larger than the image", expect: ["model.layers[0]", "does not fit"]) { dir in
            [
                "--config",
                try write(
                    config(
                        layers: "    - {type: conv2d, filters: 4, kernel_size: 9, padding: 0}\n    - {type: dense, units: 10}",
                        data: "  input_shape: [1, 8, 8]"), dir),
            ]
        },
        Case(name: "too many poolings for the image", expect: ["model.layers[2]", "does not fit"]) { dir in
            let layers =
                "    - {type: max_pool, pool_size: 4}\n    - {type: max_pool, pool_size: 2}\n    - {type: max_pool, pool_size: 2}\n"
                + "    - {type: dense, units: 10}"
            return ["--config", try write(config(layers: layers, data: "  input_shape: [1, 8, 8]"), dir)]
        },
        Case(name: "a negative label", expect: ["record 5 of", "label -1"]) { dir in
            let train = try shards(dir, "train") { i in example(i, label: .int64s([i == 5 ? -1 : Int64(i % 3)])) }
            return ["--config", try write(config(train: train, val: nil, layers: small), dir)]
        },
        Case(name: "a fractional class label", expect: ["record 7 of", "label 1.5"]) { dir in
            let train = try shards(dir, "train") { i in example(i, label: .floats([i == 7 ? 1.5 : Float(i % 3)])) }
            return ["--config", try write(config(train: train, val: nil, layers: small), dir)]
        },
        Case(name: "validation labels outside the classes", expect: ["val", "label 7", "3 class scores"]) { dir in
            let train = try shards(dir, "train") { example($0) }
            let val = try shards(dir, "val") { i in example(i, label: .int64s([i == 3 ? 7 : 0])) }
            return ["--config", try write(config(train: train, val: val, layers: small), dir)]
        },
        Case(name: "regression targets wider than the outputs", expect: ["3 label values", "1 output"]) { dir in
            let train = try shards(dir, "train") { i in example(i, label: .floats([1, 2, 3])) }
            let cfg = config(train: train, val: nil, layers: "    - {type: dense, units: 1}")
                .replacingOccurrences(of: "verbose: 0}", with: "verbose: 0, mode: regression}")
            return ["--config", try write(cfg, dir)]
        },
        Case(name: "multi-hot labels under softmax cross-entropy", expect: ["one class index per sample", "multi_label"]) { dir in
            let train = try shards(dir, "train") { i in example(i, label: .int64s([1, 0, 1])) }
            return ["--config", try write(config(train: train, val: nil, layers: small), dir)]
        },
        Case(name: "validation features of another size", expect: ["val", "do not fit the model", "Dense(8→3)"]) { dir in
            let train = try shards(dir, "train") { example($0) }
            let val = try shards(dir, "val") { i in example(i, image: .floats([1, 2, 3])) }
            return ["--config", try write(config(train: train, val: val, layers: small), dir)]
        },
        Case(name: "records of different sizes", expect: ["record 9", "image"]) { dir in
            let train = try shards(dir, "train") { i in example(i, image: .floats(Array(repeating: 0.5, count: i == 9 ? 7 : 8))) }
            return ["--config", try write(config(train: train, val: nil, layers: small), dir)]
        },
        Case(name: "an input key the records lack", expect: ["pixels"]) { dir in
            ["--config", try write(config(data: "  features_keys: {input: pixels, label: label}"), dir)]
        },
        Case(name: "a label key the records lack", expect: ["target"]) { dir in
            ["--config", try write(config(data: "  features_keys: {input: image, label: target}"), dir)]
        },
        Case(name: "a label stored as bytes", expect: ["label", "bytes"]) { dir in
            let train = try shards(dir, "train") { i in example(i, label: .bytes([Array("cat".utf8)])) }
            return ["--config", try write(config(train: train, val: nil, layers: small), dir)]
        },
        Case(name: "a sample-weight key the records lack", expect: ["weight"]) { dir in
            ["--config", try write(config(data: "  features_keys: {input: image, label: label, sample_weight: weight}"), dir)]
        },
        Case(name: "NaN among the inputs with check_finite", expect: ["nan", "record 4 of", "part-00000.tfrecord", "(value 2)"]) { dir in
            let train = try shards(dir, "train") { i in example(i, image: .floats((0..<8).map { $0 == 2 && i == 4 ? .nan : 0.5 })) }
            let cfg = config(train: train, val: nil, layers: small)
                .replacingOccurrences(of: "verbose: 0}", with: "verbose: 0, check_finite: true}")
            return ["--config", try write(cfg, dir)]
        },
        Case(name: "an empty training folder", expect: ["empty"]) { dir in
            let empty = dir.appendingPathComponent("empty")
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            return ["--config", try write(config(train: empty.path, val: nil), dir)]
        },
        Case(name: "an empty shard", expect: ["train/part-00000.tfrecord", "holds no records"]) { dir in
            let train = try shards(dir, "train", count: 0) { example($0) }
            return ["--config", try write(config(train: train, val: nil, layers: small), dir)]
        },
        Case(name: "a truncated shard", expect: ["part-00000.tfrecord", "truncated"]) { dir in
            let train = try shards(dir, "train") { example($0) }
            let file = train + "/part-00000.tfrecord"
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            try bytes.prefix(bytes.count - 7).write(to: URL(fileURLWithPath: file))
            return ["--config", try write(config(train: train, val: nil, layers: small), dir)]
        },
        Case(name: "a shard with a damaged record", expect: ["part-00000.tfrecord", "record 3"]) { dir in
            let train = try shards(dir, "train") { example($0) }
            let file = train + "/part-00000.tfrecord"
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
            let recordLength = bytes.count / 40
            bytes[3 * recordLength + 20] ^= 0xFF
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            return ["--config", try write(config(train: train, val: nil, layers: small), dir)]
        },
        Case(name: "a shard that is not a TFRecord file", expect: ["part-00000.tfrecord"]) { dir in
            let train = dir.appendingPathComponent("train")
            try FileManager.default.createDirectory(at: train, withIntermediateDirectories: true)
            try write("model:\n  layers: []\n", train, "part-00000.tfrecord")
            return ["--config", try write(config(train: train.path, val: nil, layers: small), dir)]
        },
        Case(name: "shards in sub-folders only", expect: ["train", "no shard files"]) { dir in
            let nested = try shards(dir, "train/nested") { example($0) }
            return [
                "--config",
                try write(config(train: URL(fileURLWithPath: nested).deletingLastPathComponent().path, val: nil, layers: small), dir),
            ]
        },
        Case(name: "a shard that is a dangling link", expect: ["part-00001.tfrecord"]) { dir in
            let train = try shards(dir, "train") { example($0) }
            try FileManager.default.createSymbolicLink(atPath: train + "/part-00001.tfrecord", withDestinationPath: dir.path + "/gone")
            return ["--config", try write(config(train: train, val: nil, layers: small), dir)]
        },
        Case(name: "train_dir naming a file", expect: ["data.train_dir", "is a file, not a directory"]) { dir in
            ["--config", try write(config(train: digits + "/train/digits-train-00000-of-00002.tfrecord", val: nil), dir)]
        },
        Case(name: "a config that is a folder", expect: ["config"]) { dir in
            ["--config", dir.path]
        },
        Case(name: "a config that does not exist", expect: ["missing.yml"]) { dir in
            ["--config", dir.appendingPathComponent("missing.yml").path]
        },
        Case(name: "a config of binary bytes", expect: ["cfg.yml"]) { dir in
            let path = dir.appendingPathComponent("cfg.yml")
            try Data([0xFF, 0xFE, 0x00, 0x01, 0x9C, 0x80, 0xC3]).write(to: path)
            return ["--config", path.path]
        },
        Case(name: "a GPU this machine does not have", expect: ["--gpu 7"]) { dir in
            ["--config", try write(config(), dir), "--gpu", "7"]
        },
        Case(name: "an override of a wrong type", expect: ["optimizer.learning_rate"]) { dir in
            ["--config", try write(config(), dir), "--override", "optimizer.learning_rate=fast"]
        },
        Case(name: "weights from a file that does not exist", expect: ["nothing.safetensors"]) { dir in
            ["--config", try write(config(), dir), "--weights-from", dir.path + "/nothing.safetensors"]
        },
        Case(name: "weights from a truncated safetensors file", expect: ["model.safetensors"]) { dir in
            let file = try trained(dir, weights: dir.path + "/w")
            let model = dir.path + "/w/epoch-0001/model.safetensors"
            let bytes = try Data(contentsOf: URL(fileURLWithPath: model))
            let cut = dir.path + "/model.safetensors"
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
            return ["--config", file, "--weights-from", cut]
        },
        Case(name: "weights of a different model", expect: ["model.safetensors", "shape"]) { dir in
            _ = try trained(dir, weights: dir.path + "/w")
            let other = try write(config(layers: "    - {type: dense, units: 32, activation: relu}\n    - {type: dense, units: 10}"), dir)
            return ["--config", other, "--weights-from", dir.path + "/w/epoch-0001/model.safetensors"]
        },
        Case(name: "evaluating a checkpoint of a different model", expect: ["epoch-0001"]) { dir in
            _ = try trained(dir, weights: dir.path + "/w")
            let other = try write(config(layers: "    - {type: dense, units: 32, activation: relu}\n    - {type: dense, units: 10}"), dir)
            return ["evaluate", "--config", other, "--checkpoint", dir.path + "/w/epoch-0001"]
        },
        Case(name: "evaluating a checkpoint folder that does not exist", expect: ["epoch-0042"]) { dir in
            ["evaluate", "--config", try write(config(), dir), "--checkpoint", dir.path + "/w/epoch-0042"]
        },
        Case(name: "resuming from a damaged state.json", expect: ["state.json"]) { dir in
            let file = try trained(dir, weights: dir.path + "/w")
            try write("{\"epoch\": ", URL(fileURLWithPath: dir.path + "/w/epoch-0001"), "state.json")
            return ["--config", file, "--resume", "--epochs", "2"]
        },
        Case(name: "resuming into a weights_dir that is a file", expect: ["checkpoint.weights_dir", "is a file"]) { dir in
            try write("not a folder", dir, "weights")
            return ["--config", try write(config(extra: "checkpoint: {weights_dir: \(dir.path)/weights}"), dir), "--resume"]
        },
        Case(name: "predictions into a folder that does not exist", expect: ["nowhere/p.csv"]) { dir in
            let file = try trained(dir, weights: dir.path + "/w")
            return ["predict", "--config", file, "--output", dir.path + "/nowhere/p.csv"]
        },
        Case(name: "verifying a truncated shard", tool: "tefla-data", expect: ["part-00000.tfrecord"]) { dir in
            let train = try shards(dir, "train") { example($0) }
            let file = train + "/part-00000.tfrecord"
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            try bytes.prefix(bytes.count - 3).write(to: URL(fileURLWithPath: file))
            return ["verify", train, "--all"]
        },
        Case(name: "inspecting a path that does not exist", tool: "tefla-data", expect: ["no-such-data"]) { dir in
            ["inspect", dir.path + "/no-such-data"]
        },
        Case(name: "converting a CSV with a text cell", tool: "tefla-data", expect: ["t.csv:3", "'x'"]) { dir in
            let csv = try write("a,b,label\n1,2,0\n3,x,1\n", dir, "t.csv")
            return ["convert", "csv", csv, dir.path + "/out", "--label-column", "label"]
        },
        Case(name: "converting an image folder with a broken image", tool: "tefla-data", expect: ["broken.png"]) { dir in
            let cls = dir.appendingPathComponent("photos/cat")
            try FileManager.default.createDirectory(at: cls, withIntermediateDirectories: true)
            try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 1, 2]).write(
                to: cls.appendingPathComponent("broken.png"))
            return ["convert", "images", dir.path + "/photos", dir.path + "/out"]
        },
    ]

    func testEveryBrokenInputEndsWithAClearErrorNotASignal() throws {
        XCTAssertGreaterThanOrEqual(Self.cases.count, 30)
        for c in Self.cases {
            let dir = try Scratch.directory("tefla-bad-input", for: self)
            let arguments: [String]
            do {
                arguments = try c.make(dir)
            } catch {
                XCTFail("\(c.name): could not make the input: \(error)")
                continue
            }
            let result = try Subprocess.run(Subprocess.builtProduct(c.tool), arguments, directory: ConfigTests.root, timeout: 300)
            let message = result.error + result.output
            print("bad input: \(c.name): exit \(result.status): \(message.split(separator: "\n").first { $0.contains("error") } ?? "")")
            XCTAssertFalse(result.signaled, "\(c.name): ended on signal \(result.status)\n\(message)")
            XCTAssertTrue([1, 2].contains(result.status), "\(c.name): exit status \(result.status)\n\(message)")
            for text in c.expect {
                XCTAssertTrue(message.contains(text), "\(c.name): the message lacks '\(text)':\n\(message)")
            }
            XCTAssertFalse(message.contains("Fatal error") || message.contains("Backtrace"), "\(c.name): a trap\n\(message)")
        }
    }
}
