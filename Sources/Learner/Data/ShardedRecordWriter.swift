import Foundation

/// Writes records across `count` TFRecord shards, record `i` to shard `i % count`, so each shard
/// gets an even share of every stretch of the input (a class-sorted input spreads every class
/// over all shards).
///
/// Shards are named as TensorFlow's tools name them: `prefix-00000-of-00004.tfrecord`, with
/// `.gz` or `.zlib` appended when compressed.
public final class ShardedRecordWriter {
    /// The shard files, in shard order.
    public let paths: [String]
    /// Records written to each shard so far.
    public private(set) var counts: [Int]
    private let writers: [TFRecordWriter]
    private var written = 0

    /// Creates `directory` when missing and opens (truncating) every shard.
    public init(directory: String, prefix: String, shards: Int, compression: TFRecordCompression = .none) throws {
        guard shards >= 1 else {
            throw ConversionError.invalidOption("the number of shards must be at least 1, got \(shards)")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DataError.io(path: directory, operation: "create directory", message: "\(error)")
        }
        let suffix: String
        switch compression {
        case .none: suffix = ""
        case .gzip: suffix = ".gz"
        case .zlib: suffix = ".zlib"
        }
        let base = URL(fileURLWithPath: directory, isDirectory: true)
        paths = (0..<shards).map { i in
            base.appendingPathComponent("\(prefix)-\(padded(i))-of-\(padded(shards)).tfrecord\(suffix)").path
        }
        writers = try paths.map { try TFRecordWriter(path: $0, compression: compression) }
        counts = Array(repeating: 0, count: shards)
    }

    /// Appends `example` to the next shard in turn.
    public func write(_ example: Example) throws {
        let shard = written % writers.count
        try writers[shard].write(example.serialized())
        counts[shard] += 1
        written += 1
    }

    /// Flushes and closes every shard.
    public func close() throws {
        for writer in writers { try writer.close() }
    }
}

/// `value` in decimal, zero-padded to five digits.
private func padded(_ value: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
}
