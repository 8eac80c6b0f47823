import Learner

/// JPEG and PNG decoding through the C shim (libjpeg-turbo, libpng) and ``ImageDecoder``. The
/// first input byte chooses the call, the rest is the blob:
///
/// - bits 0-1: the channels asked for: 0 (the file's), 1 (grey), 3 (RGB), 0;
/// - bit 2: libjpeg's fast integer DCT instead of the accurate one;
/// - bit 3: the reusable per-thread buffer (``ImageDecoder/withPixels(_:channels:dct:key:_:)``,
///   what the image pipeline uses) instead of ``ImageDecoder/decode(_:channels:size:key:)``.
///
/// A blob decodes, with the size and channels it claims, or throws
/// ``DataError/undecodableImage(key:message:at:)``; every pixel is read (converted to Float), so
/// AddressSanitizer sees a buffer shorter than the image.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    // Images over 1 megapixel are refused here (the library's default refuses only decompression
    // bombs, at 179 megapixels): an input that merely claims a large image would otherwise spend
    // the second each input has on legitimate work, and crowd out the search. The refusal path
    // itself is fuzzed all the same.
    ImageDecoder.maximumPixels = 1 << 20
    let channels = [0, 1, 3, 0][Int(bytes[0] & 3)]
    let dct: ImageDecoder.DCTMethod = bytes[0] & 4 != 0 ? .integerFast : .integerAccurate
    let blob = UnsafeRawBufferPointer(start: bytes + 1, count: count - 1)
    let format = ImageDecoder.format(of: blob)
    // The full-precision PNG decode (16-bit target images): nil for other formats, else an image
    // whose every value lies in [0, 1], or an undecodableImage error.
    do {
        if let precise = try Image.decodingPNGAtFullPrecision(blob, key: "fuzz") {
            precondition(format == .png, "a full-precision decode of a blob that is not a PNG")
            precondition(precise.pixels.count == precise.height * precise.width * precise.channels, "pixels do not fill the image")
            precondition(precise.pixels.allSatisfy { $0 >= 0 && $0 <= 1 }, "a full-precision pixel outside [0, 1]")
        }
    } catch DataError.undecodableImage(_, let message, _) {
        precondition(!message.isEmpty, "an image error without a message")
    } catch {
        fatalError("an error other than undecodableImage: \(error)")
    }
    do {
        let image: Image
        if bytes[0] & 8 != 0 {
            image = try ImageDecoder.withPixels(blob, channels: channels, dct: dct) { $0.image() }
        } else {
            image = try ImageDecoder.decode(blob, channels: channels)
        }
        precondition(format != nil, "decoded a blob that is neither JPEG nor PNG")
        // The header-only read (the size scan's) agrees with the decode.
        let info = try ImageDecoder.info(blob)
        precondition(info.height == image.height && info.width == image.width, "info disagrees with the decoded size")
        precondition(channels != 0 || info.channels == image.channels, "info disagrees with the decoded channels")
        // The middle quarter alone (a crop's region decode: rows skipped, iMCU columns cropped):
        // the window lands inside the pixels decoded, and every one of them is read.
        if image.height >= 2 && image.width >= 2 {
            let window = CropWindow(top: image.height / 4, left: image.width / 4, height: image.height / 2, width: image.width / 2)
            try ImageDecoder.withPixels(blob, channels: channels, dct: dct, keeping: window) { region, moved in
                precondition(
                    moved.top >= 0 && moved.left >= 0 && moved.top + moved.height <= region.height
                        && moved.left + moved.width <= region.width, "the region decoded misses the window")
                let sum = region.image().pixels.reduce(0, +)
                precondition(sum.isFinite, "a region pixel outside [0, 1]")
            }
        }
        precondition(image.height > 0 && image.width > 0, "an empty image")
        precondition(channels == 0 ? [1, 3].contains(image.channels) : image.channels == channels, "wrong channels")
        precondition(image.pixels.count == image.height * image.width * image.channels, "pixels do not fill the image")
        // The first and last pixel (every one is read by the conversion to Float, under ASan).
        let ends = [image.pixels[0], image.pixels[image.pixels.count - 1]]
        precondition(ends.allSatisfy { $0 >= 0 && $0 <= 1 }, "a pixel outside [0, 1]")
    } catch DataError.undecodableImage(_, let message, _) {
        precondition(!message.isEmpty, "an image error without a message")
    } catch {
        fatalError("an error other than undecodableImage: \(error)")
    }
    return 0
}
