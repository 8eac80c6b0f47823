import CLearner
import Foundation

/// Which Example features hold a sample's input, its label and, optionally, its loss weight.
public struct FeatureKeys: Equatable, Sendable {
    public var input: String
    public var label: String
    /// A float or int64 feature whose first value weighs the sample's loss (Keras'
    /// `sample_weight`); nil: every sample weighs 1.
    public var sampleWeight: String?

    public init(input: String = "image", label: String = "label", sampleWeight: String? = nil) {
        self.input = input
        self.label = label
        self.sampleWeight = sampleWeight
    }
}

/// A whole data set of fixed-size samples held in memory as flat `Float` arrays.
///
/// Meant for data sets that fit in RAM (MNIST-sized and below), where decoding every record once
/// beats streaming shards each epoch. Inputs are row-major, `count × featureSize`; each label is a
/// class index or a regression target. Knows nothing of tensors: the training side wraps the
/// arrays however its backend wants.
public struct InMemoryDataset: Sendable {
    /// `count * featureSize` values, sample after sample.
    public let inputs: [Float]
    /// `labelSize` values per sample: a class index or regression target (`labelSize` 1), or a
    /// multi-hot row / target vector.
    public let labels: [Float]
    public let count: Int
    /// Values per sample.
    public let featureSize: Int
    /// Label values per sample: 1, or the width of multi-label / vector targets.
    public let labelSize: Int
    /// One loss weight per sample (``FeatureKeys/sampleWeight``), nil when not read.
    public let sampleWeights: [Float]?
    /// The shard files read, in order.
    public let sources: [String]
    /// Records read from each of ``sources``.
    public internal(set) var recordsPerSource: [Int] = []
    /// The features the samples were read from, nil for arrays given directly.
    public internal(set) var keys: FeatureKeys?

    /// A dataset from arrays already in memory (synthetic data, tests).
    public init(
        inputs: [Float], labels: [Float], featureSize: Int, labelSize: Int = 1, sampleWeights: [Float]? = nil,
        sources: [String] = []
    ) {
        precondition(featureSize > 0 || inputs.isEmpty, "featureSize must be positive")
        precondition(labelSize > 0 && labels.count % labelSize == 0, "labels must hold count * labelSize values")
        precondition(inputs.count == labels.count / labelSize * featureSize, "inputs must hold count * featureSize values")
        self.inputs = inputs
        self.labels = labels
        self.count = labels.count / labelSize
        self.featureSize = featureSize
        self.labelSize = labelSize
        precondition(sampleWeights == nil || sampleWeights!.count == labels.count / labelSize, "one sample weight per sample")
        self.sampleWeights = sampleWeights
        self.sources = sources
    }

    /// Reads every record of every shard in `directory` (see ``Shards/list(in:)``).
    ///
    /// The input feature may be a float list, an int64 list (converted to `Float`) or a single bytes
    /// value of raw `uint8` pixels (scaled by 1/255); every record must have as many values as the
    /// first. The label is an int64 or float list: one value (a class index or target), or as
    /// many values in every record as in the first (multi-hot rows, target vectors).
    public static func load(directory: String, keys: FeatureKeys = FeatureKeys()) throws -> InMemoryDataset {
        try load(files: Shards.list(in: directory), keys: keys)
    }

    /// Reads every record of the given TFRecord files, in order; see ``load(directory:keys:)``.
    public static func load(files: [String], keys: FeatureKeys = FeatureKeys()) throws -> InMemoryDataset {
        var builder = Builder(keys: keys, totalBytes: files.reduce(0) { $0 + fileSize($1) })
        var recordsPerSource: [Int] = []
        for file in files {
            let before = builder.labels.count / (builder.labelSize ?? 1)
            defer { recordsPerSource.append(builder.labels.count / (builder.labelSize ?? 1) - before) }
            let reader = try TFRecordReader(path: file)
            try reader.forEachRecord { bytes, location in
                do {
                    try builder.append(ExampleHandle(parsing: bytes), recordBytes: bytes.count)
                } catch let error as DataError {
                    throw error.located(at: location)
                }
            }
        }
        var dataset = InMemoryDataset(
            inputs: builder.inputs, labels: builder.labels, featureSize: builder.featureSize ?? 0,
            labelSize: builder.labelSize ?? 1,
            sampleWeights: keys.sampleWeight == nil ? nil : builder.weights, sources: files)
        dataset.recordsPerSource = recordsPerSource
        dataset.keys = keys
        return dataset
    }
}

/// Size of the file at `path` in bytes, 0 when unknown (only a capacity hint depends on it).
private func fileSize(_ path: String) -> Int {
    let attributes = try? FileManager.default.attributesOfItem(atPath: path)
    return (attributes?[.size] as? NSNumber)?.intValue ?? 0
}

/// Accumulates decoded samples; the first record fixes the feature size (or a caller sets
/// the sizes every record must have).
struct Builder {
    let keys: FeatureKeys
    /// Bytes in all shards, to size the arrays once from the first record instead of regrowing
    /// (and briefly holding twice) a multi-gigabyte array.
    let totalBytes: Int
    var inputs: [Float] = []
    var labels: [Float] = []
    var featureSize: Int?
    var labelSize: Int?
    var weights: [Float] = []
    /// Reused for int64 inputs so a record costs no allocation.
    var int64Scratch: [Int64] = []

