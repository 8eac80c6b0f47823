import ArgumentParser
import Foundation
import Learner

/// `tefla-data convert`: image folders and CSV files to sharded TFRecords.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert an image folder or a CSV file to sharded TFRecords.",
        subcommands: [ConvertImages.self, ConvertCSV.self])
}

/// Options both conversions share.
struct OutputOptions: ParsableArguments {
    @Option(name: .long, help: "Number of shard files.")
    var shards = 1

    @Option(name: .long, help: "none, gzip or zlib.")
    var compression: TFRecordCompression = .none

    @Option(name: .long, help: "Shard file name prefix (default: the output folder's name).")
    var prefix: String?

    func writer(output: String) throws -> ShardedRecordWriter {
        let name = prefix ?? URL(fileURLWithPath: output).lastPathComponent
        return try ShardedRecordWriter(directory: output, prefix: name, shards: shards, compression: compression)
    }

    func printShards(_ writer: ShardedRecordWriter) {
        for (path, count) in zip(writer.paths, writer.counts) { print("  \(path): \(count) records") }
    }
}

/// `root/class_name/*.{jpg,png}` to TFRecords with the `build_image_data.py` features.
struct ConvertImages: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "root/class_name/*.{jpg,jpeg,png} to TFRecords (image/encoded, image/class/label, ...).",
        discussion: "Class indices follow the sorted class-folder names and are printed.")

    @Argument(help: "The image root: one subfolder per class.")
    var root: String

    @Argument(help: "Output folder for the shards.")
    var output: String

    @OptionGroup var options: OutputOptions

    func run() throws {
        try reportingErrors {
            let folder = try ImageFolder(root: root)
            print("classes:")
            for (index, name) in folder.classNames.enumerated() {
                print("  \(index): \(name) (\(folder.items.filter { $0.label == index }.count) images)")
            }
            for path in folder.skipped { print("skipped (not .jpg/.jpeg/.png): \(path)") }
            let writer = try options.writer(output: output)
            for item in folder.items { try writer.write(folder.example(for: item)) }
            try writer.close()
            print("wrote \(folder.items.count) records:")
            options.printShards(writer)
        }
    }
}

/// A CSV of numbers to TFRecords with float features.
struct ConvertCSV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csv",
        abstract: "A CSV with a header, a label column and numeric columns to TFRecords of float features.")

    @Argument(help: "The CSV file (first line: column names).")
    var file: String

    @Argument(help: "Output folder for the shards.")
    var output: String

    @Option(name: .long, help: "The label column (int64 when all values are integers, else float).")
    var labelColumn = "label"

    @Option(
        name: .long, help: "Put all feature columns in one float list under this key (else one feature per column).")
    var featuresKey: String?

    @OptionGroup var options: OutputOptions

    func run() throws {
        try reportingErrors {
            let table = try CSVExamples(path: file, labelColumn: labelColumn, featuresKey: featuresKey)
            let writer = try options.writer(output: output)
            for example in table.examples { try writer.write(example) }
            try writer.close()
            let layout =
                featuresKey.map { "'\($0)' (float x \(table.featureColumns.count))" }
                ?? table.featureColumns.map { "'\($0)'" }.joined(separator: ", ")
            print("label '\(labelColumn)' as \(table.integerLabels ? "int64" : "float"); features: \(layout)")
            print("wrote \(table.examples.count) records:")
            options.printShards(writer)
        }
    }
}
