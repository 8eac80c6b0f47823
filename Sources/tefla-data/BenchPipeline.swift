import ArgumentParser
import Dispatch
import Foundation
import Learner

/// `tefla-data bench-pipeline`: the image pipeline's ImageNet training input (random resized
/// crop, flip, normalisation, batches) on worker threads, the peer of
/// `Benchmarks/peers/tf_data_pipeline.py run`.
struct BenchPipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-pipeline",
        abstract: "Time the image pipeline's training batches (random resized crop 224, flip, normalise) in images/s.")

    @Argument(help: "A directory of shards or a glob pattern.")
    var source: String

    @Option(name: .long, help: "Decoding threads.")
    var workers = 1

    @Option(name: .long, help: "Side of the output images.")
    var size = 224

    @Option(name: .long, help: "Images per batch.")
    var batch = 64

    @Option(name: .long, help: "Timed passes; the median is reported.")
    var repeats = 3

    @Option(name: .long, help: "JPEG inverse DCT: fast (tf.io.decode_jpeg's default) or accurate.")
    var dct: DCTChoice = .fast

    @Flag(name: .long, help: "Print one JSON line instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            var options = ImagePipelineOptions(
                batchSize: batch, height: size, width: size, channels: 3, shuffle: false, workers: workers, maxQueueSize: 4,
                keys: FeatureKeys(input: "image/encoded", label: "image/class/label"),
                transform: Compose([
                    RandomResizedCrop(height: size, width: size), RandomHorizontalFlip(),
                    Normalize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]),
                ]))
            options.jpegDCT = dct == .fast ? .integerFast : .integerAccurate
            let pipeline = ImagePipeline(files: try recordFiles(source), options: options)
            var times: [Double] = []
            var images = 0
            for pass in 0...max(repeats, 1) {  // pass 0 warms up (page cache, buffers)
                let start = DispatchTime.now().uptimeNanoseconds
                let iterator = pipeline.batches(epoch: pass)
                var count = 0
                var checksum: Float = 0
                while let batch = try iterator.next() {
                    count += batch.count
                    checksum += batch.inputs[0]
                }
                if checksum.isNaN { print(checksum) }  // keeps the work from being optimised away
                images = count
                if pass > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
            let seconds = times.sorted()[times.count / 2]
            let rate = Double(images) / seconds
            let impl = "tefla ImagePipeline, \(workers) worker(s)"
            if json {
                print(
                    "{\"impl\": \"\(impl)\", \"workers\": \(workers), \"images\": \(images), \"seconds\": \(seconds), "
                        + "\"images_per_s\": \(rate)}")
            } else {
                print("\(impl): \(images) images: \(Int(rate)) images/s (median of \(times.count))")
            }
        }
    }
}
