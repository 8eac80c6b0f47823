import ArgumentParser
import Dispatch
import Foundation
import Learner

/// `tefla-data bench-decode`: JPEG/PNG decode + resize + random crop + flip throughput on one
/// thread, the peer of the same `tf.image` ops in `Benchmarks/peers/tf_data_read.py decode`.
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-decode",
        abstract: "Time decode + resize + random crop + horizontal flip of every image (images/s).")

    @Argument(help: "A TFRecord file, a directory of shards or a glob pattern.")
    var source: String

    @Option(name: .long, help: "The bytes feature holding the encoded image.")
    var key = "image/encoded"

    @Option(name: .long, help: "Side the image is resized to before cropping.")
    var resize = 256

    @Option(name: .long, help: "Side of the random crop.")
    var crop = 224

    @Option(name: .long, help: "Timed passes; the median is reported.")
    var repeats = 3

    @Option(
        name: .long, help: "JPEG inverse DCT: fast (JDCT_IFAST, tf.io.decode_jpeg's default) or accurate (JDCT_ISLOW).")
    var dct: DCTChoice = .fast

    @Flag(
        name: .long,
        help: "Go through intermediate Images (decode, resize, crop, flip one after the other) instead of one pass.")
    var unfused = false

    @Flag(name: .long, help: "Print one JSON line instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            var blobs: [[UInt8]] = []
            for file in try recordFiles(source) {
                try TFRecordReader(path: file).forEachRecord { payload, location in
                    guard case .bytes(let values)? = try Example(serialized: payload)[key], let blob = values.first
                    else {
                        throw DataError.missingFeature(key: key, present: [], at: location)
                    }
                    blobs.append(blob)
                }
            }
            let method: ImageDecoder.DCTMethod = dct == .fast ? .integerFast : .integerAccurate
            let transform = Compose([RandomCrop(height: crop, width: crop), RandomHorizontalFlip()])
            // One output image, reused: the batch slot a pipeline worker would write into.
            var output = [Float](repeating: 0, count: crop * crop * 3)
            var times: [Double] = []
            for pass in 0...max(repeats, 1) {  // pass 0 warms up
                let start = DispatchTime.now().uptimeNanoseconds
                var checksum: Float = 0
                for (index, blob) in blobs.enumerated() {
                    var random = SampleRandom(seed: 0, epoch: pass, index: index)
                    if unfused {
                        let image = try ImageDecoder.withPixels(blob, channels: 3, dct: method) {
                            $0.image().resized(height: resize, width: resize)
                        }
                        checksum += transform.apply(image, random: &random).pixels[0]
                        continue
                    }
                    // Same draws as `transform.apply` on the resized image, folded into one resample.
                    guard let window = transform.window(of: .whole(height: resize, width: resize), random: &random)
                    else { throw ValidationError("--crop must not exceed --resize") }
                    try ImageDecoder.withPixels(blob, channels: 3, dct: method) { pixels in
                        let sampling = ImageSampling.resized(
                            sourceHeight: pixels.height, sourceWidth: pixels.width, height: resize, width: resize,
                            window: window)
                        output.withUnsafeMutableBufferPointer {
                            pixels.resample(sampling, layout: .hwc, into: $0.baseAddress!)
                        }
                    }
                    checksum += output[0]
                }
                if checksum.isNaN { print(checksum) }  // keeps the work from being optimised away
                if pass > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
            let seconds = times.sorted()[times.count / 2]
            let rate = Double(blobs.count) / seconds
            let impl = "tefla decode (\(unfused ? "unfused" : "fused"), dct \(dct.rawValue))"
            if json {
                print(
                    "{\"impl\": \"\(impl)\", \"images\": \(blobs.count), \"seconds\": \(seconds), "
                        + "\"images_per_s\": \(rate)}")
            } else {
                print("\(impl): \(blobs.count) images: \(Int(rate)) images/s (median of \(times.count))")
            }
        }
    }
}

enum DCTChoice: String, ExpressibleByArgument {
    case fast, accurate
}
