import CLearner

/// One axis of an axis-aligned bilinear resample: output pixel `i` (counted from the far end when
/// `reversed`, a flip) samples the source at `scale * (i + 0.5) + offset`, pixel centres at
/// integer + 0.5, with taps clamped to source pixels `lower..<upper`.
public struct ResampleAxis: Sendable, Equatable {
    public var scale: Double
    public var offset: Double
    public var lower: Int
    public var upper: Int
    public var reversed: Bool

    public init(scale: Double, offset: Double, lower: Int, upper: Int, reversed: Bool = false) {
        self.scale = scale
        self.offset = offset
        self.lower = lower
        self.upper = upper
        self.reversed = reversed
    }

    /// Source pixels `start..<start + length` resized to `output` pixels (crop, then resize: the
    /// edges replicated are the window's, as ``Image/cropped(top:left:height:width:fill:)`` then
    /// ``Image/resized(height:width:)`` give).
    public static func window(start: Int, length: Int, output: Int, reversed: Bool = false) -> ResampleAxis {
        ResampleAxis(
            scale: Double(length) / Double(output), offset: Double(start), lower: start, upper: start + length,
            reversed: reversed)
    }

    /// A `source`-pixel axis resized to `resized` pixels, of which those from `start` on are kept
    /// (resize, then crop: `tf.image.resize` followed by `tf.image.random_crop`).
    public static func resized(source: Int, to resized: Int, start: Int, reversed: Bool = false) -> ResampleAxis {
        let scale = Double(source) / Double(resized)
        return ResampleAxis(scale: scale, offset: Double(start) * scale, lower: 0, upper: source, reversed: reversed)
    }
}

/// The part of an image that crops and flips keep: a window inside it, maybe mirrored, maybe
/// normalised per channel.
public struct CropWindow: Sendable, Equatable {
    public var top: Int
    public var left: Int
    public var height: Int
    public var width: Int
    public var flipHorizontal = false
    public var flipVertical = false
    /// Per-channel `(x - mean) / std` applied after scaling to [0, 1] (a folded ``Normalize``).
    public var mean: [Float]?
    public var std: [Float]?

    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }

    /// The whole of a `height` x `width` image, unflipped.
    public static func whole(height: Int, width: Int) -> CropWindow {
        CropWindow(top: 0, left: 0, height: height, width: width)
    }

    /// The rectangle at (`top`, `left`) of size `height` x `width` in this window's own (flipped)
    /// view, as a window of the source; nil when it reaches outside.
    public func cropped(top: Int, left: Int, height: Int, width: Int) -> CropWindow? {
        guard top >= 0, left >= 0, height > 0, width > 0, top + height <= self.height, left + width <= self.width
        else { return nil }
        var out = self
        out.top = self.top + (flipVertical ? self.height - top - height : top)
        out.left = self.left + (flipHorizontal ? self.width - left - width : left)
        out.height = height
        out.width = width
        return out
    }
}

/// A transform that only crops inside the image, flips and normalises, so a ``CropWindow``
/// describes it and the decode's one resampling pass can apply it (no intermediate images).
public protocol WindowTransform: ImageTransform {
    /// The window `apply` would keep of the image `current` describes, making exactly the draws
    /// `apply` makes from `random`; nil when this image needs more (a crop that pads).
    func window(of current: CropWindow, random: inout SampleRandom) -> CropWindow?
}

extension Compose: WindowTransform {
    /// The windows of the parts in order; nil when any part is no ``WindowTransform``.
    public func window(of current: CropWindow, random: inout SampleRandom) -> CropWindow? {
        var window = current
        for transform in transforms {
            guard let part = transform as? any WindowTransform, let next = part.window(of: window, random: &random)
            else { return nil }
            window = next
        }
        return window
    }
}

extension RandomHorizontalFlip: WindowTransform {
    public func window(of current: CropWindow, random: inout SampleRandom) -> CropWindow? {
        var out = current
        if random.chance(p) { out.flipHorizontal.toggle() }
        return out
    }
}

extension RandomVerticalFlip: WindowTransform {
    public func window(of current: CropWindow, random: inout SampleRandom) -> CropWindow? {
        var out = current
        if random.chance(p) { out.flipVertical.toggle() }
        return out
    }
}

extension RandomCrop: WindowTransform {
    public func window(of current: CropWindow, random: inout SampleRandom) -> CropWindow? {
        let (top, left) = position(height: current.height, width: current.width, random: &random)
        return current.cropped(top: top, left: left, height: height, width: width)
    }
}

