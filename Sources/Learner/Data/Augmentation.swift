import CLearner
import Foundation

/// One step of training-time augmentation on an HWC ``Image``.
///
/// A transform is a pure function of the image and the sample's ``SampleRandom``: the same
/// (seed, epoch, index) always gives the same output, whichever thread runs it. Geometric
/// transforms go through one projective bilinear warp in C (`tl_warp_bilinear_f32`), colour ones
/// through one C loop.
public protocol ImageTransform: Sendable {
    func apply(_ image: Image, random: inout SampleRandom) -> Image
    /// The transform of an image and its dense label (a segmentation mask or a target image):
    /// a geometric change moves both alike, from the same draws (a mask resampled by nearest
    /// neighbour, so classes never blend); a photometric one (colour, normalisation) changes
    /// the image alone. The default is the photometric rule; geometric transforms implement it.
    func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget)
}

extension ImageTransform {
    public func apply(_ image: Image, target: DenseTarget, random: inout SampleRandom) -> (image: Image, target: DenseTarget) {
        (apply(image, random: &random), target)
    }
}

/// Transforms applied in order.
public struct Compose: ImageTransform {
    public var transforms: [any ImageTransform]

    public init(_ transforms: [any ImageTransform]) { self.transforms = transforms }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        transforms.reduce(image) { $1.apply($0, random: &random) }
    }
}

/// Mirrors left-right with probability `p`.
public struct RandomHorizontalFlip: ImageTransform {
    public var p: Float
    public init(p: Float = 0.5) { self.p = p }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        guard random.chance(p) else { return image }
        return flippedImage(image, horizontal: true)
    }
}

/// Mirrors top-bottom with probability `p`.
public struct RandomVerticalFlip: ImageTransform {
    public var p: Float
    public init(p: Float = 0.5) { self.p = p }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        guard random.chance(p) else { return image }
        return flippedImage(image, horizontal: false)
    }
}

func flippedImage(_ image: Image, horizontal: Bool) -> Image {
    var out = image
    out.pixels.withUnsafeMutableBufferPointer {
        tl_image_flip_f32(
            $0.baseAddress, Int32(image.height), Int32(image.width), Int32(image.channels), horizontal ? 1 : 0)
    }
    return out
}

/// Pads each side by `padding` pixels of `fill`, then cuts a random `height` x `width` window
/// (torchvision's `RandomCrop(size, padding)`, the CIFAR recipe).
public struct RandomCrop: ImageTransform {
    public var height: Int
    public var width: Int
    public var padding: Int
    public var fill: Float

    public init(height: Int, width: Int, padding: Int = 0, fill: Float = 0) {
        self.height = height
        self.width = width
        self.padding = padding
        self.fill = fill
    }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        let (top, left) = position(height: image.height, width: image.width, random: &random)
        return image.cropped(top: top, left: left, height: height, width: width, fill: fill)
    }

    /// The window's top-left pixel in a `height` x `width` image (negative or beyond: padding).
    func position(height imageHeight: Int, width imageWidth: Int, random: inout SampleRandom) -> (Int, Int) {
        let top = random.below(max(imageHeight + 2 * padding - height, 0) + 1) - padding
        let left = random.below(max(imageWidth + 2 * padding - width, 0) + 1) - padding
        return (top, left)
    }
}

/// A random area fraction in `scale` and aspect ratio (log-uniform) in `ratio` of the image,
/// resized to `height` x `width` (Inception's crop, torchvision's `RandomResizedCrop`); after
/// ten failed tries, the central crop of the clamped ratio.
public struct RandomResizedCrop: ImageTransform {
    public var height: Int
    public var width: Int
    public var scale: ClosedRange<Float>
    public var ratio: ClosedRange<Float>

    public init(
        height: Int, width: Int, scale: ClosedRange<Float> = 0.08...1, ratio: ClosedRange<Float> = 0.75...(4.0 / 3.0)
    ) {
        self.height = height
        self.width = width
        self.scale = scale
        self.ratio = ratio
    }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        let r = region(height: image.height, width: image.width, random: &random)
        // Crop, then resize: the edges the resize replicates are the crop's (torchvision's
        // `resized_crop`), as the pipeline's one-pass window gives them.
        return image.cropped(top: r.top, left: r.left, height: r.height, width: r.width).resized(height: height, width: width)
    }

    /// The region of a `height` × `width` image to keep (torchvision's `get_params`): ten tries
    /// at a random area and aspect, else the centred largest region within `ratio`.
    func region(height imageHeight: Int, width imageWidth: Int, random: inout SampleRandom)
        -> (top: Int, left: Int, height: Int, width: Int)
    {
        let area = Float(imageHeight * imageWidth)
        let logRatio = log(ratio.lowerBound)...log(ratio.upperBound)
        for _ in 0..<10 {
            let target = area * random.uniform(scale)
            let aspect = exp(random.uniform(logRatio))
            let w = Int((target * aspect).squareRoot().rounded())
            let h = Int((target / aspect).squareRoot().rounded())
            if w > 0, h > 0, w <= imageWidth, h <= imageHeight {
                let top = random.below(imageHeight - h + 1)
                let left = random.below(imageWidth - w + 1)
                return (top, left, h, w)
            }
        }
        let aspect = Float(imageWidth) / Float(imageHeight)
        let (h, w): (Int, Int)
        if aspect < ratio.lowerBound {
            w = imageWidth
            h = Int((Float(w) / ratio.lowerBound).rounded())
        } else if aspect > ratio.upperBound {
            h = imageHeight
            w = Int((Float(h) * ratio.upperBound).rounded())
        } else {
            (h, w) = (imageHeight, imageWidth)
        }
        return ((imageHeight - h) / 2, (imageWidth - w) / 2, h, w)
    }
}

