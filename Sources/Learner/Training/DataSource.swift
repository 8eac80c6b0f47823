/// Where ``SupervisedLearner/fit(_:validation:startEpoch:epochs:batchSize:dropLastBatch:iterationsPerEpoch:)``
/// takes its batches from: tefla's `training_iterator`, Keras' generators, fastai's `DataBunch`.
///
/// Implementations: ``InMemoryDataset`` (a whole data set in RAM), ``TensorDataSource`` (tensors
/// already on the host or a device), ``ImageDataSource`` (TFRecord shards of encoded images
/// through an ``ImagePipeline``); a user's own type only has to hand out batches.
///
/// The contract that makes runs reproducible and resumable: the batches of an epoch are a pure
/// function of the request (epoch, pass, batch size, seed), so asking again for epoch 3 from its
/// batch 17 yields what an uninterrupted run saw there.
public protocol DataSource {
    /// Samples in one pass over the data, when known before reading it (nil: read until the
    /// stream ends; `fit` then needs `iterationsPerEpoch`).
    var sampleCount: Int? { get }
    /// The batches of one pass, starting at `request.startBatch`.
    func batches(_ request: BatchRequest) throws -> any BatchStream
    /// What the samples are and where they come from (`feature 'image' of data/train`), as
    /// errors about them name it.
    var dataDescription: String { get }
    /// Whether the source honours ``BatchRequest/replica``: each data-parallel replica then
    /// reads only its share of every global batch. Otherwise `fit` asks every replica for the
    /// whole batches and slices them.
    var readsReplicaShares: Bool { get }
}

extension DataSource {
    public var dataDescription: String { "the \(type(of: self))'s samples" }
    public var readsReplicaShares: Bool { false }
}

/// What `fit` asks a ``DataSource`` for.
public struct BatchRequest: Sendable, Equatable {
    /// 1-based epoch: the key of the epoch's shuffle and augmentation draws.
    public var epoch: Int
    /// 0 for an epoch's first pass over the data; 1, 2, ... when an epoch of
    /// `iterationsPerEpoch` batches needs more than one pass (each pass is shuffled afresh).
    public var pass: Int
    public var batchSize: Int
    /// Training batches are shuffled and augmented; validation and prediction batches are not.
    public var training: Bool
    public var seed: UInt64
    public var dropLastBatch: Bool
    /// Batches of this pass to skip (a run resumed mid-epoch).
    public var startBatch: Int
    /// A data-parallel replica's part of every batch (sources whose ``DataSource/readsReplicaShares``):
    /// each batch then holds only that slice of the global batch, with its ``DataBatch/share``.
    public var replica: ReplicaShare?
    /// At most this many batches will be taken (a check of the first batch): a source that
    /// prepares batches ahead prepares no more. nil: the whole pass.
    public var batchLimit: Int?

    public init(
        epoch: Int, pass: Int = 0, batchSize: Int, training: Bool, seed: UInt64, dropLastBatch: Bool = false,
        startBatch: Int = 0, replica: ReplicaShare? = nil, batchLimit: Int? = nil
    ) {
        self.replica = replica
        self.batchLimit = batchLimit
        self.epoch = epoch
        self.pass = pass
        self.batchSize = batchSize
        self.training = training
        self.seed = seed
        self.dropLastBatch = dropLastBatch
        self.startBatch = startBatch
    }
}

/// The batches of one pass, in order.
public protocol BatchStream: AnyObject {
    /// The next batch, nil after the last; throws a data error naming file and record.
    func next() throws -> DataBatch?
    /// Records left out as corrupt so far (sources that skip them); complete once `next()` returned nil.
    var skipped: SkipReport? { get }
}

extension BatchStream {
    public var skipped: SkipReport? { nil }
}

/// One batch of samples on the host (or already on a device): inputs, labels and optional
/// per-sample weights, with the first dimension counting samples.
public struct DataBatch {
    /// `[B, ...]`: feature vectors or NCHW images.
    public var inputs: Tensor
    /// `[B]` class indices or targets, or `[B, C]` multi-hot rows / target vectors.
    public var labels: Tensor
    /// `[B]` weights multiplying each sample's loss (Keras' `sample_weight`), nil for 1.
    public var sampleWeights: Tensor?
    /// Each sample's name where the source knows one (`image/filename` of image records, the
    /// file of an image file), for predictions people can trace back; nil otherwise.
    public var names: [String]?
    /// Where this batch sits in its global batch, when it is one replica's share of it
    /// (``BatchRequest/replica``); nil for a whole batch.
    public var share: BatchShare?

