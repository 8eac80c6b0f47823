import Foundation
import Learner
import TestSupport
import XCTest

/// A folder of images → `tefla-data convert images --val-fraction` → `tefla-train` on the
/// result, as a user with their own photos would go.
final class ConvertAndTrainTests: XCTestCase {
    /// The 1797 digits as 32×32 grey PNGs in `root/digit-N/NNNN.png`, read from Data/digits.
    private func digitFolder(_ root: URL) throws -> [Int] {
        var counts = [Int](repeating: 0, count: 10)
        var n = 0
        for split in ["train", "val"] {
            for file in try Shards.list(in: ConfigTests.root.appendingPathComponent("Data/digits/\(split)").path) {
                for record in try TFRecordReader.readAll(path: file) {
                    let example = try Example(serialized: record)
                    guard case .floats(let image)? = example["image"], case .int64s(let label)? = example["label"] else {
                        throw DataError.unparsableExample(nil)
                    }
                    var pixels = [UInt8](repeating: 0, count: 32 * 32)
                    for y in 0..<32 { for x in 0..<32 { pixels[y * 32 + x] = UInt8((image[(y / 4) * 8 + x / 4] * 255).rounded()) } }
                    let folder = root.appendingPathComponent("digit-\(label[0])")
                    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                    let png = TestPNG.encode(pixels, height: 32, width: 32, channels: 1)
                    try Data(png).write(to: folder.appendingPathComponent(String(format: "%04d.png", n)))
                    counts[Int(label[0])] += 1
                    n += 1
                }
            }
        }
        return counts
    }

    private func labels(_ file: String) throws -> [Int] {
        try TFRecordReader.readAll(path: file).map { record in
            guard case .int64s(let label)? = try Example(serialized: record)["image/class/label"] else { return -1 }
            return Int(label[0])
        }
    }

    func testValFractionSplitsEveryClassMixesTheShardsAndTrains() throws {
        let dir = try Scratch.directory("tefla-convert-train", for: self)
        let images = dir.appendingPathComponent("images")
        let counts = try digitFolder(images)
        let out = dir.appendingPathComponent("digits")
        let convert = try Subprocess.run(
            Subprocess.builtProduct("tefla-data"),
            ["convert", "images", images.path, out.path, "--val-fraction", "0.2", "--shards", "4", "--workers", "2", "--seed", "7"])
        XCTAssertEqual(convert.status, 0, convert.error)
        XCTAssertTrue(convert.output.contains("train: 1437/1437 images") || convert.output.contains("wrote"), convert.output)

        let trainShards = try Shards.list(in: out.appendingPathComponent("train").path)
        let valShards = try Shards.list(in: out.appendingPathComponent("val").path)
        XCTAssertEqual(trainShards.map { URL(fileURLWithPath: $0).lastPathComponent }.first, "digits-train-00000-of-00004.tfrecord")
        XCTAssertEqual(valShards.count, 1, "4 × 0.2 / 0.8")
        // Stratified: round(0.2 × n) of every class held out.
        let valLabels = try valShards.flatMap(labels)
        for c in 0..<10 {
            XCTAssertEqual(valLabels.filter { $0 == c }.count, Int((Double(counts[c]) * 0.2).rounded()), "class \(c)")
        }
        // Every training shard holds every class in roughly equal measure, in mixed order.
        for shard in trainShards {
            let shardLabels = try labels(shard)
            for c in 0..<10 {
                let expected = Double(counts[c] - Int((Double(counts[c]) * 0.2).rounded())) / 4
                let got = Double(shardLabels.filter { $0 == c }.count)
                XCTAssertTrue(abs(got - expected) <= 0.35 * expected, "\(shard): class \(c): \(got) of about \(expected)")
            }
            let changes = zip(shardLabels, shardLabels.dropFirst()).filter { $0 != $1 }.count
            XCTAssertGreaterThan(changes, shardLabels.count * 3 / 4, "\(shard): the classes are mixed, not in runs")
        }

        // The same seed writes the same files; any number of workers too.
        let again = dir.appendingPathComponent("again")
        let second = try Subprocess.run(
            Subprocess.builtProduct("tefla-data"),
            [
                "convert", "images", images.path, again.path, "--val-fraction", "0.2", "--shards", "4", "--workers", "1", "--seed", "7",
                "--prefix", "digits",
            ])
        XCTAssertEqual(second.status, 0, second.error)
        for (a, b) in zip(trainShards, try Shards.list(in: again.appendingPathComponent("train").path)) {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)), try Data(contentsOf: URL(fileURLWithPath: b)))
        }

        // And the trainer takes the output as it is: no image size, no keys.
        let config = dir.appendingPathComponent("cfg.yml")
        try """
        model:
          layers:
            - {type: conv2d, filters: 16, kernel_size: 3, padding: same}
            - {type: batch_norm}
            - {type: relu}
            - {type: max_pool, pool_size: 2}
            - {type: conv2d, filters: 32, kernel_size: 3, padding: same}
            - {type: batch_norm}
            - {type: relu}
            - {type: max_pool, pool_size: 2}
            - {type: conv2d, filters: 64, kernel_size: 3, padding: same}
            - {type: batch_norm}
            - {type: relu}
            - {type: global_avg_pool}
            - {type: dense, units: 10}
        data:
          train_dir: \(out.path)/train
          val_dir: \(out.path)/val
          normalize: {mean: [0.3], std: [0.4]}
          batch_size: 32
        optimizer: {name: adam, learning_rate: 0.003}
        schedule: {name: one_cycle, max_lr: 0.01}
        training: {epochs: 10, seed: 1}
        """.write(to: config, atomically: true, encoding: .utf8)
        let result = try Trainer.run(["--config", config.path, "--verbose", "2"])
        XCTAssertEqual(result.status, 0, result.error)
        let held = counts.map { Int((Double($0) * 0.2).rounded()) }.reduce(0, +)
        XCTAssertTrue(result.output.contains("\(1797 - held) training samples"), result.output)
        let accuracy = try XCTUnwrap(result.output.components(separatedBy: "final val_accuracy: ").last.flatMap { Float($0.prefix(6)) })
        XCTAssertGreaterThanOrEqual(accuracy, 0.95, result.output)
    }
}