extension RandomResizedCrop: WindowTransform {
    /// The region `apply` keeps (the same draws), which the pipeline resizes to the output size in
    /// its one resampling pass.
    public func window(of current: CropWindow, random: inout SampleRandom) -> CropWindow? {
        let r = region(height: current.height, width: current.width, random: &random)
        return current.cropped(top: r.top, left: r.left, height: r.height, width: r.width)
    }
}

extension Normalize: WindowTransform {
    /// Normalising commutes with crops, flips and bilinear resizing (weights sum to 1), so it can
    /// come last; a second normalisation is left to `apply`.
    public func window(of current: CropWindow, random: inout SampleRandom) -> CropWindow? {
        guard current.mean == nil else { return nil }
        var out = current
        out.mean = mean
        out.std = std
        return out
    }
}

/// How a decoded image becomes the output pixels: its size and the map of each axis.
public struct ImageSampling: Sendable, Equatable {
    public var height: Int
    public var width: Int
    public var y: ResampleAxis
    public var x: ResampleAxis
    public var mean: [Float]?
    public var std: [Float]?

    public init(height: Int, width: Int, y: ResampleAxis, x: ResampleAxis, mean: [Float]? = nil, std: [Float]? = nil) {
        self.height = height
        self.width = width
        self.y = y
        self.x = x
        self.mean = mean
        self.std = std
    }

    /// `window` of the source resized to `height` x `width` (a transform, then the pipeline's resize).
    public static func window(_ window: CropWindow, height: Int, width: Int) -> ImageSampling {
        ImageSampling(
            height: height, width: width,
            y: .window(start: window.top, length: window.height, output: height, reversed: window.flipVertical),
            x: .window(start: window.left, length: window.width, output: width, reversed: window.flipHorizontal),
            mean: window.mean, std: window.std)
    }

    /// A `sourceHeight` x `sourceWidth` image resized to `height` x `width`, then `window` of that
    /// kept (a resize, then crops and flips).
    public static func resized(
        sourceHeight: Int, sourceWidth: Int, height: Int, width: Int, window: CropWindow
    ) -> ImageSampling {
        ImageSampling(
            height: window.height, width: window.width,
            y: .resized(source: sourceHeight, to: height, start: window.top, reversed: window.flipVertical),
            x: .resized(source: sourceWidth, to: width, start: window.left, reversed: window.flipHorizontal),
            mean: window.mean, std: window.std)
    }
}

/// Where resampled pixels go: interleaved like ``Image`` or planar like a batch tensor.
public enum PixelLayout: Sendable {
    case hwc, chw
}

/// 8-bit pixels decoded into the calling thread's scratch buffer, valid only inside
/// ``ImageDecoder/withPixels(_:channels:dct:key:_:)-(UnsafeRawBufferPointer,_,_,_,_)``.
public struct DecodedPixels {
    public let height: Int
    public let width: Int
    public let channels: Int
    let base: UnsafePointer<UInt8>

    /// The pixels as a float ``Image`` in [0, 1].
    public func image() -> Image {
        let count = height * width * channels
        let pixels = [Float](unsafeUninitializedCapacity: count) { buffer, n in
            tl_u8_to_f32(base, buffer.baseAddress, count, 255)
            n = count
        }
        return Image(height: height, width: width, channels: channels, pixels: pixels)
    }

    /// Writes `sampling.height * sampling.width * channels` floats to `out`: bilinear resampling,
    /// crop and flip, scaling to [0, 1] and normalisation in one pass, with no image in between.
    public func resample(_ sampling: ImageSampling, layout: PixelLayout, into out: UnsafeMutablePointer<Float>) {
        precondition(
            sampling.y.lower >= 0 && sampling.y.upper <= height && sampling.y.lower < sampling.y.upper
                && sampling.x.lower >= 0 && sampling.x.upper <= width && sampling.x.lower < sampling.x.upper,
            "resample window outside the \(height)x\(width) image")
        if let mean = sampling.mean, let std = sampling.std {
            precondition(mean.count == channels && std.count == channels, "normalisation needs one value per channel")
        }
        var y = tl_resample_axis(
            scale: sampling.y.scale, offset: sampling.y.offset, lower: Int32(sampling.y.lower),
            upper: Int32(sampling.y.upper), reversed: sampling.y.reversed ? 1 : 0)
        var x = tl_resample_axis(
            scale: sampling.x.scale, offset: sampling.x.offset, lower: Int32(sampling.x.lower),
            upper: Int32(sampling.x.upper), reversed: sampling.x.reversed ? 1 : 0)
        let inverse = sampling.std.map { $0.map { 1 / $0 } }
        let status = withOptionalBuffer(sampling.mean) { mean in
            withOptionalBuffer(inverse) { invStd in
                tl_resample_u8_f32(
                    base, Int32(height), Int32(width), Int32(channels), Int32(sampling.height), Int32(sampling.width),
                    &y, &x, out, layout == .chw ? 1 : 0, mean, invStd)
            }
        }
        precondition(status == 0, "out of memory resampling an image")
    }
}

