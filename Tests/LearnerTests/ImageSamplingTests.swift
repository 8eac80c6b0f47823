import Foundation
import Learner
import TestSupport
import XCTest

/// The one-pass resample (decode → resize/crop/flip/normalise → HWC or CHW) against the same
/// steps done one by one on ``Image``s, and the fast JPEG DCT against TensorFlow's decode_jpeg.
final class ImageSamplingTests: XCTestCase {
    /// The 16x16 RGB images of the pipeline fixture (JPEG at even records, PNG at odd).
    private func blobs() throws -> [[UInt8]] {
        try TFRecordReader.readAll(path: ImagePipelineTests.shard).map { record in
            guard case .bytes(let values)? = try Example(serialized: record)["image/encoded"] else { return [] }
            return values[0]
        }
    }

    private func assertClose(
        _ got: [Float], _ want: [Float], _ message: String, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertEqual(got.count, want.count, message, file: file, line: line)
        let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-5, message, file: file, line: line)
    }

    private func resampled(_ pixels: DecodedPixels, _ sampling: ImageSampling, layout: PixelLayout = .hwc) -> [Float] {
        var out = [Float](repeating: .nan, count: sampling.height * sampling.width * pixels.channels)
        out.withUnsafeMutableBufferPointer { pixels.resample(sampling, layout: layout, into: $0.baseAddress!) }
        return out
    }

    /// tf.data's order (resize to 24x20, random crop 17x13, random flip) as one pass equals the
    /// Image steps, for upscaling, downscaling and both flips, with the same draws.
    func testResizeThenCropAndFlipMatchesTheSteps() throws {
        let transform = Compose([RandomCrop(height: 17, width: 13), RandomHorizontalFlip(), RandomVerticalFlip()])
        var flips = Set<[Bool]>()
        for (index, blob) in try blobs().enumerated() {
            for (height, width) in [(24, 20), (17, 13), (20, 14)] {
                try ImageDecoder.withPixels(blob, channels: 3) { pixels in
                    var random = SampleRandom(seed: 3, epoch: 1, index: index)
                    let whole = CropWindow.whole(height: height, width: width)
                    let window = try XCTUnwrap(transform.window(of: whole, random: &random))
                    flips.insert([window.flipHorizontal, window.flipVertical])
                    let sampling = ImageSampling.resized(
                        sourceHeight: pixels.height, sourceWidth: pixels.width, height: height, width: width,
                        window: window)
                    var again = SampleRandom(seed: 3, epoch: 1, index: index)
                    let want = transform.apply(pixels.image().resized(height: height, width: width), random: &again)
                    XCTAssertEqual([sampling.height, sampling.width], [want.height, want.width])
                    assertClose(resampled(pixels, sampling), want.pixels, "record \(index) at \(height)x\(width)")
                }
            }
        }
        XCTAssertEqual(flips.count, 4, "every flip combination was exercised")
    }

    /// The pipeline's order (crop and flip the decoded image, normalise, resize to the batch size)
    /// as one pass into CHW equals the Image steps.
    func testCropFlipNormaliseThenResizeIntoCHW() throws {
        let normalize = Normalize(mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3])
        let transform = Compose([RandomCrop(height: 11, width: 9), RandomHorizontalFlip(), normalize])
        for (index, blob) in try blobs().enumerated() {
            try ImageDecoder.withPixels(blob, channels: 3) { pixels in
                var random = SampleRandom(seed: 9, epoch: 0, index: index)
                let whole = CropWindow.whole(height: pixels.height, width: pixels.width)
                let window = try XCTUnwrap(transform.window(of: whole, random: &random))
                var again = SampleRandom(seed: 9, epoch: 0, index: index)
                let want = transform.apply(pixels.image(), random: &again).resized(height: 7, width: 12)
                var chw = [Float](repeating: 0, count: want.pixels.count)
                chw.withUnsafeMutableBufferPointer { want.copyCHW(to: $0.baseAddress!) }
                assertClose(
                    resampled(pixels, .window(window, height: 7, width: 12), layout: .chw), chw, "record \(index)")
            }
        }
    }

    /// ImageNet's training transform (random resized crop to 10x10, flip, normalise) as the
    /// pipeline's one pass equals `apply`'s crop-then-resize, for every draw.
    func testRandomResizedCropInOnePassEqualsTheSteps() throws {
        let normalize = Normalize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
        let transform = Compose([RandomResizedCrop(height: 10, width: 10), RandomHorizontalFlip(), normalize])
        var regions = Set<[Int]>()
        for (index, blob) in try blobs().enumerated() {
            for epoch in 0..<4 {
                try ImageDecoder.withPixels(blob, channels: 3) { pixels in
                    var random = SampleRandom(seed: 5, epoch: epoch, index: index)
                    let whole = CropWindow.whole(height: pixels.height, width: pixels.width)
                    let window = try XCTUnwrap(transform.window(of: whole, random: &random))
                    regions.insert([window.top, window.left, window.height, window.width])
                    var again = SampleRandom(seed: 5, epoch: epoch, index: index)
                    let want = transform.apply(pixels.image(), random: &again)
                    var chw = [Float](repeating: 0, count: want.pixels.count)
                    chw.withUnsafeMutableBufferPointer { want.copyCHW(to: $0.baseAddress!) }
                    assertClose(
                        resampled(pixels, .window(window, height: 10, width: 10), layout: .chw), chw,
                        "record \(index), epoch \(epoch)")
                }
            }
        }
        XCTAssertGreaterThan(regions.count, 10, "the regions vary from draw to draw")
    }

    /// Decoding only a crop's rows and iMCU columns (libjpeg-turbo's skip and crop) gives the
    /// pixels a whole decode gives there: the resampled output is the same for every window,
    /// colour (4:2:0 chroma) and grey, both DCTs.
    func testRegionDecodeEqualsTheWholeDecode() throws {
        var g = SampleRandom(seed: 11, epoch: 0, index: 0)
        for channels in [3, 1] {
            let (height, width) = (72, 90)
            let pixels = (0..<(height * width * channels)).map { i -> UInt8 in
                let p = i / channels, y = p / width, x = p % width
                return UInt8(truncatingIfNeeded: x * 3 + y * 2 + (i % channels) * 40 + Int(g.below(24)))
            }
            let jpeg = try ImageEncoder.jpeg(pixels, height: height, width: width, channels: channels, quality: 90)
            let crop = Compose([RandomResizedCrop(height: 20, width: 20), RandomHorizontalFlip()])
            var cropped = 0
            for draw in 0..<40 {
                for dct in [ImageDecoder.DCTMethod.integerFast, .integerAccurate] {
                    var random = SampleRandom(seed: 2, epoch: draw, index: channels)
                    let window = try XCTUnwrap(crop.window(of: .whole(height: height, width: width), random: &random))
                    let want = try ImageDecoder.withPixels(jpeg, channels: 3, dct: dct) {
                        resampled($0, .window(window, height: 20, width: 20), layout: .chw)
                    }
                    let got = try jpeg.withUnsafeBytes { bytes in
                        try ImageDecoder.withPixels(bytes, channels: 3, dct: dct, keeping: window) { region, moved in
                            if region.height < height || region.width < width { cropped += 1 }
                            return resampled(region, .window(moved, height: 20, width: 20), layout: .chw)
                        }
                    }
                    assertClose(got, want, "channels \(channels), draw \(draw), window \(window)")
                }
            }
            XCTAssertGreaterThan(cropped, 40, "most draws decode a part of the image")
        }
    }

    /// Same size, no transform: exactly the decoded bytes over 255 (no interpolation error).
    func testIdentityIsBytesOver255() throws {
        for blob in try blobs() {
            try ImageDecoder.withPixels(blob, channels: 1) { pixels in
                let whole = CropWindow.whole(height: pixels.height, width: pixels.width)
                let got = resampled(pixels, .window(whole, height: pixels.height, width: pixels.width))
                XCTAssertEqual(got, pixels.image().pixels)
                XCTAssertEqual(got, try ImageDecoder.decodeBytes(blob, channels: 1).pixels.map { Float($0) / 255 })
            }
        }
    }

    /// A crop after a flip lands on the mirrored part of the source; a crop that would pad, and
    /// any transform that is not crops, flips and normalisation, has no window.
    func testWindowComposition() {
        var flipped = CropWindow.whole(height: 10, width: 8)
        flipped.flipHorizontal = true
        let inner = flipped.cropped(top: 1, left: 2, height: 4, width: 3)
        XCTAssertEqual([inner?.top, inner?.left, inner?.height, inner?.width], [1, 3, 4, 3])
        XCTAssertNil(flipped.cropped(top: 0, left: 6, height: 4, width: 3))
        var random = SampleRandom(seed: 0, epoch: 0, index: 0)
        let whole = CropWindow.whole(height: 10, width: 8)
        XCTAssertNil(RandomCrop(height: 12, width: 8).window(of: whole, random: &random))
        XCTAssertNil(
            Compose([RandomHorizontalFlip(), ColorJitter(brightness: 0.2)]).window(of: whole, random: &random))
        let twice = Compose([Normalize(mean: [0], std: [1]), Normalize(mean: [0], std: [1])])
        XCTAssertNil(twice.window(of: whole, random: &random))
    }

    /// With `.integerFast` our JPEG decode is TensorFlow's `decode_jpeg` with its default
    /// `dct_method` (JDCT_IFAST), pixel for pixel; the default accurate DCT is not.
    func testFastDCTMatchesTensorFlowDecodeJPEG() throws {
        let python = try PeerPython.interpreter(with: ["tensorflow", "numpy"])
        let dir = try Scratch.directory("tefla-data", for: self)
        let file = dir.appendingPathComponent("smooth.jpg").path
        let script = """
            import os, sys
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
            import numpy as np, tensorflow as tf
            y, x = np.mgrid[0:48, 0:64]
            image = np.stack([(3 * x + y) % 256, (x * y) % 256, (5 * y) % 256], -1).astype(np.uint8)
            blob = tf.io.encode_jpeg(image, quality=85).numpy()
            open(sys.argv[1], "wb").write(blob)
            print(",".join(str(v) for v in tf.io.decode_jpeg(blob, channels=3).numpy().ravel()))
            """
        let peer = try PeerPython.run(python, ["-c", script, file])
        let (status, output) = (peer.status, peer.output)
        XCTAssertEqual(status, 0, output)
        let want = output.split(separator: "\n").last.map { $0.split(separator: ",").compactMap { UInt8($0) } } ?? []
        XCTAssertEqual(want.count, 48 * 64 * 3, output)
        let blob = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        let fast = try ImageDecoder.withPixels(blob, channels: 3, dct: .integerFast) { $0.image().pixels }
        XCTAssertEqual(fast, want.map { Float($0) / 255 })
        let accurate = try ImageDecoder.decodeBytes(blob, channels: 3).pixels
        XCTAssertNotEqual(accurate, want, "the two DCTs differ on this image, so the check above can fail")
    }
}
