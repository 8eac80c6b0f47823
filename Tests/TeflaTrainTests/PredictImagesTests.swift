import Foundation
import Learner
import TestSupport
import XCTest

/// `tefla-train predict` as people use it on images: on shards without labels, on a plain
/// folder of image files, with file names in the CSV and the k likeliest classes.
final class PredictImagesTests: XCTestCase {
    /// A row of a CSV, quoted fields kept whole.
    private func fields(_ line: Substring) -> [String] {
        var out: [String] = [], field = "", quoted = false
        var chars = Array(line)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" {
                        field.append("\"")
                        chars.removeFirst()
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                out.append(field)
                field = ""
            } else {
                field.append(c)
            }
        }
        return out + [field]
    }

    func testPredictOnUnlabelledShardsAndAFolderOfImages() throws {
        let dir = try Scratch.directory("tefla-predict-images", for: self)
        let weights = dir.appendingPathComponent("w").path
        let common = ["--config", "Configs/digits-png-cnn.yml", "--override", "checkpoint.weights_dir=\(weights)"]
        let train = try Trainer.run(common + ["--epochs", "3", "--verbose", "0"])
        XCTAssertEqual(train.status, 0, train.error)

        // Digits 0-9 of the validation set, as PNG files (one name with a comma) and as shards
        // without a label feature.
        let pngs = try Shards.list(in: ConfigTests.root.appendingPathComponent("Data/digits-png/val").path)
            .flatMap { try TFRecordReader.readAll(path: $0) }.prefix(40)
        let folder = dir.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let shards = dir.appendingPathComponent("unlabelled")
        try FileManager.default.createDirectory(at: shards, withIntermediateDirectories: true)
        let writer = try TFRecordWriter(path: shards.appendingPathComponent("part-00000.tfrecord").path)
        var truth: [String: Int] = [:]
        for (n, record) in pngs.enumerated() {
            let example = try Example(serialized: record)
            guard case .bytes(let png)? = example["image/encoded"], case .int64s(let label)? = example["image/class/label"] else {
                return XCTFail("a digits-png record without its image or label")
            }
            let name = n == 3 ? "digit, \"three\".png" : String(format: "digit-%02d.png", n)
            truth[name] = Int(label[0])
            try Data(png[0]).write(to: folder.appendingPathComponent(name))
            try writer.write(Example(["image/encoded": .bytes(png), "image/filename": .bytes([Array(name.utf8)])]).serialized())
        }
        try writer.close()

        for data in [folder.path, shards.path] {
            let csv = dir.appendingPathComponent("p.csv").path
            let predict = try Trainer.run(["predict"] + common + ["--data", data, "--output", csv, "--top-k", "3"])
            XCTAssertEqual(predict.status, 0, predict.error)
            let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(lines.first, "index,filename,label,prediction,top1,top1_p,top2,top2_p,top3,top3_p")
            XCTAssertEqual(lines.count, 41)
            var right = 0
            for line in lines.dropFirst() {
                let f = fields(line)
                XCTAssertEqual(f.count, 10, String(line))
                XCTAssertEqual(f[2], "", "no label: an empty field")
                XCTAssertEqual(f[3], f[4], "the prediction is the top class")
                let p = [f[5], f[7], f[9]].compactMap(Double.init)
                XCTAssertEqual(p, p.sorted(by: >), "top-k in falling probability")
                XCTAssertLessThanOrEqual(p.reduce(0, +), 1.0001)
                let want = try XCTUnwrap(truth[f[1]], "the file name \(f[1]) comes back whole")
                if Int(f[3]) == want { right += 1 }
            }
            XCTAssertGreaterThanOrEqual(right, 32, "\(data): \(right) of 40 right after 3 epochs")
        }
        // Evaluation needs labels: unlabelled records are named.
        let evaluate = try Trainer.run(["evaluate"] + common + ["--data", shards.path])
        XCTAssertEqual(evaluate.status, 1)
        XCTAssertTrue(
            evaluate.error.contains("'image/class/label' is missing") && evaluate.error.contains("part-00000.tfrecord"), evaluate.error)
    }
}
