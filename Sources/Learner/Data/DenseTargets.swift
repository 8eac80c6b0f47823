import CLearner
import Foundation

/// A label that is itself an image of the input's size: what dense prediction trains on.
public enum DenseLabel: Sendable, Equatable {
    /// A PNG of class indices, one per pixel (DeepLab's `image/segmentation/class/encoded`):
    /// resampled by nearest neighbour, never normalised or colour-jittered; pixels a rotation or
    /// warp uncovers take `fill` (255: DeepLab's ignore label, so they count nowhere).
    case classMask(fill: Float = 255)
    /// A target image of `channels` channels (a PNG of 8 or 16 bits, kept at its precision, or
    /// a JPEG; scaled to [0, 1]): resampled bilinearly like the input, never colour-jittered or
    /// normalised.
    case targetImage(channels: Int)

    /// Channels per pixel of the label.
    public var channels: Int {
        switch self {
        case .classMask: return 1
        case .targetImage(let channels): return channels
        }
    }
}

/// A dense label travelling with its image through the augmentation (see
/// ``ImageTransform/apply(_:target:random:)``).
public struct DenseTarget: Sendable, Equatable {
    public var image: Image
    /// Class indices (nearest-neighbour resampling) rather than intensities (bilinear).
    public var isMask: Bool
    /// What pixels from outside the label take (the ignore label for masks, 0 for images).
    public var fill: Float

    public init(image: Image, isMask: Bool, fill: Float) {
        self.image = image
        self.isMask = isMask
        self.fill = fill
    }

    func with(_ image: Image) -> DenseTarget { DenseTarget(image: image, isMask: isMask, fill: fill) }

    /// Warped by the projective map of ``Image/warped(matrix:height:width:fill:)``; `fill` nil
    /// replicates the edges (resizing), otherwise uncovered pixels take the target's fill.
    func warped(matrix: [Double], height: Int, width: Int, fillsOutside: Bool) -> DenseTarget {
        with(
            isMask
                ? image.warpedNearest(matrix: matrix, height: height, width: width, fill: fillsOutside ? fill : nil)
                : image.warped(matrix: matrix, height: height, width: width, fill: fillsOutside ? fill : nil))
    }

    func resized(height: Int, width: Int) -> DenseTarget {
        if height == image.height && width == image.width { return self }
        let sx = Double(image.width) / Double(width), sy = Double(image.height) / Double(height)
        return warped(matrix: [sx, 0, 0, 0, sy, 0, 0, 0, 1], height: height, width: width, fillsOutside: false)
    }

    func cropped(top: Int, left: Int, height: Int, width: Int) -> DenseTarget {
        with(image.cropped(top: top, left: left, height: height, width: width, fill: fill))
    }
}

extension Image {
    /// A PNG decoded at its own precision (16-bit values / 65535; see `tl_png_decode_float`), or
    /// nil when `data` is not a PNG.
    public static func decodingPNGAtFullPrecision(_ data: UnsafeRawBufferPointer, key: String) throws -> Image? {
        guard ImageDecoder.format(of: data) == .png else { return nil }
        var pixels: UnsafeMutablePointer<Float>?
        var (h, w, c, depth): (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
        var message = [CChar](repeating: 0, count: 256)
        let rc = tl_png_decode_float(
            data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, &pixels, &h, &w, &c, &depth, &message, message.count)
        guard rc == 0, let pixels else {
            throw DataError.undecodableImage(key: key, message: cMessage(message), at: nil)
        }
        defer { free(pixels) }
        let count = Int(h) * Int(w) * Int(c)
        return Image(height: Int(h), width: Int(w), channels: Int(c), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
    }

    /// The image warped by `matrix` (as ``warped(matrix:height:width:fill:)``), each output
    /// pixel taking the value of the source pixel its centre falls in: class masks keep their
    /// classes. `fill` nil clamps to the edge.
    public func warpedNearest(matrix m: [Double], height: Int, width: Int, fill: Float? = nil) -> Image {
        precondition(m.count == 9, "a projective matrix has 9 entries")
        var out = [Float](repeating: fill ?? 0, count: height * width * channels)
        for y in 0..<height {
            for x in 0..<width {
                let (px, py) = (Double(x) + 0.5, Double(y) + 0.5)
                let w = m[6] * px + m[7] * py + m[8]
                let sx = (m[0] * px + m[1] * py + m[2]) / w, sy = (m[3] * px + m[4] * py + m[5]) / w
                var ix = Int(sx.rounded(.down)), iy = Int(sy.rounded(.down))
                if ix < 0 || iy < 0 || ix >= self.width || iy >= self.height {
                    guard fill == nil else { continue }
                    ix = Swift.min(Swift.max(ix, 0), self.width - 1)
                    iy = Swift.min(Swift.max(iy, 0), self.height - 1)
                }
                for c in 0..<channels { out[(y * width + x) * channels + c] = pixels[(iy * self.width + ix) * channels + c] }
            }
        }
        return Image(height: height, width: width, channels: channels, pixels: out)
    }
}

// The geometric transforms move the target with the image, from the same draws.

extension Compose {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        transforms.reduce((image: image, target: target)) { $1.apply($0.image, target: $0.target, random: &random) }
    }
}

extension RandomHorizontalFlip {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        guard random.chance(p) else { return (image, target) }
        return (flippedImage(image, horizontal: true), target.with(flippedImage(target.image, horizontal: true)))
    }
}

extension RandomVerticalFlip {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        guard random.chance(p) else { return (image, target) }
        return (flippedImage(image, horizontal: false), target.with(flippedImage(target.image, horizontal: false)))
    }
}

extension RandomCrop {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        let (top, left) = position(height: image.height, width: image.width, random: &random)
        return (
            image.cropped(top: top, left: left, height: height, width: width, fill: fill),
            target.cropped(top: top, left: left, height: height, width: width)
        )
    }
}

extension RandomResizedCrop {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        let r = region(height: image.height, width: image.width, random: &random)
        return (
            image.cropped(top: r.top, left: r.left, height: r.height, width: r.width).resized(height: height, width: width),
            target.cropped(top: r.top, left: r.left, height: r.height, width: r.width).resized(height: height, width: width)
        )
    }
}

extension CenterCrop {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        guard let w = window(of: .whole(height: image.height, width: image.width), random: &random) else { return (image, target) }
        return (
            image.cropped(top: w.top, left: w.left, height: w.height, width: w.width, fill: 0),
            target.cropped(top: w.top, left: w.left, height: w.height, width: w.width)
        )
    }
}

extension RandomRotation {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        let m = matrix(height: image.height, width: image.width, random: &random)
        return (
            image.warped(matrix: m, height: image.height, width: image.width, fill: fill),
            target.warped(matrix: m, height: image.height, width: image.width, fillsOutside: true)
        )
    }
}

extension RandomPerspective {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        guard let m = matrix(height: image.height, width: image.width, random: &random) else { return (image, target) }
        return (
            image.warped(matrix: m, height: image.height, width: image.width, fill: fill),
            target.warped(matrix: m, height: image.height, width: image.width, fillsOutside: true)
        )
    }
}

extension Resize {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        (image.resized(height: height, width: width), target.resized(height: height, width: width))
    }
}
