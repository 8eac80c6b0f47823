import CLearner

/// Encodes 8-bit pixels (HWC, grey or RGB) as JPEG or PNG through libjpeg-turbo and libpng,
/// and resizes them with antialiasing: what the data tools need to store images smaller.
public enum ImageEncoder {
    /// A baseline JPEG of `quality` (1-100).
    public static func jpeg(_ pixels: [UInt8], height: Int, width: Int, channels: Int, quality: Int = 95) throws -> [UInt8] {
        try encode(pixels, height: height, width: width, channels: channels) { out, length, message in
            tl_image_encode_jpeg(pixels, Int32(height), Int32(width), Int32(channels), Int32(quality), out, length, message, 256)
        }
    }

    /// An 8-bit PNG (lossless).
    public static func png(_ pixels: [UInt8], height: Int, width: Int, channels: Int) throws -> [UInt8] {
        try encode(pixels, height: height, width: width, channels: channels) { out, length, message in
            tl_image_encode_png(pixels, Int32(height), Int32(width), Int32(channels), out, length, message, 256)
        }
    }

    private static func encode(
        _ pixels: [UInt8], height: Int, width: Int, channels: Int,
        _ call: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>) -> Int32
    ) throws -> [UInt8] {
        precondition(pixels.count == height * width * channels, "pixels do not fill \(height)×\(width)×\(channels)")
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = message.withUnsafeMutableBufferPointer { call(&out, &length, $0.baseAddress!) }
        defer { tl_image_free(out) }
        guard status == 0, let out else { throw DataError.undecodableImage(key: "encode", message: cMessage(message), at: nil) }
        return Array(UnsafeBufferPointer(start: out, count: length))
    }

    /// `pixels` resized to `height` × `width` with a triangle filter widened by the scale when
    /// shrinking (Pillow's `BILINEAR` with its antialiasing): every source pixel counts, so a
    /// photo shrunk 4× does not alias the way plain bilinear sampling does.
    public static func resized(_ pixels: [UInt8], height: Int, width: Int, channels: Int, toHeight: Int, toWidth: Int) -> [UInt8] {
        if height == toHeight && width == toWidth { return pixels }
        let xs = taps(from: width, to: toWidth), ys = taps(from: height, to: toHeight)
        // Rows first (height × toWidth), then columns.
        var horizontal = [Float](repeating: 0, count: height * toWidth * channels)
        for y in 0..<height {
            for (i, tap) in xs.enumerated() {
                for c in 0..<channels {
                    var sum: Float = 0
                    for (k, w) in tap.weights.enumerated() { sum += w * Float(pixels[(y * width + tap.start + k) * channels + c]) }
                    horizontal[(y * toWidth + i) * channels + c] = sum
                }
            }
        }
        var out = [UInt8](repeating: 0, count: toHeight * toWidth * channels)
        for (j, tap) in ys.enumerated() {
            for x in 0..<(toWidth * channels) {
                var sum: Float = 0
                for (k, w) in tap.weights.enumerated() { sum += w * horizontal[(tap.start + k) * toWidth * channels + x] }
                out[j * toWidth * channels + x] = UInt8(max(0, min(255, sum.rounded())))
            }
        }
        return out
    }

    /// For each output pixel of an axis: the first source pixel it reads and the normalised weights.
    private static func taps(from source: Int, to output: Int) -> [(start: Int, weights: [Float])] {
        let scale = Double(source) / Double(output)
        let support = max(scale, 1)
        return (0..<output).map { i in
            let centre = (Double(i) + 0.5) * scale
            let low = max(0, Int((centre - support).rounded(.down)))
            let high = min(source, Int((centre + support).rounded(.up)))
            var weights = (low..<high).map { j in max(0, 1 - abs((Double(j) + 0.5 - centre) / support)) }
            let total = weights.reduce(0, +)
            weights = total > 0 ? weights.map { $0 / total } : weights
            return (low, weights.map(Float.init))
        }
    }

    /// The size whose shorter side is `side`, the aspect kept (rounded to whole pixels).
    public static func size(height: Int, width: Int, shorterSide side: Int) -> (height: Int, width: Int) {
        if height <= width {
            return (side, max(1, Int((Double(width) * Double(side) / Double(height)).rounded())))
        }
        return (max(1, Int((Double(height) * Double(side) / Double(width)).rounded())), side)
    }
}
