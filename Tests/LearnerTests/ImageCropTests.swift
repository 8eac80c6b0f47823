import Learner
import XCTest

/// The row-copy fast path of `Image.cropped` gives exactly what the bilinear warp gives.
final class ImageCropTests: XCTestCase {
    func testInsideCropEqualsWarp() {
        let pixels: [Float] = (0..<189).map { (i: Int) -> Float in Float(i % 17) / 16 - 0.3 }
        let image = Image(height: 7, width: 9, channels: 3, pixels: pixels)
        let rectangles: [(Int, Int, Int, Int)] = [(0, 0, 7, 9), (1, 2, 4, 5), (6, 8, 1, 1), (0, 3, 7, 2), (2, 2, 0, 3)]
        for (top, left, height, width) in rectangles {
            let fast = image.cropped(top: top, left: left, height: height, width: width)
            let warped = image.warped(
                matrix: [1, 0, Double(left), 0, 1, Double(top), 0, 0, 1], height: height, width: width, fill: 0)
            XCTAssertEqual(fast, warped, "crop \(top),\(left) \(height)x\(width)")
        }
        // Partly outside: padded with the fill value, through the warp.
        let padded = image.cropped(top: -1, left: 0, height: 2, width: 1, fill: 5)
        XCTAssertEqual(Array(padded.pixels[0..<3]), [5, 5, 5])
        XCTAssertEqual(Array(padded.pixels[3..<6]), Array(pixels[0..<3]))
    }
}