    public init(inputs: Tensor, labels: Tensor, sampleWeights: Tensor? = nil) {
        precondition(
            inputs.shape.first == labels.shape.first,
            "a batch needs as many labels as inputs: inputs \(inputs.shape), labels \(labels.shape)")
        if let w = sampleWeights { precondition(w.scalarCount == labels.shape[0], "one sample weight per sample: \(w.shape)") }
        self.inputs = inputs
        self.labels = labels
        self.sampleWeights = sampleWeights
    }

    /// Samples in the batch.
    public var count: Int { inputs.shape.first ?? 0 }

    /// Samples `range` of the batch (a data-parallel rank's share, an accumulation slice).
    public func slice(_ range: Range<Int>) -> DataBatch {
        DataBatch(
            inputs: inputs.slice(alongAxis: 0, range).detached(), labels: labels.slice(alongAxis: 0, range).detached(),
            sampleWeights: sampleWeights?.slice(alongAxis: 0, range).detached())
    }

    /// The batch on `device` (a no-op for tensors already there).
    public func to(_ device: Device) -> DataBatch {
        DataBatch(inputs: inputs.to(device), labels: labels.to(device), sampleWeights: sampleWeights?.to(device))
    }

    /// Concatenates batches along the sample axis (a macrobatch).
    public static func concatenate(_ parts: [DataBatch]) -> DataBatch {
        precondition(!parts.isEmpty, "no batches to concatenate")
        if parts.count == 1 { return parts[0] }
        let weights: Tensor? =
            parts.allSatisfy({ $0.sampleWeights != nil })
            ? Tensor.concatenate(parts.map { $0.sampleWeights! }, alongAxis: 0) : nil
        precondition(
            weights != nil || parts.allSatisfy({ $0.sampleWeights == nil }),
            "either every batch has sample weights or none has")
        return DataBatch(
            inputs: Tensor.concatenate(parts.map(\.inputs), alongAxis: 0),
            labels: Tensor.concatenate(parts.map(\.labels), alongAxis: 0), sampleWeights: weights)
    }
}

/// A replica's share of a global batch: where its first sample sits and how many the whole
/// batch holds (a damaged record skipped from the share leaves it one short, not the whole).
public struct BatchShare: Sendable, Equatable {
    public var offset: Int
    public var globalCount: Int

    public init(offset: Int, globalCount: Int) {
        self.offset = offset
        self.globalCount = globalCount
    }
}

/// A stream over batches made by a closure from batch numbers (sources that can cut any batch
/// directly, like the in-memory ones).
final class IndexedBatchStream: BatchStream {
    /// The batches of `request` over samples in `order`: batch b is `make(positions, order)`
    /// with positions b·size ..< (b+1)·size of the order (the last one short, or dropped as the
    /// request says); `order` nil is the stored order.
    convenience init(
        _ request: BatchRequest, count: Int, order: [Int]?,
        make: @escaping (_ positions: Range<Int>, _ order: [Int]?) throws -> DataBatch
    ) {
        let size = request.batchSize
        self.init(
            startBatch: request.startBatch,
            batchCount: Learner.batchCount(samples: count, batchSize: size, dropLastBatch: request.dropLastBatch)
        ) { b in
            try make((b * size)..<Swift.min(count, (b + 1) * size), order)
        }
    }

    private var nextBatch: Int
    private let batchCount: Int
    private let make: (Int) throws -> DataBatch

    init(startBatch: Int, batchCount: Int, make: @escaping (Int) throws -> DataBatch) {
        self.nextBatch = startBatch
        self.batchCount = batchCount
        self.make = make
    }

    func next() throws -> DataBatch? {
        guard nextBatch < batchCount else { return nil }
        defer { nextBatch += 1 }
        return try make(nextBatch)
    }
}

/// Batches in one pass over `count` samples.
public func batchCount(samples count: Int, batchSize: Int, dropLastBatch: Bool) -> Int {
    dropLastBatch ? count / batchSize : (count + batchSize - 1) / batchSize
}
