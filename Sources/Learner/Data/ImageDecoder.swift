import CLearner

/// Decodes JPEG and PNG blobs (an Example's `image/encoded`) through libjpeg-turbo and libpng.
///
/// Output is grey or RGB: palettes are expanded, 16-bit samples scaled to 8 bits
/// (`v * 255 / 65535`, rounded), alpha dropped (as Pillow's `convert("RGB")`), and `channels`
/// 1 or 3 converts between grey and RGB (ITU-R 601 luma). A blob that is not a decodable image
/// throws ``DataError/undecodableImage(key:message:at:)`` carrying the library's message.
public enum ImageDecoder {
    public enum Format: Sendable, Equatable {
        case jpeg, png
    }

    /// The most pixels (width × height) an image may have: a larger one throws
    /// ``DataError/undecodableImage(key:message:at:)`` before any pixel is allocated, so a few KB
    /// that claim 65,500 × 65,500 pixels (a decompression bomb) cannot take the memory. Default
    /// 178,956,970, the threshold at which Pillow refuses an image; process-wide.
    public static var maximumPixels: Int {
        get { Int(tl_image_max_pixels()) }
        set { tl_image_set_max_pixels(max(newValue, 0)) }
    }

    /// The format named by the blob's magic bytes, nil for anything else.
    public static func format(of data: UnsafeRawBufferPointer) -> Format? {
        switch tl_image_format(data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count) {
        case Int32(TL_IMAGE_JPEG.rawValue): return .jpeg
        case Int32(TL_IMAGE_PNG.rawValue): return .png
        default: return nil
        }
    }

    public static func format(of data: [UInt8]) -> Format? { data.withUnsafeBytes { format(of: $0) } }

    /// The size and channels a decode with `channels` 0 gives, read from the header alone (no
    /// pixel is decoded): what a scan over a data set's images uses. Throws
    /// ``DataError/undecodableImage(key:message:at:)`` as a decode would for a damaged header.
    public static func info(_ data: UnsafeRawBufferPointer, key: String = "image/encoded") throws
        -> (height: Int, width: Int, channels: Int)
    {
        var h: Int32 = 0
        var w: Int32 = 0
        var c: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = tl_image_info(
            data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, &h, &w, &c, &message, message.count)
        guard status == 0 else { throw DataError.undecodableImage(key: key, message: cMessage(message), at: nil) }
        return (Int(h), Int(w), Int(c))
    }

    public static func info(_ data: [UInt8], key: String = "image/encoded") throws -> (height: Int, width: Int, channels: Int) {
        try data.withUnsafeBytes { try info($0, key: key) }
    }

    /// 8-bit pixels, HWC.
    ///
    /// `channels` 0 keeps the file's (1 grey, 3 colour); `key` names the feature in errors.
    public static func decodeBytes(_ data: UnsafeRawBufferPointer, channels: Int = 0, key: String = "image/encoded")
        throws -> (pixels: [UInt8], height: Int, width: Int, channels: Int)
    {
        var raw: UnsafeMutablePointer<UInt8>?
        let (h, w, c) = try decodeRaw(data, channels: channels, key: key, into: &raw)
        defer { tl_image_free(raw) }
        let count = h * w * c
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, n in
            if let raw, let base = buffer.baseAddress { base.update(from: raw, count: count) }
            n = count
        }
        return (pixels, h, w, c)
    }

    /// The image as `Float` in [0, 1], resized to `size` (height, width) when given.
    public static func decode(
        _ data: UnsafeRawBufferPointer, channels: Int = 0, size: (height: Int, width: Int)? = nil,
        key: String = "image/encoded"
    ) throws -> Image {
        var raw: UnsafeMutablePointer<UInt8>?
        let (h, w, c) = try decodeRaw(data, channels: channels, key: key, into: &raw)
        defer { tl_image_free(raw) }
        let count = h * w * c
        let pixels = [Float](unsafeUninitializedCapacity: count) { buffer, n in
            tl_u8_to_f32(raw, buffer.baseAddress, count, 255)
            n = count
        }
        let image = Image(height: h, width: w, channels: c, pixels: pixels)
        guard let size else { return image }
        return image.resized(height: size.height, width: size.width)
    }

    /// Array conveniences of the two calls above.
    public static func decodeBytes(_ data: [UInt8], channels: Int = 0, key: String = "image/encoded") throws
        -> (pixels: [UInt8], height: Int, width: Int, channels: Int)
    {
        try data.withUnsafeBytes { try decodeBytes($0, channels: channels, key: key) }
    }

    public static func decode(
        _ data: [UInt8], channels: Int = 0, size: (height: Int, width: Int)? = nil, key: String = "image/encoded"
    ) throws -> Image {
        try data.withUnsafeBytes { try decode($0, channels: channels, size: size, key: key) }
    }

    private static func decodeRaw(
        _ data: UnsafeRawBufferPointer, channels: Int, key: String, into raw: inout UnsafeMutablePointer<UInt8>?
    ) throws -> (Int, Int, Int) {
        var h: Int32 = 0
        var w: Int32 = 0
        var c: Int32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = tl_image_decode(
            data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, Int32(clamping: channels), &raw, &h, &w,
            &c, &message, message.count)
        guard status == 0, raw != nil else {
            throw DataError.undecodableImage(key: key, message: cMessage(message), at: nil)
        }
        return (Int(h), Int(w), Int(c))
    }
}