private func withOptionalBuffer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}

extension ImageDecoder {
    /// How a JPEG's inverse DCT is computed, as `tf.io.decode_jpeg(dct_method=)` names it.
    public enum DCTMethod: String, Sendable {
        /// libjpeg's JDCT_ISLOW: the default of libjpeg, Pillow and ``ImageDecoder/decode(_:channels:size:key:)-(UnsafeRawBufferPointer,_,_,_)``.
        case integerAccurate
        /// libjpeg's JDCT_IFAST: what TensorFlow's `decode_jpeg` uses when `dct_method` is left empty.
        case integerFast
    }

    /// Decodes `data` into the calling thread's reusable buffer and calls `body` with the pixels.
    ///
    /// `channels` 0 keeps the file's (1 grey, 3 colour). The pixels live until the thread's next
    /// decode, so `body` must not keep them; no per-image allocation once the buffer has grown.
    public static func withPixels<R>(
        _ data: UnsafeRawBufferPointer, channels: Int = 0, dct: DCTMethod = .integerAccurate,
        key: String = "image/encoded", _ body: (DecodedPixels) throws -> R
    ) throws -> R {
        try decodeScratch(data, channels: channels, dct: dct, key: key, region: nil) { pixels, _, _ in try body(pixels) }
    }

    /// ``withPixels(_:channels:dct:key:_:)-(UnsafeRawBufferPointer,_,_,_,_)`` of only the part of the image `window` keeps (a
    /// window of the whole image, e.g. a random resized crop's): a JPEG decodes just those rows
    /// and the iMCU columns around them, so the cost follows the area kept. `body` gets the pixels
    /// decoded and the window moved into their coordinates (their origin subtracted), ready for
    /// ``DecodedPixels/resample(_:layout:into:)``; its output equals a whole decode's.
    public static func withPixels<R>(
        _ data: UnsafeRawBufferPointer, channels: Int = 0, dct: DCTMethod = .integerAccurate,
        key: String = "image/encoded", keeping window: CropWindow, _ body: (DecodedPixels, CropWindow) throws -> R
    ) throws -> R {
        try decodeScratch(data, channels: channels, dct: dct, key: key, region: window) { pixels, top, left in
            var moved = window
            moved.top -= top
            moved.left -= left
            return try body(pixels, moved)
        }
    }

    /// The one call into the C decoder: the whole image (`region` nil) or the part a window keeps;
    /// `body` gets the pixels and where they start in the whole image.
    private static func decodeScratch<R>(
        _ data: UnsafeRawBufferPointer, channels: Int, dct: DCTMethod, key: String, region: CropWindow?,
        _ body: (DecodedPixels, _ top: Int, _ left: Int) throws -> R
    ) throws -> R {
        var pixels: UnsafePointer<UInt8>?
        var h: Int32 = 0
        var w: Int32 = 0
        var c: Int32 = 0
        var top: Int32 = 0
        var left: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        // A region of height 0 decodes the whole image.
        let status = tl_image_decode_region_scratch(
            data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, Int32(clamping: channels),
            dct == .integerFast ? 1 : 0, Int32(clamping: region?.top ?? 0), Int32(clamping: region?.left ?? 0),
            Int32(clamping: region?.height ?? 0), Int32(clamping: region?.width ?? 0), &pixels, &top, &left, &h, &w, &c,
            &message, message.count)
        guard status == 0, let pixels else {
            throw DataError.undecodableImage(key: key, message: cMessage(message), at: nil)
        }
        return try body(DecodedPixels(height: Int(h), width: Int(w), channels: Int(c), base: pixels), Int(top), Int(left))
    }

    public static func withPixels<R>(
        _ data: [UInt8], channels: Int = 0, dct: DCTMethod = .integerAccurate, key: String = "image/encoded",
        _ body: (DecodedPixels) throws -> R
    ) throws -> R {
        try data.withUnsafeBytes { try withPixels($0, channels: channels, dct: dct, key: key, body) }
    }
}