/// Rotates about the centre by a uniform angle in `angles` (degrees, positive anticlockwise);
/// corners take `fill`.
public struct RandomRotation: ImageTransform {
    public var angles: ClosedRange<Float>
    public var fill: Float

    /// Angles in `-degrees...degrees`, as torchvision's `RandomRotation(degrees)`.
    public init(degrees: Float, fill: Float = 0) {
        self.init(angles: -abs(degrees)...abs(degrees), fill: fill)
    }

    public init(angles: ClosedRange<Float>, fill: Float = 0) {
        self.angles = angles
        self.fill = fill
    }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        image.warped(
            matrix: matrix(height: image.height, width: image.width, random: &random), height: image.height, width: image.width, fill: fill)
    }

    /// The drawn rotation as a map from output to source pixel coordinates.
    func matrix(height: Int, width: Int, random: inout SampleRandom) -> [Double] {
        let angle = Double(random.uniform(angles)) * .pi / 180
        // Positive angles turn the picture anticlockwise as displayed (rows downwards), as
        // torchvision's do: output point p shows the source at centre + R(p - centre).
        let (c, s) = (cos(angle), -sin(angle))
        let cx = Double(width) / 2
        let cy = Double(height) / 2
        return [c, s, cx - c * cx - s * cy, -s, c, cy + s * cx - c * cy, 0, 0, 1]
    }
}

/// Moves each corner inwards by up to `distortion` of the image size and warps the image
/// onto that quadrilateral's homography, with probability `p` (torchvision's
/// `RandomPerspective`); uncovered pixels take `fill`.
public struct RandomPerspective: ImageTransform {
    public var distortion: Float
    public var p: Float
    public var fill: Float

    public init(distortion: Float = 0.5, p: Float = 0.5, fill: Float = 0) {
        self.distortion = distortion
        self.p = p
        self.fill = fill
    }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        guard let m = matrix(height: image.height, width: image.width, random: &random) else { return image }
        return image.warped(matrix: m, height: image.height, width: image.width, fill: fill)
    }

    /// The drawn warp as a map from output to source pixel coordinates; nil when this sample
    /// is left as it is (or the corners are degenerate).
    func matrix(height: Int, width: Int, random: inout SampleRandom) -> [Double]? {
        guard random.chance(p) else { return nil }
        let w = Double(width)
        let h = Double(height)
        let dx = Double(distortion) * w / 2
        let dy = Double(distortion) * h / 2
        func jitter(_ limit: Double) -> Double { Double(random.uniform()) * limit }
        let corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
        let moved = [
            (jitter(dx), jitter(dy)), (w - jitter(dx), jitter(dy)), (w - jitter(dx), h - jitter(dy)),
            (jitter(dx), h - jitter(dy)),
        ]
        // Output corner i shows what was at moved corner i: the map from output to source.
        return homography(from: corners, to: moved)
    }
}

/// The 3x3 projective map (m[8] = 1) sending each `from` point to its `to` point, by solving the
/// 8x8 linear system with Gaussian elimination; nil when degenerate.
func homography(from: [(Double, Double)], to: [(Double, Double)]) -> [Double]? {
    var a = [[Double]](repeating: [Double](repeating: 0, count: 9), count: 8)
    for i in 0..<4 {
        let (x, y) = from[i]
        let (u, v) = to[i]
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y, u]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y, v]
    }
    for col in 0..<8 {
        guard let pivot = (col..<8).max(by: { abs(a[$0][col]) < abs(a[$1][col]) }), abs(a[pivot][col]) > 1e-12 else {
            return nil
        }
        a.swapAt(col, pivot)
        for row in 0..<8 where row != col {
            let f = a[row][col] / a[col][col]
            if f != 0 { for k in col..<9 { a[row][k] -= f * a[col][k] } }
        }
    }
    return (0..<8).map { a[$0][8] / a[$0][$0] } + [1]
}

/// Random brightness, contrast and saturation factors, each uniform in `1 ± amount` (clamped
/// at 0), applied in that order with torchvision's `ColorJitter` formulas; pixels stay in [0, 1].
public struct ColorJitter: ImageTransform {
    public var brightness: Float
    public var contrast: Float
    public var saturation: Float

    public init(brightness: Float = 0, contrast: Float = 0, saturation: Float = 0) {
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
    }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        func factor(_ amount: Float) -> Float {
            amount > 0 ? random.uniform(max(0, 1 - amount)...(1 + amount)) : 1
        }
        let (b, c, s) = (factor(brightness), factor(contrast), factor(saturation))
        var out = image
        out.pixels.withUnsafeMutableBufferPointer {
            tl_image_color_f32($0.baseAddress, image.height * image.width, Int32(image.channels), b, c, s)
        }
        return out
    }
}

/// `(x - mean[c]) / std[c]` per channel.
///
/// ImageNet's values: mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225. Deterministic, so it
/// belongs in validation pipelines too.
public struct Normalize: ImageTransform {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count && !mean.isEmpty, "mean and std need one value per channel")
        self.mean = mean
        self.std = std
    }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        precondition(image.channels == mean.count, "Normalize has \(mean.count) channels, image has \(image.channels)")
        var out = image
        let inverse = std.map { 1 / $0 }
        out.pixels.withUnsafeMutableBufferPointer { px in
            mean.withUnsafeBufferPointer { m in
                inverse.withUnsafeBufferPointer { s in
                    tl_image_normalize_f32(
                        px.baseAddress, image.height * image.width, Int32(image.channels), m.baseAddress,
                        s.baseAddress)
                }
            }
        }
        return out
    }
}

/// Bilinear resize to a fixed size (deterministic).
public struct Resize: ImageTransform {
    public var height: Int
    public var width: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        image.resized(height: height, width: width)
    }
}
