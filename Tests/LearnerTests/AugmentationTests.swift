import Foundation
import XCTest

@testable import Learner

/// Augmentation transforms: exact results where the maths pins them, and draws keyed only by
/// (seed, epoch, index).
final class AugmentationTests: XCTestCase {
    /// A 5x4 RGB image with distinct values in (0, 1).
    let image = Image(height: 4, width: 5, channels: 3, pixels: (0..<60).map { Float($0 + 1) / 64 })

    func testSampleRandomIsAPureFunctionOfItsKey() {
        var a = SampleRandom(seed: 7, epoch: 2, index: 11)
        var b = SampleRandom(seed: 7, epoch: 2, index: 11)
        let drawsA = (0..<100).map { _ in a.uniform() }
        XCTAssertEqual(drawsA, (0..<100).map { _ in b.uniform() })
        for (s, e, i) in [(8 as UInt64, 2, 11), (7, 3, 11), (7, 2, 12)] {
            var c = SampleRandom(seed: s, epoch: e, index: i)
            XCTAssertNotEqual(drawsA, (0..<100).map { _ in c.uniform() })
        }
        XCTAssertTrue(drawsA.allSatisfy { $0 >= 0 && $0 < 1 })
        var d = SampleRandom(seed: 1, epoch: 0, index: 0)
        let counts = (0..<6000).reduce(into: [Int](repeating: 0, count: 6)) { hist, _ in hist[d.below(6)] += 1 }
        XCTAssertTrue(counts.allSatisfy { abs($0 - 1000) < 150 }, "\(counts)")
    }

    func testFlips() {
        var random = SampleRandom(seed: 0, epoch: 0, index: 0)
        let h = RandomHorizontalFlip(p: 1).apply(image, random: &random)
        let v = RandomVerticalFlip(p: 1).apply(image, random: &random)
        for y in 0..<4 {
            for x in 0..<5 {
                for c in 0..<3 {
                    XCTAssertEqual(h[y, x, c], image[y, 4 - x, c])
                    XCTAssertEqual(v[y, x, c], image[3 - y, x, c])
                }
            }
        }
        XCTAssertEqual(RandomHorizontalFlip(p: 0).apply(image, random: &random), image)
    }

    /// A padded random crop is the image shifted by whole pixels, with `fill` where it moved in.
    func testRandomCropIsAShiftedWindow() {
        for index in 0..<20 {
            var random = SampleRandom(seed: 3, epoch: 0, index: index)
            let out = RandomCrop(height: 4, width: 5, padding: 2, fill: -1).apply(image, random: &random)
            XCTAssertEqual([out.height, out.width, out.channels], [4, 5, 3])
            // Find the shift from a pixel that came from the image.
            guard let at = out.pixels.firstIndex(where: { $0 >= 0 }) else { continue }
            let value = out.pixels[at]
            let source = Int((value * 64).rounded()) - 1
            let (dy, dx) = (source / 15 - at / 15, (source % 15) / 3 - (at % 15) / 3)
            XCTAssertTrue(abs(dy) <= 2 && abs(dx) <= 2)
            for y in 0..<4 {
                for x in 0..<5 {
                    let (sy, sx) = (y + dy, x + dx)
                    let inside = sy >= 0 && sy < 4 && sx >= 0 && sx < 5
                    XCTAssertEqual(out[y, x, 1], inside ? image[sy, sx, 1] : -1)
                }
            }
        }
    }

    func testRandomResizedCropShapeAndIdentity() {
        var random = SampleRandom(seed: 1, epoch: 0, index: 0)
        let out = RandomResizedCrop(height: 7, width: 3).apply(image, random: &random)
        XCTAssertEqual([out.height, out.width, out.channels], [7, 3, 3])
        XCTAssertTrue(out.pixels.allSatisfy { $0 > 0 && $0 < 1 }, "interpolates inside the image")
        let whole = RandomResizedCrop(height: 4, width: 5, scale: 1...1, ratio: 1.25...1.25).apply(
            image, random: &random)
        XCTAssertEqual(whole, image)
    }

