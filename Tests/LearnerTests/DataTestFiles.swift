import Foundation
import Learner

/// Fixtures for the data tests.
enum DataTestFiles {
    /// `Tests/LearnerTests/Fixtures`.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    /// The repository root.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// `Data/digits`: the 8×8 digits shards, `train/` and `val/`.
    static let digits = root.appendingPathComponent("Data/digits").path
    /// The 20-record shard written by TensorFlow (Scripts/fixtures/make_tf_fixture.py).
    static let tfShard = fixtures.appendingPathComponent("tf_examples.tfrecord").path

    /// Byte offsets of every record in a well-formed TFRecord file, found by walking its framing.
    static func recordOffsets(_ bytes: [UInt8]) -> [Int] {
        var offsets: [Int] = []
        var at = 0
        while at + 12 <= bytes.count {
            offsets.append(at)
            let length = (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) }
            at += 12 + length + 4
        }
        return offsets
    }

    /// Expected feature values of the TensorFlow shard, from the JSON written beside it.
    static func expectedTFExamples() throws -> [Example] {
        struct Entry: Decodable {
            var kind: String
            var values: [JSONValue]
        }
        enum JSONValue: Decodable {
            case number(Double)
            case text(String)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let s = try? c.decode(String.self) {
                    self = .text(s)
                } else {
                    self = .number(try c.decode(Double.self))
                }
            }
            var text: String { if case .text(let s) = self { return s } else { return "" } }
            var number: Double { if case .number(let d) = self { return d } else { return .nan } }
        }
        let data = try Data(contentsOf: fixtures.appendingPathComponent("tf_examples.json"))
        let records = try JSONDecoder().decode([[String: Entry]].self, from: data)
        return records.map { record in
            Example(
                record.mapValues { entry -> Feature in
                    switch entry.kind {
                    case "int64": return .int64s(entry.values.map { Int64($0.text) ?? 0 })
                    case "float": return .floats(entry.values.map { Float($0.number) })
                    default: return .bytes(entry.values.map { hexBytes($0.text) })
                    }
                })
        }
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map { i in
            UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16) ?? 0
        }
    }

    /// Writes `bytes` to `name` in `dir` and returns the path.
    @discardableResult
    static func write(_ bytes: [UInt8], to name: String, in dir: URL) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}
