import CLearner

/// A decoded image: `Float` pixels in row-major [height, width, channels] (HWC) order.
///
/// The layout decoders produce and augmentations work in; batches are collated to NCHW only at
/// the end (``ImagePipeline``). A value type over one contiguous array, so a transform that
/// copies never shares pixels with its input.
public struct Image: Equatable, Sendable {
    public var height: Int
    public var width: Int
    public var channels: Int
    /// `height * width * channels` values.
    public var pixels: [Float]

    public init(height: Int, width: Int, channels: Int, pixels: [Float]) {
        precondition(height >= 0 && width >= 0 && channels > 0, "bad image shape")
        precondition(pixels.count == height * width * channels, "pixels must hold height * width * channels values")
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
    }

    /// Pixel value at row `y`, column `x`, channel `c`.
    public subscript(y: Int, x: Int, c: Int) -> Float {
        pixels[(y * width + x) * channels + c]
    }

    /// The image warped by the projective map `matrix` (row-major 3x3, from output pixel
    /// coordinates to source coordinates; pixel centres at integer + 0.5) into
    /// `height` x `width`, sampled bilinearly.
    ///
    /// `fill` nil replicates the edges (what resizing wants); a value fills everything that maps
    /// outside the source (rotations, padding).
    public func warped(matrix: [Double], height: Int, width: Int, fill: Float? = nil) -> Image {
        precondition(matrix.count == 9, "a projective matrix has 9 entries")
        let out = [Float](unsafeUninitializedCapacity: height * width * channels) { buffer, count in
            pixels.withUnsafeBufferPointer { src in
                matrix.withUnsafeBufferPointer { m in
                    tl_warp_bilinear_f32(
                        src.baseAddress, Int32(self.height), Int32(self.width), Int32(channels), buffer.baseAddress,
                        Int32(height), Int32(width), m.baseAddress, fill == nil ? 1 : 0, fill ?? 0)
                }
            }
            count = height * width * channels
        }
        return Image(height: height, width: width, channels: channels, pixels: out)
    }

    /// The image resized to `height` x `width` by bilinear interpolation with half-pixel centres
    /// (`tf.image.resize(method="bilinear")`, PyTorch's `align_corners=False`), without
    /// antialiasing: shrinking by more than 2x skips source pixels.
    public func resized(height: Int, width: Int) -> Image {
        if height == self.height && width == self.width { return self }
        let sx = Double(self.width) / Double(width)
        let sy = Double(self.height) / Double(height)
        return warped(matrix: [sx, 0, 0, 0, sy, 0, 0, 0, 1], height: height, width: width)
    }

    /// The rectangle of `height` x `width` pixels whose top-left pixel is (`top`, `left`); parts
    /// outside the image take `fill` (so a crop can also pad).
    ///
    /// A rectangle wholly inside the image is copied row by row (the same values the bilinear
    /// warp gives at integer offsets, without the interpolation).
    public func cropped(top: Int, left: Int, height: Int, width: Int, fill: Float = 0) -> Image {
        if top >= 0, left >= 0, height >= 0, width >= 0, top + height <= self.height, left + width <= self.width {
            let rowValues = width * channels
            let out = [Float](unsafeUninitializedCapacity: height * rowValues) { buffer, count in
                pixels.withUnsafeBufferPointer { src in
                    guard let from = src.baseAddress, let to = buffer.baseAddress else { return }
                    for y in 0..<height {
                        (to + y * rowValues).update(
                            from: from + ((top + y) * self.width + left) * channels, count: rowValues)
                    }
                }
                count = height * rowValues
            }
            return Image(height: height, width: width, channels: channels, pixels: out)
        }
        return warped(
            matrix: [1, 0, Double(left), 0, 1, Double(top), 0, 0, 1], height: height, width: width, fill: fill)
    }

    /// The pixels as [channels, height, width] (CHW), written to `out` (which holds `pixels.count`).
    public func copyCHW(to out: UnsafeMutablePointer<Float>) {
        pixels.withUnsafeBufferPointer { src in
            tl_hwc_to_chw_f32(src.baseAddress, Int32(height), Int32(width), Int32(channels), out)
        }
    }
}
