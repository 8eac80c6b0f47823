import ArgumentParser
import Dispatch
import Foundation
import Learner

/// `tefla-data bench-read`: TFRecord read + CRC check + Example parse throughput, on one thread,
/// as `Benchmarks/data/run` compares it with `tf.data.TFRecordDataset(...).map(parse_single_example)`.
struct BenchRead: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-read",
        abstract: "Time reading and parsing every record of TFRecord files (records/s, MB/s).")

    @Argument(help: "A TFRecord file, a directory of shards or a glob pattern.")
    var source: String

    @Option(name: .long, help: "Timed passes over the files; the median is reported.")
    var repeats = 5

    @Option(name: .long, help: "The reader's buffer size in KiB.")
    var bufferKib = 1024

    @Flag(name: .long, help: "Print one JSON line instead of text.")
    var json = false

    func run() throws {
        try reportingErrors {
            let files = try recordFiles(source)
            _ = try pass(files)  // warm the page cache
            var results: [(seconds: Double, records: Int, bytes: Int)] = []
            for _ in 0..<max(repeats, 1) { results.append(try pass(files)) }
            let median = results.sorted { $0.seconds < $1.seconds }[results.count / 2]
            let recordsPerSecond = Double(median.records) / median.seconds
            let megabytesPerSecond = Double(median.bytes) / median.seconds / 1e6
            if json {
                print(
                    "{\"impl\": \"tefla\", \"records\": \(median.records), \"bytes\": \(median.bytes), \"seconds\": \(median.seconds), \"records_per_s\": \(recordsPerSecond), \"mb_per_s\": \(megabytesPerSecond)}"
                )
            } else {
                print(
                    "\(median.records) records, \(median.bytes) payload bytes: \(Int(recordsPerSecond)) records/s, \(String(format: "%.1f", megabytesPerSecond)) MB/s (median of \(results.count))"
                )
            }
        }
    }

    /// One pass: every record read, CRC-checked and parsed into an ``Example``.
    private func pass(_ files: [String]) throws -> (seconds: Double, records: Int, bytes: Int) {
        let start = DispatchTime.now().uptimeNanoseconds
        var records = 0
        var bytes = 0
        var features = 0
        for file in files {
            let reader = try TFRecordReader(path: file, bufferSize: bufferKib << 10)
            try reader.forEachRecord { payload, location in
                do {
                    features += try Example(serialized: payload).features.count
                } catch let error as DataError {
                    throw error.located(at: location)
                }
                records += 1
                bytes += payload.count
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if features < 0 { print(features) }  // keeps the parse from being optimised away
        return (seconds, records, bytes)
    }
}
