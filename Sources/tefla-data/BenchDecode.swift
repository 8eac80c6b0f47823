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
            let transform = Compose([RandomCrop(height: crop, width: crop), RandomHorizontalFlip()])
            var times: [Double] = []
            for pass in 0...max(repeats, 1) {  // pass 0 warms up
                let start = DispatchTime.now().uptimeNanoseconds
                var checksum: Float = 0
                for (index, blob) in blobs.enumerated() {
                    var random = SampleRandom(seed: 0, epoch: pass, index: index)
                    let image = try ImageDecoder.decode(blob, channels: 3, size: (resize, resize))
                    checksum += transform.apply(image, random: &random).pixels[0]
                }
                if checksum.isNaN { print(checksum) }  // keeps the work from being optimised away
                if pass > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
            let seconds = times.sorted()[times.count / 2]
            let rate = Double(blobs.count) / seconds
            if json {
                print(
                    "{\"impl\": \"tefla decode\", \"images\": \(blobs.count), \"seconds\": \(seconds), \"images_per_s\": \(rate)}"
                )
            } else {
                print("\(blobs.count) images: \(Int(rate)) images/s (median of \(times.count))")
            }
        }
    }
}
