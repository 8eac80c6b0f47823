import Learner
import XCTest

/// The encoders and the antialiased resize that `tefla-data convert images --resize` uses.
final class ImageEncoderTests: XCTestCase {
    private func gradient(height: Int, width: Int, channels: Int) -> [UInt8] {
        (0..<(height * width * channels)).map { i in UInt8((i * 7 + (i / (width * channels)) * 13) % 256) }
    }

    func testPNGRoundTripsExactlyAndJPEGClosely() throws {
        for channels in [1, 3] {
            let pixels = gradient(height: 9, width: 14, channels: channels)
            let png = try ImageEncoder.png(pixels, height: 9, width: 14, channels: channels)
            XCTAssertEqual(ImageDecoder.format(of: png), .png)
            let back = try ImageDecoder.decodeBytes(png)
            XCTAssertEqual([back.height, back.width, back.channels], [9, 14, channels])
            XCTAssertEqual(back.pixels, pixels, "PNG is lossless")

            let smooth = (0..<(32 * 48 * channels)).map { i in UInt8((i / channels) % 48 * 5) }
            let jpeg = try ImageEncoder.jpeg(smooth, height: 32, width: 48, channels: channels, quality: 95)
            XCTAssertEqual(ImageDecoder.format(of: jpeg), .jpeg)
            let decoded = try ImageDecoder.decodeBytes(jpeg)
            XCTAssertEqual([decoded.height, decoded.width, decoded.channels], [32, 48, channels])
            let error = zip(decoded.pixels, smooth).map { abs(Int($0) - Int($1)) }.reduce(0, +) / smooth.count
            XCTAssertLessThanOrEqual(error, 3, "quality 95: mean absolute error \(error)")
        }
    }

    /// Shrinking a 1-pixel checkerboard 4× averages it to grey (antialiased); plain bilinear
    /// sampling would keep picking whole black or white pixels.
    func testShrinkingAveragesEverySourcePixel() {
        let board = (0..<(16 * 16)).map { i in UInt8((i / 16 + i % 16) % 2 == 0 ? 0 : 255) }
        let small = ImageEncoder.resized(board, height: 16, width: 16, channels: 1, toHeight: 4, toWidth: 4)
        XCTAssertEqual(small.count, 16)
        for v in small { XCTAssertTrue((118...137).contains(Int(v)), "\(small)") }
        let flat = [UInt8](repeating: 77, count: 5 * 7 * 3)
        XCTAssertEqual(
            ImageEncoder.resized(flat, height: 5, width: 7, channels: 3, toHeight: 11, toWidth: 3),
            [UInt8](repeating: 77, count: 11 * 3 * 3))
        XCTAssertEqual(ImageEncoder.size(height: 300, width: 500, shorterSide: 224).height, 224)
        XCTAssertEqual(ImageEncoder.size(height: 300, width: 500, shorterSide: 224).width, 373)
        XCTAssertEqual(ImageEncoder.size(height: 500, width: 300, shorterSide: 224).height, 373)
    }
}
