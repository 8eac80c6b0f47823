import Foundation
import Learner
import XCTest

/// Data/digits-png (Scripts/make_digits_png.py) through the image pipeline, checked against the
/// float digits of Data/digits: same split, same order, pixels round(count * 255 / 16) / 255 in
/// 4x4 blocks.
final class DigitsPNGTests: XCTestCase {
    static let data = DataTestFiles.root.appendingPathComponent("Data")

    /// The float digits of one split in file order: 64 counts (pixel * 16) and the label each.
    private func floatDigits(_ split: String) throws -> [(counts: [Float], label: Int64)] {
        try Shards.list(in: Self.data.appendingPathComponent("digits/\(split)").path).flatMap { file in
            try TFRecordReader.readAll(path: file).map { record in
                let example = try Example(serialized: record)
                guard case .floats(let image)? = example["image"], case .int64s(let label)? = example["label"] else {
                    throw DataError.unparsableExample(nil)
                }
                return (image.map { $0 * 16 }, label[0])
            }
        }
    }

    private func batches(_ split: String, workers: Int) throws -> [ImageBatch] {
        let options = ImagePipelineOptions(
            batchSize: 100, height: 32, width: 32, channels: 1, workers: workers,
            keys: FeatureKeys(input: "image/encoded", label: "image/class/label"))
        let pipeline = try ImagePipeline(
            source: Self.data.appendingPathComponent("digits-png/\(split)").path, options: options)
        let iterator = pipeline.batches(epoch: 0)
        var out: [ImageBatch] = []
        while let batch = try iterator.next() { out.append(batch) }
        return out
    }

    func testPNGDigitsMatchTheFloatDigits() throws {
        var histogram = [Int](repeating: 0, count: 10)
        for (split, count) in [("train", 1437), ("val", 360)] {
            let want = try floatDigits(split)
            let got = try batches(split, workers: 2)
            XCTAssertEqual(got.reduce(0) { $0 + $1.count }, count, split)
            XCTAssertEqual(want.count, count, split)
            XCTAssertEqual(got.first?.shape, [100, 1, 32, 32])
            let labels = got.flatMap(\.labels)
            let inputs = got.flatMap(\.inputs)
            XCTAssertEqual(labels, want.map { Float($0.label) }, "\(split): labels in the float set's order")
            for label in labels { histogram[Int(label)] += 1 }
            var mismatches = 0
            for (n, sample) in want.enumerated() {
                for y in 0..<32 {
                    for x in 0..<32 {
                        let byte = (sample.counts[(y / 4) * 8 + x / 4] * 255 / 16).rounded()
                        if inputs[n * 1024 + y * 32 + x] != byte / 255 { mismatches += 1 }
                    }
                }
            }
            XCTAssertEqual(mismatches, 0, "\(split): pixels differing from the float digits")
        }
        // scikit-learn's digits: 1797 samples, these many of each digit.
        XCTAssertEqual(histogram, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    }

    /// The records carry what TensorFlow image data sets carry.
    func testRecordsAreTensorFlowImageExamples() throws {
        let file = try Shards.list(in: Self.data.appendingPathComponent("digits-png/val").path)[0]
        let example = try Example(serialized: try XCTUnwrap(TFRecordReader.readAll(path: file).first))
        XCTAssertEqual(example["image/format"], .bytes([Array("png".utf8)]))
        XCTAssertEqual(example["image/height"], .int64s([32]))
        XCTAssertEqual(example["image/width"], .int64s([32]))
        guard case .bytes(let blobs)? = example["image/encoded"] else { return XCTFail("no image/encoded") }
        XCTAssertEqual(ImageDecoder.format(of: blobs[0]), .png)
        XCTAssertEqual(try ImageDecoder.decodeBytes(blobs[0]).channels, 1)
    }
}
