import Foundation

/// Training (and validation) shards as data sources, whatever their records hold: feature
/// vectors are read into memory, encoded images are decoded by an ``ImageDataSource`` to the
/// training set's image shape.
public struct RecordData {
    public let training: any DataSource
    public let validation: (any DataSource)?
    /// What the training records hold under the input key.
    public let content: RecordContent
    /// One sample's shape: `[values]` for feature vectors, `[channels, height, width]` for images.
    public let sampleShape: [Int]

    /// Opens the shards of `training` and `validation` (directories or globs, ``Shards/resolve(_:)``).
    ///
    /// Feature vectors go into memory unless they would take more than `memoryBudget` bytes
    /// there; then they are read from disk every epoch (``RecordStreamDataset``).
    public init(
        training: String, validation: String? = nil, keys: FeatureKeys, images: ImageDataOptions = ImageDataOptions(),
        memoryBudget: Int = 1 << 30
    ) throws {
        let files = try Shards.resolve(training)
        content = try RecordContent.probe(files: files, keys: keys)
        switch content {
        case .featureVector:
            let data = try RecordData.featureVectors(files: files, keys: keys, memoryBudget: memoryBudget)
            guard data.count > 0 else { throw LearnerError.invalidArgument("the training set \(training) is empty") }
            self.training = data.source
            self.validation = try validation.map {
                try RecordData.featureVectors(files: try Shards.resolve($0), keys: keys, memoryBudget: memoryBudget).source
            }
            sampleShape = [data.featureSize]
        case .encodedImage:
            let shape = try images.sampleShape(files: files, key: keys.input)
            self.training = try images.source(files: files, keys: keys, shape: shape)
            self.validation = try validation.map { try images.source(files: try Shards.resolve($0), keys: keys, shape: shape) }
            sampleShape = shape
        }
    }

    /// Feature-vector shards as a source: in memory when their samples fit `memoryBudget` bytes
    /// (or the shards are compressed, so they cannot be read by record number), else read from
    /// disk every epoch with the same batches. `inMemory` is the data set when it was loaded.
    public static func featureVectors(files: [String], keys: FeatureKeys, memoryBudget: Int) throws -> (
        source: any DataSource, featureSize: Int, count: Int, inMemory: InMemoryDataset?
    ) {
        if files.count > 0, let streamed = try? RecordStreamDataset(files: files, keys: keys),
            streamed.bytesInMemory > memoryBudget
        {
            return (streamed, streamed.featureSize, streamed.sampleCount ?? 0, nil)
        }
        let dataset = try InMemoryDataset.load(files: files, keys: keys)
        return (dataset, dataset.featureSize, dataset.count, dataset)
    }
}
