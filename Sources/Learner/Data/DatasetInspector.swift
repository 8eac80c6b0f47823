import CLearner
import Foundation

/// One shard as ``DatasetInspector`` saw it.
public struct ShardSummary: Sendable, Equatable {
    public var path: String
    public var records: Int
    /// The compression detected from the file's first bytes.
    public var compression: TFRecordCompression
    /// Size of the file on disk.
    public var bytes: Int
}

/// One feature key over all records of a data set.
public struct FeatureSummary: Sendable, Equatable {
    public var key: String
    /// The list kinds seen (`bytes`, `float`, `int64`), sorted; more than one means the data set mixes them.
    public var kinds: [String]
    /// How many records have the key.
    public var records: Int
    /// Fewest and most values a record holds under the key.
    public var minValues: Int
    public var maxValues: Int
}

/// What `tefla-data inspect` prints: records per shard, feature keys, and a label histogram.
public struct DatasetSummary: Sendable, Equatable {
    public var shards: [ShardSummary]
    /// Every feature key seen, sorted by key.
    public var features: [FeatureSummary]
    /// Records per value of the label key's first value (`<missing>` when absent), or nil when no
    /// label key was asked for.
    public var labelHistogram: [LabelCount]?
    public var totalRecords: Int { shards.reduce(0) { $0 + $1.records } }
}

/// How many records carry one label value.
public struct LabelCount: Sendable, Equatable {
    /// The label's first value as text (numbers as Swift prints them, bytes as UTF-8).
    public var label: String
    public var count: Int
}

/// Reads TFRecord shards of `tf.train.Example`s and summarises them (``DatasetSummary``).
public enum DatasetInspector {
    /// Label text used for records that lack the label key.
    public static let missingLabel = "<missing>"

    /// Reads every record of `files`; throws the first ``DataError`` met (corrupt record, not an Example).
    public static func inspect(files: [String], labelKey: String? = nil) throws -> DatasetSummary {
        var shards: [ShardSummary] = []
        var features: [String: FeatureSummary] = [:]
        var labels: [String: Int] = [:]
        for file in files {
            let reader = try TFRecordReader(path: file)
            var records = 0
            try reader.forEachRecord { bytes, location in
                records += 1
                let example: ExampleHandle
                do { example = try ExampleHandle(parsing: bytes) } catch { throw DataError.unparsableExample(location) }
                for key in example.keys {
                    guard let (kind, count) = example.find(key) else { continue }
                    let kindName = name(of: kind)
                    var entry =
                        features[key]
                        ?? FeatureSummary(key: key, kinds: [], records: 0, minValues: count, maxValues: count)
                    if !entry.kinds.contains(kindName) { entry.kinds = (entry.kinds + [kindName]).sorted() }
                    entry.records += 1
                    entry.minValues = min(entry.minValues, count)
                    entry.maxValues = max(entry.maxValues, count)
                    features[key] = entry
                }
                if let labelKey { labels[labelText(example.feature(labelKey)), default: 0] += 1 }
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            shards.append(ShardSummary(path: file, records: records, compression: reader.compression, bytes: size))
        }
        let histogram = labelKey.map { _ in
            labels.map { LabelCount(label: $0.key, count: $0.value) }.sorted { labelOrder($0.label, $1.label) }
        }
        return DatasetSummary(
            shards: shards, features: features.values.sorted { $0.key < $1.key }, labelHistogram: histogram)
    }

    /// The first value of a label feature as text.
    static func labelText(_ feature: Feature?) -> String {
        switch feature {
        case .int64s(let v)?: return v.first.map { "\($0)" } ?? "<empty>"
        case .floats(let v)?: return v.first.map { "\($0)" } ?? "<empty>"
        case .bytes(let v)?: return v.first.map { String(decoding: $0, as: UTF8.self) } ?? "<empty>"
        case nil: return missingLabel
        }
    }

    /// Numbers in numeric order, before any text, text in byte order.
    static func labelOrder(_ a: String, _ b: String) -> Bool {
        switch (Double(a), Double(b)) {
        case (let x?, let y?): return x < y
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil): return a < b
        }
    }

    private static func name(of kind: tl_feature_kind) -> String {
        switch kind {
        case TL_FEATURE_FLOAT: return "float"
        case TL_FEATURE_INT64: return "int64"
        case TL_FEATURE_BYTES: return "bytes"
        default: return "unknown"
        }
    }
}
