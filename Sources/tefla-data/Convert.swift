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

/// `--val-fraction` and `--seed`: a stratified split into `OUTPUT/train` and `OUTPUT/val`.
struct SplitOptions: ParsableArguments {
    @Option(
        name: .customLong("val-fraction"),
        help: "Hold out this fraction of every class as OUTPUT/val (the rest in OUTPUT/train); 0: no split.")
    var valFraction = 0.0

    @Option(name: .long, help: "Seed of the split and of the record order.")
    var seed: UInt64 = 0

    func validate() throws {
        guard valFraction >= 0 && valFraction < 1 else {
            throw ValidationError("--val-fraction must be in [0, 1), got \(valFraction)")
        }
    }

    /// The parts to write: `(subfolder, sample indices)`; one unnamed part without a split.
    func parts(labels: [Int], order: [Int]) -> [(name: String?, indices: [Int])] {
        guard valFraction > 0 else { return [(nil, order)] }
        let split = DataSplit.stratified(labels: labels, fraction: valFraction, seed: seed)
        return [("train", split.train), ("val", split.validation)]
    }

    /// The writer of one part: `OUTPUT/name` with `prefix-name` shards; validation gets shards in
    /// proportion to its share (at least one).
    func writer(_ part: String?, output: String, options: OutputOptions) throws -> ShardedRecordWriter {
        let folder = part.map { URL(fileURLWithPath: output).appendingPathComponent($0).path } ?? output
        let prefix = (options.prefix ?? URL(fileURLWithPath: output).lastPathComponent) + (part.map { "-\($0)" } ?? "")
        let shards =
            part == "val" ? max(1, Int((Double(options.shards) * valFraction / (1 - valFraction)).rounded())) : options.shards
        return try ShardedRecordWriter(directory: folder, prefix: prefix, shards: shards, compression: options.compression)
    }
}

/// Reports how far a conversion is: a line redrawn in place on a terminal, a line per tenth otherwise.
struct ConversionProgress {
    let label: String
    let total: Int
    private let terminal = isatty(STDOUT_FILENO) != 0
    private var shownTenth = 0

    init(label: String, total: Int) {
        self.label = label
        self.total = total
    }

    mutating func update(_ done: Int) {
        if terminal {
            print("\r\(label): \(done)/\(total) images", terminator: done == total ? "\n" : "")
            fflush(nil)  // every stream: `stdout` itself is shared mutable state to Swift 6
        } else if total > 0, done * 10 / total > shownTenth {
            shownTenth = done * 10 / total
            print("\(label): \(done)/\(total) images")
        }
    }
}

/// `root/class_name/*.{jpg,png}` to TFRecords with the `build_image_data.py` features.
struct ConvertImages: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "root/class_name/*.{jpg,jpeg,png} to TFRecords (image/encoded, image/class/label, ...).",
        discussion: """
            Class indices follow the sorted class-folder names and are printed. Records are written in a
            seeded shuffled order, so every shard mixes the classes; --val-fraction also splits every
            class into OUTPUT/train and OUTPUT/val.
            """)

    @Argument(help: "The image root: one subfolder per class.")
    var root: String

    @Argument(help: "Output folder for the shards.")
    var output: String

    @OptionGroup var options: OutputOptions
    @OptionGroup var split: SplitOptions

    @Option(name: .long, help: "Shrink images whose shorter side is longer to this many pixels (aspect kept, antialiased).")
    var resize: Int?

    @Option(name: .long, help: "JPEG quality of resized images (1-100).")
    var quality = 95

    @Option(name: .long, help: "Threads reading, resizing and encoding images (default: the processor count).")
    var workers = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        if let resize, resize < 1 { throw ValidationError("--resize must be >= 1, got \(resize)") }
        if !(1...100).contains(quality) { throw ValidationError("--quality must be in 1...100, got \(quality)") }
        if workers < 1 { throw ValidationError("--workers must be >= 1, got \(workers)") }
    }

    func run() throws {
        try reportingErrors {
            let folder = try ImageFolder(root: root)
            print("classes:")
            for (index, name) in folder.classNames.enumerated() {
                print("  \(index): \(name) (\(folder.items.filter { $0.label == index }.count) images)")
            }
            for path in folder.skipped { print("skipped (not .jpg/.jpeg/.png): \(path)") }
            let order = DataSplit.shuffled(folder.items.count, seed: split.seed)
            for part in split.parts(labels: folder.items.map(\.label), order: order) {
                let writer = try split.writer(part.name, output: output, options: options)
                let items = part.indices.map { folder.items[$0] }
                var progress = ConversionProgress(label: part.name ?? "convert", total: items.count)
                try ParallelConversion.run(items.count, workers: workers) { i in
                    try folder.example(for: items[i], shorterSide: resize, quality: quality)
                } write: { example, done in
                    try writer.write(example)
                    progress.update(done)
                }
                try writer.close()
                print("wrote \(items.count) records" + (part.name.map { " to \($0)/" } ?? "") + ":")
                options.printShards(writer)
            }
        }
    }
}

/// Makes records on worker threads a chunk at a time and writes them in order, so the files are
/// the same for any number of workers; the first failure in order stops the conversion.
enum ParallelConversion {
    /// One result per record of a chunk, filled by the workers.
    // @unchecked Sendable: every access to `values` holds `lock`.
    private final class Slots: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Result<Example, Error>?]

        init(count: Int) { values = Array(repeating: nil, count: count) }

        func set(_ i: Int, _ result: Result<Example, Error>) { lock.withLock { values[i] = result } }
        var all: [Result<Example, Error>?] { lock.withLock { values } }
    }

    static func run(
        _ count: Int, workers: Int, make: @escaping @Sendable (Int) throws -> Example,
        write: (Example, Int) throws -> Void
    ) throws {
        let chunk = max(1, workers * 8)
        var start = 0
        while start < count {
            let end = min(count, start + chunk)
            let results = Slots(count: end - start)
            let first = start
            DispatchQueue.concurrentPerform(iterations: min(workers, end - start)) { w in
                for i in stride(from: first + w, to: end, by: min(workers, end - first)) {
                    results.set(i - first, Result { try make(i) })
                }
            }
            for (offset, result) in results.all.enumerated() {
                guard let result else { continue }
                try write(try result.get(), first + offset + 1)
            }
            start = end
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
    @OptionGroup var split: SplitOptions

    func run() throws {
        try reportingErrors {
            let table = try CSVExamples(path: file, labelColumn: labelColumn, featuresKey: featuresKey)
            let layout =
                featuresKey.map { "'\($0)' (float x \(table.featureColumns.count))" }
                ?? table.featureColumns.map { "'\($0)'" }.joined(separator: ", ")
            print("label '\(labelColumn)' as \(table.integerLabels ? "int64" : "float"); features: \(layout)")
            // Integer labels are classes, split class by class; float targets are one stratum.
            // Without a split the rows keep the file's order.
            let labels = table.examples.map { example -> Int in
                if table.integerLabels, case .int64s(let v)? = example[labelColumn], let first = v.first { return Int(first) }
                return 0
            }
            for part in split.parts(labels: labels, order: Array(table.examples.indices)) {
                let writer = try split.writer(part.name, output: output, options: options)
                for i in part.indices { try writer.write(table.examples[i]) }
                try writer.close()
                print("wrote \(part.indices.count) records" + (part.name.map { " to \($0)/" } ?? "") + ":")
                options.printShards(writer)
            }
        }
    }
}
