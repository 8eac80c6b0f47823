import CLearner
import Foundation

/// TFRecord shards of encoded images (`image/encoded` JPEG or PNG + a label), decoded, resized
/// and, for training, shuffled and augmented by an ``ImagePipeline``'s worker threads.
///
/// The options' batch size, seed and last-batch policy are replaced by those `fit` asks for;
/// its `transform` and shuffling apply to training requests only, so validation images are
/// never augmented: they get `evaluationTransform` (deterministic, e.g. ``Normalize``).
public final class ImageDataSource: DataSource {
    public let files: [String]
    public let options: ImagePipelineOptions
    /// Applied instead of `options.transform` to evaluation and prediction batches.
    public let evaluationTransform: (any ImageTransform)?
    /// Records across all shards, counted once when the source is made.
    public let sampleCount: Int?
    /// Random access to the shards (nil for compressed or damaged ones, which are streamed).
    let store: RecordStore?
    /// Records read and decoded so far, over every batch this source has handed out.
    public let counts = RecordCounts()

    public init(files: [String], options: ImagePipelineOptions, evaluationTransform: (any ImageTransform)? = nil) throws {
        self.files = files
        self.options = options
        self.evaluationTransform = evaluationTransform
        store = try RecordStore.open(files: files, compression: options.compression, imageKey: options.keys.input)
        if let store {
            sampleCount = store.count
        } else {
            var records = 0
            for file in files {
                records += try ImageDataSource.recordCount(file, compression: options.compression, skipCorrupt: options.skipCorrupt)
            }
            sampleCount = records
        }
    }

    /// tefla's `data_balancing` when set: training epochs draw their records by class.
    public private(set) var balancer: ClassBalancer?

    /// Each data-parallel replica reads and decodes only its share of every batch.
    public var readsReplicaShares: Bool { true }

    /// This source with training epochs drawn by class (tefla's `data_balancing`, as
    /// ``BalancedDataset`` does in memory): epoch e samples classes with p(e), from uniform at
    /// epoch 1 to the target distribution at epoch `epochs`, as many records as the data set
    /// holds. The labels are read once, without decoding an image; the shards must allow
    /// random access (uncompressed). `classCount` nil: `initProbabilities`' count, else the
    /// largest label + 1.
    public func balanced(classCount: Int? = nil, epochs: Int, initProbabilities: [Double]? = nil) throws -> ImageDataSource {
        guard let store else {
            throw LearnerError.invalidArgument(
                "class balancing draws records by number, but \(dataDescription) is compressed or damaged: "
                    + "write the shards uncompressed (`tefla-data verify` names damage)")
        }
        let labels = try labels().map { Int($0) }
        let balancer = try ClassBalancer(
            labels: labels, classCount: classCount ?? initProbabilities?.count ?? (labels.max() ?? 0) + 1, epochs: epochs,
            initProbabilities: initProbabilities)
        return ImageDataSource(sharing: self, store: store, balancer: balancer)
    }

    /// `source`'s files, options and opened store, with `balancer`.
    private init(sharing source: ImageDataSource, store: RecordStore, balancer: ClassBalancer) {
        files = source.files
        options = source.options
        evaluationTransform = source.evaluationTransform
        sampleCount = source.sampleCount
        self.store = store
        self.balancer = balancer
    }

    /// The shards of a directory or glob (``Shards/resolve(_:)``).
    public convenience init(source: String, options: ImagePipelineOptions, evaluationTransform: (any ImageTransform)? = nil) throws {
        try self.init(files: Shards.resolve(source), options: options, evaluationTransform: evaluationTransform)
    }

    public var dataDescription: String {
        "images of feature '\(options.keys.input)' in \(InMemoryDataset.folderDescription(files))"
    }

    public func batches(_ request: BatchRequest) throws -> any BatchStream {
        var o = options
        o.batchSize = request.batchSize
        o.seed = request.seed
        o.lastBatch = request.dropLastBatch ? .drop : .keep
        if !request.training {
            o.shuffle = false
            o.transform = evaluationTransform
        }
        if request.training, let balancer {
            // A later pass of an epoch draws afresh, with the epoch's probabilities.
            o.epochOrder = balancer.sampleOrder(epoch: request.epoch, seed: request.seed ^ (UInt64(request.pass) << 40))
        }
        o.replicaShare = request.replica
        o.startBatch = request.startBatch
        o.maxBatches = request.batchLimit.map { request.startBatch + $0 }
        // A later pass of an epoch draws its own shuffle and augmentation.
        let key = request.epoch + request.pass * 1_000_003
        let pipeline = ImagePipeline(files: files, options: o, store: .opened(store), counts: counts)
        return ImageBatchStream(pipeline.batches(epoch: key))
    }
}