    func testRotationAndPerspectiveWithoutMovementAreIdentity() {
        var random = SampleRandom(seed: 1, epoch: 0, index: 0)
        XCTAssertEqual(RandomRotation(degrees: 0).apply(image, random: &random), image)
        let still = RandomPerspective(distortion: 0, p: 1).apply(image, random: &random)
        XCTAssertEqual(still.pixels.count, image.pixels.count)
        for (a, b) in zip(still.pixels, image.pixels) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    /// A 180° turn maps pixel (y, x) to (h-1-y, w-1-x) exactly (up to rounding of cos/sin).
    func testHalfTurnRotatesAboutTheCentre() {
        var random = SampleRandom(seed: 1, epoch: 0, index: 0)
        let turned = RandomRotation(angles: 180...180, fill: -1).apply(image, random: &random)
        let quarter = RandomRotation(angles: 90...90, fill: -1).apply(
            Image(height: 3, width: 3, channels: 1, pixels: (0..<9).map(Float.init)), random: &random)
        XCTAssertEqual(
            quarter.pixels.map { $0.rounded() }, [2, 5, 8, 1, 4, 7, 0, 3, 6], "a quarter turn anticlockwise")
        for y in 1..<3 {
            for x in 1..<4 { XCTAssertEqual(turned[y, x, 0], image[3 - y, 4 - x, 0], accuracy: 2e-3) }
        }
    }

    func testHomographyMapsTheCorners() throws {
        let from = [(0.0, 0.0), (4.0, 0.0), (4.0, 3.0), (0.0, 3.0)]
        let to = [(0.5, 0.2), (3.9, 0.1), (3.6, 2.7), (0.3, 2.9)]
        let m = try XCTUnwrap(homography(from: from, to: to))
        for ((x, y), (u, v)) in zip(from, to) {
            let z = m[6] * x + m[7] * y + m[8]
            XCTAssertEqual((m[0] * x + m[1] * y + m[2]) / z, u, accuracy: 1e-9)
            XCTAssertEqual((m[3] * x + m[4] * y + m[5]) / z, v, accuracy: 1e-9)
        }
    }

    func testColorJitter() {
        var random = SampleRandom(seed: 2, epoch: 0, index: 0)
        XCTAssertEqual(ColorJitter().apply(image, random: &random), image)
        let small = Image(height: 4, width: 5, channels: 3, pixels: image.pixels.map { $0 / 2 })
        let bright = ColorJitter(brightness: 0.4).apply(small, random: &random)
        let factor = bright.pixels[0] / small.pixels[0]
        XCTAssertTrue(factor >= 0.6 && factor <= 1.4)
        for (a, b) in zip(bright.pixels, small.pixels) { XCTAssertEqual(a, b * factor, accuracy: 1e-5) }
        let jittered = ColorJitter(brightness: 0.5, contrast: 0.5, saturation: 0.5).apply(image, random: &random)
        XCTAssertTrue(jittered.pixels.allSatisfy { $0 >= 0 && $0 <= 1 })
        // A grey image is unchanged by saturation.
        let grey = Image(
            height: 2, width: 2, channels: 3, pixels: [0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 0.9, 0.9, 0.9, 0, 0, 0])
        for (a, b) in zip(ColorJitter(saturation: 0.9).apply(grey, random: &random).pixels, grey.pixels) {
            XCTAssertEqual(a, b, accuracy: 1e-6)
        }
    }

    func testNormalize() {
        var random = SampleRandom(seed: 0, epoch: 0, index: 0)
        let out = Normalize(mean: [0.5, 0.25, 0], std: [0.5, 0.25, 2]).apply(image, random: &random)
        for p in 0..<20 {
            XCTAssertEqual(out.pixels[3 * p], (image.pixels[3 * p] - 0.5) / 0.5, accuracy: 1e-6)
            XCTAssertEqual(out.pixels[3 * p + 1], (image.pixels[3 * p + 1] - 0.25) / 0.25, accuracy: 1e-6)
            XCTAssertEqual(out.pixels[3 * p + 2], image.pixels[3 * p + 2] / 2, accuracy: 1e-6)
        }
    }

    /// A whole composed pipeline gives identical output for the same key, run concurrently.
    func testComposedTransformIsDeterministicAcrossThreads() {
        let transform = Compose([
            RandomResizedCrop(height: 6, width: 6), RandomHorizontalFlip(), RandomRotation(degrees: 15),
            RandomPerspective(distortion: 0.3), ColorJitter(brightness: 0.2, contrast: 0.2, saturation: 0.2),
            Normalize(mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2]),
        ])
        let image = image
        @Sendable func run(_ index: Int) -> Image {
            var random = SampleRandom(seed: 42, epoch: 1, index: index)
            return transform.apply(image, random: &random)
        }
        let serial = (0..<16).map(run)
        let parallel = Locked([Image?](repeating: nil, count: 16))
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let out = run(15 - i)
            parallel.withLock { $0[i] = out }
        }
        XCTAssertEqual(parallel.current.reversed().map { $0! }, serial)
        XCTAssertNotEqual(serial[0], serial[1])
    }
}
