import Foundation

/// Feature-vector shards read from disk every epoch instead of into memory: for data sets
/// larger than a memory budget (``TrainingOptions/dataMemoryBudget``, 1 GiB by default).
///
/// The records are read by number through a ``RecordStore`` (the index beside each shard, or
/// one built from the record headers), so an epoch takes them in exactly the order an
/// ``InMemoryDataset`` of the same shards would, and gives the same batches for the same seed.
/// Each data-parallel replica reads only its share of every batch. The shards must be
/// uncompressed: a GZIP/ZLIB record has no byte offset to read it at.
public final class RecordStreamDataset: DataSource {
    public let files: [String]
    public let keys: FeatureKeys
    /// Values per sample and label values per sample, as the first record has them.
    public let featureSize: Int
    public let labelSize: Int
    /// Records read so far (every replica counts its own).
    public let counts = RecordCounts()
    private let store: RecordStore

    /// Opens `files`; the first record fixes the feature and label sizes every record must have.
    public init(files: [String], keys: FeatureKeys = FeatureKeys()) throws {
        guard let store = try RecordStore.open(files: files) else {
            throw LearnerError.invalidArgument(
                "\(InMemoryDataset.folderDescription(files)) cannot be read by record number (GZIP/ZLIB-compressed, or a "
                    + "shard's framing is damaged: `tefla-data verify` names it); write the shards uncompressed to stream them")
        }
        guard store.count > 0 else { throw LearnerError.invalidArgument("\(InMemoryDataset.folderDescription(files)) holds no records") }
        self.files = files
        self.keys = keys
        self.store = store
        var first = Builder(keys: keys, totalBytes: 0)
        try store.withRecord(store.reference(0)) { bytes, location in
            do {
                try first.append(ExampleHandle(parsing: bytes), recordBytes: bytes.count)
            } catch let error as DataError {
                throw error.located(at: location)
            }
        }
        featureSize = first.featureSize ?? 0
        labelSize = first.labelSize ?? 1
    }

    public var sampleCount: Int? { store.count }
    public var readsReplicaShares: Bool { true }

    public var dataDescription: String { "feature '\(keys.input)' of \(InMemoryDataset.folderDescription(files)) (read from disk)" }

    /// Bytes the samples would take in memory as floats: what the budget is weighed against.
    public var bytesInMemory: Int { store.count * (featureSize + labelSize + (keys.sampleWeight == nil ? 0 : 1)) * 4 }

    /// Training batches follow ``SupervisedLearner/shuffledOrder(count:seed:epoch:pass:)``, as
    /// an ``InMemoryDataset``'s do; other batches keep the stored order.
    public func batches(_ request: BatchRequest) throws -> any BatchStream {
        let count = store.count
        let order =
            request.training
            ? SupervisedLearner.shuffledOrder(count: count, seed: request.seed, epoch: request.epoch, pass: request.pass) : nil
        return IndexedBatchStream(request, count: count, order: order) { positions, order in
            let mine = request.replica.map { share -> Range<Int> in
                let part = share.range(ofBatch: positions.count)
                return (positions.lowerBound + part.lowerBound)..<(positions.lowerBound + part.upperBound)
            }
            let wanted = mine ?? positions
            var batch = try self.read(order.map { Array($0[wanted]) } ?? Array(wanted))
            if let mine { batch.share = BatchShare(offset: mine.lowerBound - positions.lowerBound, globalCount: positions.count) }
            return batch
        }
    }

    /// The records numbered `indices` (files in order), as ``InMemoryDataset/collate(_:)`` lays
    /// them out. A record unlike the first (another feature size, a missing key) is an error
    /// naming its file and record.
    public func read(_ indices: [Int]) throws -> DataBatch {
        var rows = Builder(keys: keys, totalBytes: 0)
        rows.featureSize = featureSize
        rows.labelSize = labelSize
        for i in indices {
            try store.withRecord(store.reference(i)) { bytes, location in
                do {
                    try rows.append(ExampleHandle(parsing: bytes), recordBytes: bytes.count)
                } catch let error as DataError {
                    throw error.located(at: location)
                }
            }
        }
        counts.add(read: indices.count, decoded: indices.count)
        let labelShape = labelSize == 1 ? [indices.count] : [indices.count, labelSize]
        return DataBatch(
            inputs: Tensor(shape: [indices.count, featureSize], scalars: rows.inputs),
            labels: Tensor(shape: labelShape, scalars: rows.labels),
            sampleWeights: keys.sampleWeight == nil ? nil : Tensor(shape: [indices.count], scalars: rows.weights))
    }

    /// Every record's label values, in file order (for class weights and balancing), read
    /// without keeping the inputs.
    public func labels() throws -> [Float] {
        var labels: [Float] = []
        labels.reserveCapacity(store.count * labelSize)
        let chunk = 4096
        for start in stride(from: 0, to: store.count, by: chunk) {
            labels += try read(Array(start..<min(store.count, start + chunk))).labels.scalars
        }
        return labels
    }
}
