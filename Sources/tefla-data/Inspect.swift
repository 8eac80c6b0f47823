import ArgumentParser
import Learner

/// `tefla-data inspect`: records per shard, feature keys and kinds, label histogram.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise TFRecord shards: records, compression, feature keys, labels.")

    @Argument(help: "A TFRecord file, a directory of shards or a glob pattern.")
    var source: String

    @Option(name: .long, help: "Feature whose first value is counted per label.")
    var labelKey: String?

    func run() throws {
        try reportingErrors {
            let summary = try DatasetInspector.inspect(files: recordFiles(source), labelKey: labelKey)
            print("shards: \(summary.shards.count)")
            for shard in summary.shards {
                print(
                    "  \(shard.path): \(shard.records) records, \(shard.bytes) bytes, compression \(shard.compression.rawValue)"
                )
            }
            print("total records: \(summary.totalRecords)")
            print("features:")
            for feature in summary.features {
                let values =
                    feature.minValues == feature.maxValues
                    ? "\(feature.minValues)" : "\(feature.minValues)-\(feature.maxValues)"
                print(
                    "  \(feature.key): \(feature.kinds.joined(separator: "|")), \(values) values, in \(feature.records) of \(summary.totalRecords) records"
                )
            }
            if let histogram = summary.labelHistogram, let labelKey {
                print("labels (\(labelKey)):")
                for entry in histogram { print("  \(entry.label): \(entry.count)") }
            }
        }
    }
}
