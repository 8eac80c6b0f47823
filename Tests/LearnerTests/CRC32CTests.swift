import CLearner
import XCTest

/// CRC32C against published check values (RFC 3720 §B.4, the common "123456789" check) and the
/// SSE4.2 path against the table path.
final class CRC32CTests: XCTestCase {
    private func crc(_ bytes: [UInt8]) -> UInt32 { tl_crc32c_extend(0, bytes, bytes.count) }
    private func tableCRC(_ bytes: [UInt8]) -> UInt32 { tl_crc32c_extend_table(0, bytes, bytes.count) }

    func testKnownVectors() {
        let vectors: [([UInt8], UInt32)] = [
            (Array("123456789".utf8), 0xE306_9283),
            ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
            ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
            ((0..<32).map { UInt8($0) }, 0x46DD_794E),
            ((0..<32).map { UInt8(31 - $0) }, 0x113F_DB5C),
            ([], 0),
        ]
        for (bytes, expected) in vectors {
            XCTAssertEqual(crc(bytes), expected, "bytes \(bytes.prefix(9))")
            XCTAssertEqual(tableCRC(bytes), expected, "table, bytes \(bytes.prefix(9))")
        }
    }

    func testMaskedCRC() {
        // TensorFlow's mask: rotate right by 15, add 0xa282ead8.
        let bytes = Array("123456789".utf8)
        let c: UInt32 = 0xE306_9283
        XCTAssertEqual(tl_masked_crc32c(bytes, bytes.count), ((c >> 15) | (c << 17)) &+ 0xA282_EAD8)
        XCTAssertEqual(tl_masked_crc32c(nil, 0), 0xA282_EAD8)
    }

    func testExtendContinuesAcrossPieces() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let head = tl_crc32c_extend(0, bytes, split)
            let whole = bytes.withUnsafeBytes { buf in tl_crc32c_extend(head, buf.baseAddress! + split, 1000 - split) }
            XCTAssertEqual(whole, crc(bytes), "split at \(split)")
        }
    }

    func testHardwareAndTableAgreeOnRandomData() {
        #if arch(x86_64)
            XCTAssertEqual(tl_crc32c_uses_hardware(), 1, "every x86-64 CPU this runs on has SSE4.2")
        #endif
        var rng = CRCTestRandom(seed: 42)
        let pool = (0..<9300).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        pool.withUnsafeBytes { buf in
            // Around the three-stream block sizes (3 × 128 and 3 × 1024 bytes) too.
            let threeWay = [383, 384, 385, 391, 767, 768, 1000, 3071, 3072, 3080, 3455, 3456, 4096, 4400, 9216]
            for length in Array(0...80) + [127, 128, 129, 255, 256] + threeWay {
                for align in 0..<8 {
                    let p = buf.baseAddress! + align
                    let seed = UInt32(truncatingIfNeeded: rng.next())
                    XCTAssertEqual(
                        tl_crc32c_extend(seed, p, length), tl_crc32c_extend_table(seed, p, length),
                        "length \(length), alignment \(align)")
                }
            }
        }
    }
}

/// A tiny seeded generator so the random test is the same on every run.
private struct CRCTestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