    init(keys: FeatureKeys, totalBytes: Int) {
        self.keys = keys
        self.totalBytes = totalBytes
    }

    /// Appends one record; `recordBytes` is its payload size, for the first record's capacity estimate.
    mutating func append(_ example: ExampleHandle, recordBytes: Int) throws {
        try appendInput(example)
        try appendLabel(example)
        if let key = keys.sampleWeight { try appendWeight(example, key: key) }
        if labels.count == labelSize, let size = featureSize {
            // Records of one data set are alike in size, so the first one predicts the count.
            let estimate = totalBytes / (recordBytes + tfRecordHeaderSize + tfRecordFooterSize) + 1
            inputs.reserveCapacity(estimate * size)
            labels.reserveCapacity(estimate * (labelSize ?? 1))
        }
    }

    /// Appends the first value of the weight feature to `weights`.
    private mutating func appendWeight(_ example: ExampleHandle, key: String) throws {
        guard let (kind, count) = example.find(key) else {
            throw DataError.missingFeature(key: key, present: example.keys, at: nil)
        }
        guard count >= 1 else { throw DataError.wrongLength(key: key, expected: 1, found: count, at: nil) }
        try Builder.appendNumbers(example, key: key, kind: kind, count: 1, to: &weights, scratch: &int64Scratch)
    }

    /// Appends the record's label values: every record has as many as the first.
    private mutating func appendLabel(_ example: ExampleHandle) throws {
        let key = keys.label
        guard let (kind, count) = example.find(key) else {
            throw DataError.missingFeature(key: key, present: example.keys, at: nil)
        }
        guard count >= 1 else { throw DataError.wrongLength(key: key, expected: labelSize ?? 1, found: count, at: nil) }
        if let expected = labelSize, expected != count {
            throw DataError.wrongLength(key: key, expected: expected, found: count, at: nil)
        }
        labelSize = count
        try Builder.appendNumbers(example, key: key, kind: kind, count: count, to: &labels, scratch: &int64Scratch)
    }

    /// Appends the first `count` values of an int64 or float feature to `values` as `Float`s
    /// (`scratch` holds int64s on the way, reused from record to record).
    private static func appendNumbers(
        _ example: ExampleHandle, key: String, kind: tl_feature_kind, count: Int,
        to values: inout [Float], scratch int64Scratch: inout [Int64]
    ) throws {
        switch kind {
        case TL_FEATURE_INT64:
            if int64Scratch.count < count { int64Scratch = [Int64](repeating: 0, count: count) }
            int64Scratch.withUnsafeMutableBufferPointer { scratch in
                let n = example.copyInt64s(key, into: UnsafeMutableBufferPointer(rebasing: scratch[0..<count]))
                for i in 0..<n { values.append(Float(scratch[i])) }
            }
        case TL_FEATURE_FLOAT:
            let base = values.count
            values.append(contentsOf: repeatElement(0, count: count))
            values.withUnsafeMutableBufferPointer { all in
                _ = example.copyFloats(key, into: UnsafeMutableBufferPointer(rebasing: all[base..<base + count]))
            }
        default:
            throw DataError.wrongFeatureKind(key: key, expected: "int64 or float", found: "bytes", at: nil)
        }
    }

    private mutating func appendInput(_ example: ExampleHandle) throws {
        let key = keys.input
        guard let (kind, count) = example.find(key) else {
            throw DataError.missingFeature(key: key, present: example.keys, at: nil)
        }
        let raw: UnsafeRawBufferPointer?
        if kind == TL_FEATURE_BYTES {
            guard count == 1 else { throw DataError.wrongLength(key: key, expected: 1, found: count, at: nil) }
            raw = example.bytes(key, at: 0)
        } else {
            raw = nil
        }
        let size = raw?.count ?? count
        if let expected = featureSize, expected != size {
            throw DataError.wrongLength(key: key, expected: expected, found: size, at: nil)
        }
        featureSize = size

        let base = inputs.count
        inputs.append(contentsOf: repeatElement(0, count: size))
        if kind == TL_FEATURE_INT64, int64Scratch.count < size {
            int64Scratch = [Int64](repeating: 0, count: size)
        }
        inputs.withUnsafeMutableBufferPointer { all in
            let row = UnsafeMutableBufferPointer(rebasing: all[base..<base + size])
            switch kind {
            case TL_FEATURE_FLOAT:
                _ = example.copyFloats(key, into: row)
            case TL_FEATURE_INT64:
                int64Scratch.withUnsafeMutableBufferPointer { scratch in
                    let n = example.copyInt64s(key, into: UnsafeMutableBufferPointer(rebasing: scratch[0..<size]))
                    for i in 0..<n { row[i] = Float(scratch[i]) }
                }
            default:
                guard let pixels = raw else { return }
                // Divide rather than multiply by 1/255: correctly rounded, as numpy's x / 255 is.
                for i in 0..<size { row[i] = Float(pixels[i]) / 255 }
            }
        }
    }
}
