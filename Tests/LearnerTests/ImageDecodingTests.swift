import Foundation
import Learner
import XCTest

/// JPEG/PNG decoding against pixels Pillow wrote or decoded (Scripts/fixtures/make_image_fixtures.py).
final class ImageDecodingTests: XCTestCase {
    static let dir = DataTestFiles.fixtures.appendingPathComponent("images")

    struct Expected: Decodable {
        var height: Int
        var width: Int
        var channels: Int
        var pixels: [Int]
    }

    private func expected() throws -> [String: Expected] {
        try JSONDecoder().decode(
            [String: Expected].self, from: Data(contentsOf: Self.dir.appendingPathComponent("expected.json")))
    }

    private func file(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: Self.dir.appendingPathComponent(name)))
    }

    /// Every lossless PNG kind (grey, RGB, RGBA, palette, 16-bit grey and RGB) decodes to exactly
    /// the pixels written; JPEGs to within 1 of Pillow's libjpeg-turbo decode.
    func testDecodesFixturesToExpectedPixels() throws {
        for (name, want) in try expected().sorted(by: { $0.key < $1.key }) {
            let got = try ImageDecoder.decodeBytes(try file(name))
            XCTAssertEqual([got.height, got.width, got.channels], [want.height, want.width, want.channels], name)
            let tolerance = name.hasSuffix(".jpg") ? 1 : 0
            let worst = zip(got.pixels, want.pixels).map { abs(Int($0) - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, tolerance, name)
            XCTAssertEqual(got.pixels.count, want.pixels.count, name)
        }
    }

    func testFloatDecodeIsBytesOver255() throws {
        let bytes = try ImageDecoder.decodeBytes(try file("rgb.png"))
        let image = try ImageDecoder.decode(try file("rgb.png"))
        XCTAssertEqual([image.height, image.width, image.channels], [4, 5, 3])
        XCTAssertEqual(image.pixels, bytes.pixels.map { Float($0) / 255 })
        XCTAssertEqual(ImageDecoder.format(of: try file("rgb.png")), .png)
        XCTAssertEqual(ImageDecoder.format(of: try file("rgb.jpg")), .jpeg)
    }

    func testChannelConversion() throws {
        let rgb = try ImageDecoder.decodeBytes(try file("rgb.png"))
        let grey = try ImageDecoder.decodeBytes(try file("rgb.png"), channels: 1)
        XCTAssertEqual(grey.channels, 1)
        for i in 0..<20 {
            let (r, g, b) = (Double(rgb.pixels[3 * i]), Double(rgb.pixels[3 * i + 1]), Double(rgb.pixels[3 * i + 2]))
            XCTAssertEqual(Double(grey.pixels[i]), (0.299 * r + 0.587 * g + 0.114 * b).rounded(), accuracy: 1)
        }
        let widened = try ImageDecoder.decodeBytes(try file("grey.png"), channels: 3)
        let plain = try ImageDecoder.decodeBytes(try file("grey.png"))
        XCTAssertEqual(widened.channels, 3)
        XCTAssertEqual(widened.pixels, plain.pixels.flatMap { [$0, $0, $0] })
        XCTAssertEqual(try ImageDecoder.decodeBytes(try file("grey.jpg"), channels: 3).channels, 3)
    }

    /// Half-pixel bilinear resizing: 2x upscaling of [0, 1] gives [0, .25, .75, 1] (edges
    /// replicated), downscaling by 2 averages pixel pairs, same size is the identity.
    func testBilinearResize() {
        let row = Image(height: 1, width: 2, channels: 1, pixels: [0, 1])
        XCTAssertEqual(row.resized(height: 1, width: 4).pixels, [0, 0.25, 0.75, 1])
        let wide = Image(height: 2, width: 4, channels: 1, pixels: [0, 2, 4, 6, 8, 10, 12, 14])
        XCTAssertEqual(wide.resized(height: 1, width: 2).pixels, [5, 9])
        XCTAssertEqual(wide.resized(height: 2, width: 4), wide)
        XCTAssertEqual(try ImageDecoder.decode(try file("rgb.jpg"), size: (3, 4)).pixels.count, 3 * 4 * 3)
    }

    func testNotAnImageNamesTheProblem() throws {
        XCTAssertThrowsError(try ImageDecoder.decode([1, 2, 3, 4, 5])) { error in
            guard case .undecodableImage(let key, let message, nil)? = error as? DataError else {
                return XCTFail("got \(error)")
            }
            XCTAssertEqual(key, "image/encoded")
            XCTAssertTrue(message.contains("not a JPEG or PNG"), message)
        }
        // Cut inside the compressed data: an error, not an image padded with grey.
        for name in ["rgb.jpg", "rgb.png"] {
            let whole = try file(name)
            XCTAssertThrowsError(try ImageDecoder.decode(Array(whole.prefix(whole.count * 4 / 5))), name)
        }
        // A real header followed by garbage: the library's own message comes through.
        for name in ["rgb.jpg", "rgb.png"] {
            let cut = Array(try file(name).prefix(40))
            XCTAssertThrowsError(try ImageDecoder.decode(cut), name) { error in
                guard case .undecodableImage(_, let message, _)? = error as? DataError else {
                    return XCTFail("got \(error)")
                }
                XCTAssertFalse(message.isEmpty)
                let located = (error as? DataError)?.located(
                    at: RecordLocation(file: "f.tfrecord", record: 4, offset: 99))
                XCTAssertTrue("\(located.map { "\($0)" } ?? "")".contains("record 4 at byte offset 99 of f.tfrecord"))
            }
        }
    }

    /// A JPEG whose header claims 20,000 × 20,000 pixels (its data holds a few KB) is refused
    /// before the pixels are allocated; the limit is ImageDecoder.maximumPixels.
    func testImageOverThePixelLimitIsRefused() throws {
        var bomb = try file("rgb.jpg")
        let sof = try XCTUnwrap(bomb.indices.dropLast().first { bomb[$0] == 0xFF && bomb[$0 + 1] == 0xC0 })
        bomb.replaceSubrange(sof + 5..<sof + 9, with: [0x4E, 0x20, 0x4E, 0x20])  // height, width 20000
        XCTAssertEqual(ImageDecoder.maximumPixels, 178_956_970)
        XCTAssertThrowsError(try ImageDecoder.decodeBytes(bomb)) { error in
            guard case .undecodableImage(_, let message, _)? = error as? DataError else { return XCTFail("got \(error)") }
            XCTAssertTrue(message.contains("20000 x 20000 pixels is over the limit"), message)
        }
        let image = try ImageDecoder.decodeBytes(try file("rgb.jpg"))
        let pixels = image.height * image.width
        defer { ImageDecoder.maximumPixels = 178_956_970 }
        ImageDecoder.maximumPixels = pixels
        XCTAssertEqual(try ImageDecoder.decodeBytes(try file("rgb.jpg")).pixels, image.pixels)
        ImageDecoder.maximumPixels = pixels - 1
        XCTAssertThrowsError(try ImageDecoder.decodeBytes(try file("rgb.jpg")))
        // PNG too (5 × 4 pixels), through the reusable buffer as well.
        ImageDecoder.maximumPixels = 20
        XCTAssertEqual(try ImageDecoder.withPixels(try file("rgb.png")) { $0.height * $0.width }, 20)
        ImageDecoder.maximumPixels = 19
        XCTAssertThrowsError(try ImageDecoder.withPixels(try file("rgb.png")) { _ in })
    }
}
