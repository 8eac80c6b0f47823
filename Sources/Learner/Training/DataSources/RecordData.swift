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
    public init(training: String, validation: String? = nil, keys: FeatureKeys, images: ImageDataOptions = ImageDataOptions())
        throws
    {
        let files = try Shards.resolve(training)
        content = try RecordContent.probe(files: files, keys: keys)
        switch content {
        case .featureVector:
            let dataset = try InMemoryDataset.load(files: files, keys: keys)
            guard dataset.count > 0 else { throw LearnerError.invalidArgument("the training set \(training) is empty") }
            self.training = dataset
            self.validation = try validation.map { try InMemoryDataset.load(files: try Shards.resolve($0), keys: keys) }
            sampleShape = [dataset.featureSize]
        case .encodedImage:
            let shape = try images.sampleShape(files: files, key: keys.input)
            self.training = try images.source(files: files, keys: keys, shape: shape)
            self.validation = try validation.map { try images.source(files: try Shards.resolve($0), keys: keys, shape: shape) }
            sampleShape = shape
        }
    }
}