/// Wraps the pipeline's batches as tensors.
final class ImageBatchStream: BatchStream {
    private let iterator: ImageBatchIterator

    init(_ iterator: ImageBatchIterator) { self.iterator = iterator }

    var skipped: SkipReport? { iterator.skipped }

    func next() throws -> DataBatch? {
        guard let batch = try iterator.next() else { return nil }
        var out = DataBatch(
            inputs: Tensor(shape: batch.shape, scalars: batch.inputs),
            labels: Tensor(shape: [batch.count] + batch.labelShape, scalars: batch.labels))
        out.names = batch.names
        out.sampleWeights = batch.sampleWeights.map { Tensor(shape: [batch.count], scalars: $0) }
        out.share = batch.share
        return out
    }
}

extension ImageDataSource {
    /// Every record's label, in file order, read without decoding an image: what class weights
    /// computed from the data (`balanced`) need. A record without the label is an error naming it.
    public func labels() throws -> [Float] {
        let key = options.keys.label
        var labels: [Float] = []
        for file in files where !ImageFiles.isImage(file) {
            try TFRecordReader(path: file, compression: options.compression).forEachRecord { bytes, location in
                let example: ExampleHandle
                do {
                    example = try ExampleHandle(parsing: bytes)
                } catch let error as DataError {
                    throw error.located(at: location)
                }
                guard let (kind, count) = example.find(key), count >= 1 else {
                    throw DataError.missingFeature(key: key, present: example.keys, at: location)
                }
                switch kind {
                case TL_FEATURE_INT64:
                    var value: Int64 = 0
                    _ = withUnsafeMutablePointer(to: &value) {
                        example.copyInt64s(key, into: UnsafeMutableBufferPointer(start: $0, count: 1))
                    }
                    labels.append(Float(value))
                case TL_FEATURE_FLOAT:
                    var value: Float = 0
                    _ = withUnsafeMutablePointer(to: &value) {
                        example.copyFloats(key, into: UnsafeMutableBufferPointer(start: $0, count: 1))
                    }
                    labels.append(value)
                default:
                    throw DataError.wrongFeatureKind(key: key, expected: "int64 or float", found: "bytes", at: location)
                }
            }
        }
        return labels
    }

    /// Records in a shard: from its index (``RecordIndex``) when it has one, with no read of the
    /// shard at all. Otherwise an uncompressed file is counted from its record headers alone,
    /// seeking over the payloads (a pass over an ImageNet-sized set costs a few thousand reads,
    /// not its 140 GB); a compressed one, or one whose headers do not add up to its size, is
    /// read through.
    static func recordCount(_ path: String, compression: TFRecordCompression?, skipCorrupt: Bool) throws -> Int {
        if ImageFiles.isImage(path) { return 1 }
        if let index = try RecordIndex.stored(for: path) { return index.count }
        if compression == nil || compression == TFRecordCompression.none, let handle = FileHandle(forReadingAtPath: path) {
            defer { try? handle.close() }
            let size = (try? handle.seekToEnd()) ?? 0
            let head = (try? handle.seek(toOffset: 0)).flatMap { try? handle.read(upToCount: tfRecordHeaderSize) } ?? Data()
            if TFRecordCompression.detect(head: [UInt8](head), path: path) == .none {
                var offset: UInt64 = 0, count = 0
                while offset + UInt64(tfRecordHeaderSize) <= size {
                    guard (try? handle.seek(toOffset: offset)) != nil,
                        let header = try? handle.read(upToCount: tfRecordHeaderSize), header.count == tfRecordHeaderSize
                    else { break }
                    let length = header.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                    let stored = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
                    guard header.withUnsafeBytes({ tl_masked_crc32c($0.baseAddress, 8) }) == stored,
                        length <= size
                    else { break }
                    offset += UInt64(tfRecordHeaderSize) + length + UInt64(tfRecordFooterSize)
                    count += 1
                }
                if offset == size { return count }
            }
        }
        // Compressed, or damaged: count by reading (the reader names the damage, unless the
        // pipeline is to skip it, when the records before it are what an epoch can count on).
        var count = 0
        do {
            try TFRecordReader(path: path, compression: compression).forEachRecord { _, _ in count += 1 }
        } catch let error as DataError where skipCorrupt && error.isCorruptRecord {
            return count
        }
        return count
    }
}
