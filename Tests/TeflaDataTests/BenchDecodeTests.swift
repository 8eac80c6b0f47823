import Foundation
import TestSupport
import XCTest

/// `tefla-data bench-decode` on the converted fixture images.
final class BenchDecodeTests: XCTestCase {
    func testBenchDecodeRuns() throws {
        let out = try Scratch.directory("tefla-data", for: self).appendingPathComponent("images")
        XCTAssertEqual(
            try DataTool.run(["convert", "images", DataTool.fixtures.appendingPathComponent("images").path, out.path])
                .status, 0)
        let result = try DataTool.run([
            "bench-decode", out.path, "--resize", "8", "--crop", "4", "--repeats", "1", "--json",
        ])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("\"images\": 5"), result.output)
    }
}
