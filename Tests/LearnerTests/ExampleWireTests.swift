import CLearner
import Learner
import XCTest

/// The wire-format scan behind `Example(serialized:)` against the protobuf-c generated parser,
/// and the protobuf rules it has to follow on its own.
final class ExampleWireTests: XCTestCase {
    private func field(_ number: UInt8, _ payload: [UInt8]) -> [UInt8] {
        precondition(payload.count < 128)
        return [number << 3 | 2, UInt8(payload.count)] + payload
    }

    private func entry(_ key: String, _ feature: [UInt8]) -> [UInt8] {
        field(1, field(1, Array(key.utf8)) + field(2, feature))
    }

    private func le32(_ f: Float) -> [UInt8] { withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) } }

    private func check(_ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBufferPointer { tl_example_reference_check($0.baseAddress, $0.count) }
    }

    private var records: [[UInt8]] {
        get throws {
            let sample = Example([
                "f": .floats([1, -2.5, 3]), "i": .int64s([.min, -1, 0, 300, .max]),
                "b": .bytes([[1, 2, 3], [], [0xFF]]), "e": .floats([]),
            ])
            return try [sample.serialized()] + Array(TFRecordReader.readAll(path: DataTestFiles.tfShard).prefix(3))
        }
    }

    func testAgreesWithProtobufCOnRecords() throws {
        for record in try records {
            XCTAssertEqual(check(record), 1)
        }
    }

    /// Every truncation and many single-byte changes of real records: both parsers accept (with
    /// the same values) or both reject.
    func testAgreesWithProtobufCOnDamagedRecords() throws {
        var accepted = 0
        var rejected = 0
        var state: UInt64 = 7
        func random() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for record in try records {
            let record = Array(record.prefix(600))  // the head holds every kind of field
            for cut in 0..<record.count {
                let result = check(Array(record.prefix(cut)))
                XCTAssertGreaterThanOrEqual(result, 0, "cut at \(cut)")
                if result == 1 { accepted += 1 } else { rejected += 1 }
            }
            for position in 0..<record.count {
                for value in [0x00, 0x80, 0xFF, random(), random()] as [UInt8] {
                    var damaged = record
                    damaged[position] = value
                    var result = check(damaged)
                    if result == -2, protobufCRejectsMergingEmpties(damaged) { result = 1 }
                    XCTAssertGreaterThanOrEqual(result, 0, "byte \(position) set to \(value)")
                    if result == 1 { accepted += 1 } else { rejected += 1 }
                }
            }
        }
        XCTAssertGreaterThan(accepted, 100)
        XCTAssertGreaterThan(rejected, 100)
    }

    /// protobuf-c fails to merge two empty `value` messages of one map entry (`12 00 12 00`), which
    /// protobuf allows; the scan accepts them as a feature without a list, that is, an absent one.
    private func protobufCRejectsMergingEmpties(_ bytes: [UInt8]) -> Bool {
        bytes.indices.dropLast(3).contains { bytes[$0...$0 + 3] == [0x12, 0x00, 0x12, 0x00] }
    }

    func testTwoEmptyValuesMakeAnAbsentFeature() throws {
        let bytes = field(1, field(1, field(1, Array("k".utf8)) + [0x12, 0x00, 0x12, 0x00]) + entry("j", field(3, [])))
        XCTAssertEqual(try Example(serialized: bytes), Example(["j": .int64s([])]))
    }

    func testUnknownFieldsAreSkippedAtEveryLevel() throws {
        let varint: [UInt8] = [0x78, 0x01]  // field 15, varint
        let fixed64: [UInt8] = [0x79] + [UInt8](repeating: 9, count: 8)  // field 15, fixed64
        let floatList = varint + field(1, le32(2)) + fixed64
        let feature = fixed64 + field(2, floatList) + varint
        let bytes = varint + field(1, varint + entry("k", feature) + fixed64) + field(9, [1, 2])
        XCTAssertEqual(check(bytes), 1)
        XCTAssertEqual(try Example(serialized: bytes), Example(["k": .floats([2])]))
    }

    /// A later member of the `kind` oneof replaces an earlier one; the same member twice merges,
    /// as C++ protobuf merges it (protobuf-c keeps only the last one).
    func testOneofReplacesAndRepeatedListsMerge() throws {
        let ints = field(3, field(1, [5, 6]))
        let floats = field(2, field(1, le32(1.5)))
        let replaced = field(1, entry("a", ints + floats))
        XCTAssertEqual(check(replaced), 1)
        XCTAssertEqual(try Example(serialized: replaced), Example(["a": .floats([1.5])]))
        let bytes = field(1, entry("a", ints + floats) + entry("b", floats + ints + ints))
        XCTAssertEqual(try Example(serialized: bytes), Example(["a": .floats([1.5]), "b": .int64s([5, 6, 5, 6])]))
        // The same through two `value` fields of one map entry, which merge.
        let split = field(1, field(1, field(1, Array("c".utf8)) + field(2, floats) + field(2, ints) + field(2, ints)))
        XCTAssertEqual(try Example(serialized: split), Example(["c": .int64s([5, 6, 5, 6])]))
    }

    func testMalformedInputIsRejected() {
        let cases: [(String, [UInt8])] = [
            ("packed floats not a multiple of 4", field(1, entry("k", field(2, field(1, [1, 2, 3, 4, 5]))))),
            ("varint of 11 bytes", field(1, entry("k", field(3, [0x08] + [UInt8](repeating: 0x80, count: 10) + [1])))),
            ("packed varint cut short", field(1, entry("k", field(3, field(1, [0x05, 0x80]))))),
            ("group wire type", [0x0B, 0x0C]),
            ("float value as varint", field(1, entry("k", field(2, [0x08, 0x01])))),
            ("features as varint", [0x08, 0x01]),
            ("length past the end", [0x0A, 0x05, 0x01]),
            ("field number 0", [0x02, 0x00]),
            ("tag of 6 bytes", [0x8A, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00]),
            ("length of 6 bytes", [0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
        ]
        for (name, bytes) in cases {
            XCTAssertEqual(check(bytes), 0, name)
            XCTAssertThrowsError(try Example(serialized: bytes), name) { error in
                XCTAssertEqual(error as? DataError, .unparsableExample(nil), name)
            }
        }
    }

    /// A tag or a length may take up to 5 bytes (a padded encoding), as protobuf reads them; one
    /// more is refused (testMalformedInputIsRejected).
    func testTagAndLengthOfFiveBytesAreRead() throws {
        let features = entry("k", field(3, field(1, [7])))
        let bytes: [UInt8] = [0x8A, 0x80, 0x80, 0x80, 0x00, UInt8(features.count) | 0x80, 0x80, 0x80, 0x80, 0x00] + features
        XCTAssertEqual(check(bytes), 1)
        XCTAssertEqual(try Example(serialized: bytes), Example(["k": .int64s([7])]))
    }

    func testManyKeysAndValues() throws {
        // More entries than the handle holds inline, and more bytes values than one chunk of views.
        var features: [String: Feature] = [:]
        for i in 0..<40 { features["key\(i)"] = .int64s([Int64(i)]) }
        features["blobs"] = .bytes((0..<200).map { [UInt8(truncatingIfNeeded: $0)] })
        let example = Example(features)
        XCTAssertEqual(try Example(serialized: example.serialized()), example)
        XCTAssertEqual(check(example.serialized()), 1)
    }
}
