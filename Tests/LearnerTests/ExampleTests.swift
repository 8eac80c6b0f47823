import Learner
import XCTest

final class ExampleTests: XCTestCase {
    private let sample = Example([
        "image": .floats([0, 0.5, -1.25, .greatestFiniteMagnitude, .leastNonzeroMagnitude]),
        "label": .int64s([7]),
        "ids": .int64s([.min, -1, 0, 1, 127, 128, 300, .max]),
        "raw": .bytes([[0xFF, 0x00, 0xC3], [], Array("text".utf8)]),
        "empty_floats": .floats([]),
        "empty_ints": .int64s([]),
        "empty_bytes": .bytes([]),
    ])

    func testSerializeParseRoundTrip() throws {
        let bytes = sample.serialized()
        XCTAssertEqual(try Example(serialized: bytes), sample)
        XCTAssertEqual(bytes, sample.serialized(), "deterministic")
        XCTAssertEqual(try Example(serialized: Example().serialized()), Example())
        XCTAssertEqual(try Example(serialized: []), Example(), "an empty record is an Example without features")
    }

    /// Re-encoding what TensorFlow wrote gives an Example TensorFlow's values survive.
    func testReencodesTensorFlowExamples() throws {
        for record in try TFRecordReader.readAll(path: DataTestFiles.tfShard) {
            let example = try Example(serialized: record)
            XCTAssertEqual(try Example(serialized: example.serialized()), example)
        }
    }

    /// proto3 parsers must accept repeated scalars unpacked (one tag per value) as well as packed.
    func testUnpackedRepeatedFieldsParse() throws {
        func field(_ number: UInt8, _ payload: [UInt8]) -> [UInt8] {
            [number << 3 | 2, UInt8(payload.count)] + payload
        }
        func le32(_ f: Float) -> [UInt8] { withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) } }
        // FloatList: 1.5 and -2 each as `value` with wire type 5 (tag 0x0D), then 4 packed.
        let floatList = [0x0D] + le32(1.5) + [0x0D] + le32(-2) + field(1, le32(4))
        // Int64List: 3 and -1 each as `value` with wire type 0 (tag 0x08), then 5 packed.
        let minusOne: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        let intList = [0x08, 0x03, 0x08] + minusOne + field(1, [0x05])
        let entries =
            field(1, field(1, Array("f".utf8)) + field(2, field(2, floatList)))
            + field(1, field(1, Array("i".utf8)) + field(2, field(3, intList)))
        let example = try Example(serialized: field(1, entries))
        XCTAssertEqual(example, Example(["f": .floats([1.5, -2, 4]), "i": .int64s([3, -1, 5])]))
    }

    func testRepeatedMapKeyKeepsTheLastValue() throws {
        let first = Example(["k": .int64s([1])]).serialized()
        let second = Example(["k": .int64s([2])]).serialized()
        XCTAssertEqual(try Example(serialized: first + second)["k"], .int64s([2]))
    }

    func testGarbageIsUnparsable() {
        XCTAssertThrowsError(try Example(serialized: [0x0A, 0x05, 0x01])) { error in
            XCTAssertEqual(error as? DataError, .unparsableExample(nil))
        }
        XCTAssertThrowsError(try Example(serialized: [0xFF, 0xFF, 0xFF]))
    }
}
