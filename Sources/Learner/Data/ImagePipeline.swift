import CLearner
import Foundation

/// What to do with the last, short batch of an epoch.
public enum LastBatch: String, Sendable, Equatable {
    /// Yield it with fewer samples.
    case keep
    /// Drop it, so every batch holds exactly `batchSize` samples.
    case drop
}

/// One batch of images, collated for the conv layers: plain arrays plus shapes, so the data layer
/// knows nothing of tensors (the learner wraps them).
public struct ImageBatch: Sendable, Equatable {
    /// `count * channels * height * width` values, NCHW.
    public var inputs: [Float]
    /// One value per sample: a class index or a regression target (NaN where a record has no
    /// label and ``ImagePipelineOptions/labelsRequired`` is false); with a
    /// ``ImagePipelineOptions/denseLabel``, each sample's label image of ``labelShape``.
    public var labels: [Float]
    /// The shape of one sample's label: `[]` for one value, `[height, width]` for a class mask,
    /// `[channels, height, width]` for a target image.
    public var labelShape: [Int] = []
    /// Each sample's `image/filename` (the file's name for image files), "" where a record has none.
    public var names: [String] = []
    /// Each sample's loss weight, read from ``FeatureKeys/sampleWeight`` when the keys name one.
    public var sampleWeights: [Float]?
    /// With ``ImagePipelineOptions/replicaShare``: where this share sits in its global batch;
    /// nil for a whole batch.
    public var share: BatchShare?
    /// `[count, channels, height, width]`.
    public var shape: [Int]
    /// The epoch and zero-based batch number within it.
    public var epoch: Int
    public var index: Int

    /// Number of samples.
    public var count: Int { shape[0] }
}

/// How an ``ImagePipeline`` reads, shuffles, decodes, augments and batches.
public struct ImagePipelineOptions: Sendable {
    public var batchSize: Int
    /// Size every image is brought to (after `transform`, by bilinear resizing when it differs).
    public var height: Int
    public var width: Int
    /// 1 (grey) or 3 (RGB); images are converted as they decode.
    public var channels: Int
    /// Shuffle shard order and records (through a buffer of `shuffleBufferSize`), keyed by
    /// (seed, epoch): the same order on every run and for any number of workers.
    public var shuffle: Bool
    public var seed: UInt64
    /// Records held for shuffling: a uniform shuffle when at least the data set's size,
    /// `tf.data`'s buffer shuffle (on top of a shuffled shard order) below that. Shards read by
    /// record number (``RecordStore``) shuffle record numbers, so a buffer the size of the data
    /// set costs little; streamed (compressed) shards hold that many encoded records in memory
    /// (about 110 MB per 1,000 ImageNet JPEGs).
    public var shuffleBufferSize: Int
    /// Threads decoding and augmenting each batch (Keras' `workers`).
    public var workers: Int
    /// Batches prepared ahead of the consumer (Keras' `max_queue_size`).
    public var maxQueueSize: Int
    public var lastBatch: LastBatch
    /// `input` names the encoded image (bytes), `label` an int64 or float feature.
    public var keys: FeatureKeys
    /// Training augmentation applied to each decoded [0, 1] image, keyed by (seed, epoch, position
    /// in the epoch); nil for validation (decode and resize only).
    public var transform: (any ImageTransform)?
    /// Compression of the shards; nil detects it per file.
    public var compression: TFRecordCompression?
    /// How JPEGs are decoded: `.integerFast` is what `tf.io.decode_jpeg` does by default.
    public var jpegDCT: ImageDecoder.DCTMethod = .integerAccurate
    /// false (the default): the first damaged record ends the epoch with its error (file, record,
    /// byte offset). true: damaged records (``DataError/isCorruptRecord``) are counted in
    /// ``ImageBatchIterator/skipped`` and left out, later samples filling the batches; a damaged
    /// framing or file tail, or an empty shard, ends that file with one skip.
    public var skipCorrupt = false
    /// false: a record without the label feature gets the label NaN instead of an error
    /// (prediction on unlabelled data).
    public var labelsRequired = true
    /// A data-parallel replica's part of every batch: only those records are read (from shards
    /// that allow random access, see ``RecordStore``) and decoded, and the batches hold only
    /// them, each the slice of the batch one replica would have made. A damaged record skipped
    /// there leaves its batch one short (no later sample fills in, so every replica still sees
    /// one batch per global batch). nil: whole batches.
    public var replicaShare: ReplicaShare?
    /// Batches of the epoch to pass over without decoding them (a run resumed mid-epoch).
    public var startBatch = 0
    /// The epoch ends after this many batches (counting those passed over); nil: at the end
    /// of the data. Nothing beyond them is read ahead.
    public var maxBatches: Int?
    /// A label that is an image aligned with the input (a segmentation mask, a target image):
    /// the label feature holds an encoded PNG (or JPEG), decoded and moved by the same geometric
    /// augmentation as the input (``ImageTransform/apply(_:target:random:)``), resized to the
    /// input's size. nil: one value per sample.
    public var denseLabel: DenseLabel?

    /// Values of one sample's label.
    public var labelSize: Int { denseLabel.map { $0.channels * height * width } ?? 1 }

    /// The shape of one sample's label (see ``ImageBatch/labelShape``).
    public var labelShape: [Int] {
        switch denseLabel {
        case nil: return []
        case .classMask: return [height, width]
        case .targetImage(let channels): return [channels, height, width]
        }
    }

    /// The epoch's records by number (files in order, records in file order), repeats allowed:
    /// a class-balanced draw (``ImageDataSource/balanced(classCount:epochs:initProbabilities:)``)
    /// instead of the shuffle. Needs shards that allow random access (``RecordStore``).
    public var epochOrder: [Int]?

    public init(
        batchSize: Int, height: Int, width: Int, channels: Int = 3, shuffle: Bool = false, seed: UInt64 = 0,
        shuffleBufferSize: Int = 1024, workers: Int = 1, maxQueueSize: Int = 10, lastBatch: LastBatch = .keep,
        keys: FeatureKeys = FeatureKeys(input: "image/encoded", label: "label"), transform: (any ImageTransform)? = nil,
        compression: TFRecordCompression? = nil
    ) {
        precondition(batchSize > 0 && height > 0 && width > 0, "batch size and image size must be positive")
        precondition(channels == 1 || channels == 3, "channels must be 1 or 3")
        self.batchSize = batchSize
        self.height = height
        self.width = width
        self.channels = channels
        self.shuffle = shuffle
        self.seed = seed
        self.shuffleBufferSize = max(shuffleBufferSize, 1)
        self.workers = max(workers, 1)
        self.maxQueueSize = max(maxQueueSize, 1)
        self.lastBatch = lastBatch
        self.keys = keys
        self.transform = transform
        self.compression = compression
    }
}

/// Streams batches of decoded, augmented images from TFRecord shards of `tf.train.Example`s.
///
/// A JPEG or PNG file among the files (``ImageFiles/isImage(_:)``) is read as a shard of one
/// unlabelled record, so a plain folder of images can be predicted on.
///
/// One producer thread per epoch reads the shards in (shuffled) order through a shuffle buffer,
/// gathers a batch of raw records, has `workers` threads parse, decode, augment and write them
/// straight into the batch's NCHW array, and queues the batch (at most `maxQueueSize` ahead).
/// Every random choice is keyed by (seed, epoch) or (seed, epoch, sample position), and the
/// record order is fixed before decoding starts, so the batches are the same whatever the number
/// of workers and however the threads interleave.
public final class ImagePipeline: Sendable {
    /// The shard files, in the order an unshuffled epoch reads them.
    public let files: [String]
    public let options: ImagePipelineOptions
    /// Random access to the files, when they allow it: the epoch's order is then drawn over
    /// record numbers and each record is read by the worker that decodes it. `.perEpoch`:
    /// each epoch opens the files itself (``RecordStore/open(files:compression:imageKey:)``).
    let store: StoreChoice
    /// Records read and decoded so far, over every epoch of this pipeline.
    public let counts: RecordCounts

    enum StoreChoice: Sendable {
        case perEpoch
        case opened(RecordStore?)
    }

    /// Each epoch opens the files for random access when they allow it (uncompressed shards,
    /// image files) and streams them otherwise; either way the batches are the same.
    public convenience init(files: [String], options: ImagePipelineOptions) {
        self.init(files: files, options: options, store: .perEpoch, counts: RecordCounts())
    }

    init(files: [String], options: ImagePipelineOptions, store: StoreChoice, counts: RecordCounts) {
        self.files = files
        self.options = options
        self.store = store
        self.counts = counts
    }

    /// The shards of a directory or a glob pattern (see ``Shards/resolve(_:)``).
    ///
    /// Make one pipeline for the training directory and one for the validation directory.
    public convenience init(source: String, options: ImagePipelineOptions) throws {
        self.init(files: try Shards.resolve(source), options: options)
    }

    /// Starts producing the batches of `epoch`; iterate with ``ImageBatchIterator/next()``.
    public func batches(epoch: Int) -> ImageBatchIterator {
        ImageBatchIterator(pipeline: self, epoch: epoch)
    }

    /// Shard order of `epoch` as file numbers: a seeded Fisher-Yates permutation when shuffling.
    func shardOrder(epoch: Int) -> [Int] {
        var order = Array(files.indices)
        guard options.shuffle else { return order }
        var random = SampleRandom(seed: options.seed, epoch: epoch, index: -1)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, random.below(i + 1)) }
        return order
    }
}

/// The batches of one epoch, produced in the background; dropping it stops the producer.
public final class ImageBatchIterator {
    private let queue: BoundedQueue<Result<ImageBatch, Error>>
    private let log = SkipLog()
    private var done = false

    /// The records skipped so far this epoch (``ImagePipelineOptions/skipCorrupt``); complete once
    /// ``next()`` has returned nil.
    public var skipped: SkipReport { log.snapshot }

    init(pipeline: ImagePipeline, epoch: Int) {
        let queue = BoundedQueue<Result<ImageBatch, Error>>(capacity: pipeline.options.maxQueueSize)
        self.queue = queue
        let log = self.log
        let producer = Thread {
            let producer = BatchProducer(pipeline: pipeline, epoch: epoch, queue: queue, log: log)
            do {
                try producer.run()
            } catch {
                _ = queue.push(.failure(error))
            }
            queue.finish()
        }
        producer.name = "tefla-image-pipeline"
        producer.start()
    }

    deinit { queue.close() }

    /// The next batch; nil after the last.
    ///
    /// Rethrows the first error of the epoch (an I/O, record, feature or image error naming its
    /// file and record), after which it returns nil; with ``ImagePipelineOptions/skipCorrupt``
    /// damaged records are counted in ``skipped`` instead.
    public func next() throws -> ImageBatch? {
        guard !done, let result = queue.pop() else {
            done = true
            return nil
        }
        switch result {
        case .success(let batch): return batch
        case .failure(let error):
            done = true
            queue.close()
            throw error
        }
    }
}

/// A record copied out of its reader's buffer, with where it came from.
struct RawRecord: Sendable {
    var bytes: [UInt8]
    var location: RecordLocation
}

/// A record of the epoch's order: already read (streamed shards), or to be read by the worker
/// that decodes it (random-access shards).
enum PendingRecord: Sendable {
    case read(RawRecord)
    case stored(RecordStore.Reference)
}

/// The producer thread's work for one epoch.
private final class BatchProducer {
    let options: ImagePipelineOptions
    let files: [String]
    let order: [Int]
    let epoch: Int
    let queue: BoundedQueue<Result<ImageBatch, Error>>
    let log: SkipLog
    let counts: RecordCounts
    let storeChoice: ImagePipeline.StoreChoice
    private var store: RecordStore?
    private var pending: [PendingRecord] = []
    private var produced = 0
    private var batchIndex = 0
    /// Whether damage ended the current file early (so it is not also an empty file).
    private var fileCutShort = false
    /// Decoded samples waiting for a batch once skips have shifted the batch boundaries.
    private var carryInputs: [Float] = []
    private var carryLabels: [Float] = []
    private var carryNames: [String] = []
    private var carryWeights: [Float] = []

    init(pipeline: ImagePipeline, epoch: Int, queue: BoundedQueue<Result<ImageBatch, Error>>, log: SkipLog) {
        self.options = pipeline.options
        self.files = pipeline.files
        self.order = pipeline.shardOrder(epoch: epoch)
        self.epoch = epoch
        self.queue = queue
        self.log = log
        self.counts = pipeline.counts
        self.storeChoice = pipeline.store
    }

    /// Records a damaged record when skipping; rethrows anything else.
    private func skip(_ error: Error) throws {
        guard options.skipCorrupt, let error = error as? DataError, error.isCorruptRecord else { throw error }
        log.add(error)
    }

    /// The next intact record of `reader`; nil at the end of the file or, when skipping, at
    /// damage that leaves the rest of the file unframed.
    private func nextRecord(_ reader: TFRecordReader) throws -> RawRecord? {
        while true {
            do {
                return try reader.withNextRecord { RawRecord(bytes: [UInt8]($0), location: $1) }
            } catch {
                try skip(error)
                // A bad payload CRC leaves the framing intact: the next record can still be read.
                if case .corruptData? = error as? DataError { continue }
                fileCutShort = true
                return nil
            }
        }
    }

    /// tf.data's buffer shuffle over the records in shard order: the same draws whether the
    /// records are read here (`.read`) or are numbers read later (`.stored`).
    private struct ShuffleBuffer {
        var records: [PendingRecord] = []
        var random: SampleRandom
        let size: Int
        let shuffle: Bool

        /// Adds a record; returns the one it displaces once the buffer is full.
        mutating func add(_ record: PendingRecord) -> PendingRecord? {
            if records.count < size {
                records.append(record)
                return nil
            }
            // Emit a random buffered record, put the new one in its place.
            let pick = shuffle ? random.below(records.count) : 0
            let out = records[pick]
            records[pick] = record
            return out
        }

        /// The records left at the end, one at a time.
        mutating func drain() -> PendingRecord? {
            guard !records.isEmpty else { return nil }
            // Swap-remove: O(1), and as random as the buffer already is.
            let pick = shuffle ? random.below(records.count) : 0
            records.swapAt(pick, records.count - 1)
            return records.popLast()
        }
    }

    func run() throws {
        switch storeChoice {
        case .opened(let opened): store = opened
        case .perEpoch:
            store = try RecordStore.open(files: files, compression: options.compression, imageKey: options.keys.input)
        }
        if let epochOrder = options.epochOrder {
            guard let store else {
                throw LearnerError.invalidArgument(
                    "an epoch drawn by record number (class balancing) needs shards that allow random access; "
                        + "\(files.first ?? "the data") is compressed or damaged")
            }
            for n in epochOrder {
                if try !emit(.stored(store.reference(n))) { return }
            }
            if !pending.isEmpty && options.lastBatch == .keep { _ = try flushBatch() }
            return
        }
        var buffer = ShuffleBuffer(
            random: SampleRandom(seed: options.seed, epoch: epoch, index: -2),
            size: options.shuffle ? options.shuffleBufferSize : 1, shuffle: options.shuffle)
        for f in order {
            let file = files[f]
            if let store {
                let records = store.recordCount(ofFile: f)
                if records == 0 { try skip(DataError.emptyFile(path: file)) }
                for r in 0..<records {
                    if let out = buffer.add(.stored(RecordStore.Reference(file: f, record: r))), try !emit(out) { return }
                }
                continue
            }
            if ImageFiles.isImage(file) {
                counts.add(read: 1)
                if let out = buffer.add(.read(try ImageFiles.record(file, key: options.keys.input))), try !emit(out) { return }
                continue
            }
            let reader = try TFRecordReader(path: file, compression: options.compression)
            fileCutShort = false
            while let record = try nextRecord(reader) {
                counts.add(read: 1)
                if let out = buffer.add(.read(record)), try !emit(out) { return }
            }
            if reader.recordIndex == 0 && !fileCutShort { try skip(DataError.emptyFile(path: file)) }
        }
        while let out = buffer.drain() {
            if try !emit(out) { return }
        }
        if let limit = options.maxBatches, batchIndex >= limit { return }
        // Skips may have left decoded samples over that the tail completes into a batch.
        if !pending.isEmpty && (options.lastBatch == .keep || !carryLabels.isEmpty) {
            if try !flushBatch() { return }
        }
        if !carryLabels.isEmpty && options.lastBatch == .keep {
            _ = push(inputs: carryInputs, labels: carryLabels, names: carryNames, weights: carryWeights)
        }
    }

    /// Adds a record to the batch being gathered; false when the consumer has gone or no
    /// more batches are wanted.
    private func emit(_ record: PendingRecord) throws -> Bool {
        if let limit = options.maxBatches, batchIndex >= limit { return false }
        pending.append(record)
        if pending.count == options.batchSize { return try flushBatch() }
        return true
    }

    /// Queues one batch; false when the consumer has gone.
    private func push(inputs: [Float], labels: [Float], names: [String], weights: [Float], share: BatchShare? = nil) -> Bool {
        var batch = ImageBatch(
            inputs: inputs, labels: labels, shape: [names.count, options.channels, options.height, options.width],
            epoch: epoch, index: batchIndex)
        batch.labelShape = options.labelShape
        batch.names = names
        batch.share = share
        if options.keys.sampleWeight != nil { batch.sampleWeights = weights }
        batchIndex += 1
        return queue.push(.success(batch))
    }

    /// Decodes the gathered records in parallel and queues them as a batch; with skipped samples,
    /// the intact ones join the carry, which is queued a full batch at a time. A replica's
    /// share is decoded alone, and its skipped samples simply leave the batch.
    private func flushBatch() throws -> Bool {
        let records = pending
        pending.removeAll(keepingCapacity: true)
        let first = produced
        produced += records.count
        if batchIndex < options.startBatch {
            batchIndex += 1  // resumed past this batch: nothing to decode
            return true
        }
        if let share = options.replicaShare {
            let range = share.range(ofBatch: records.count)
            let part = BatchShare(offset: range.lowerBound, globalCount: records.count)
            let (inputs, labels, names, weights, failures) = try decode(
                Array(records[range]), firstPosition: first + range.lowerBound)
            for failure in failures.compactMap({ $0 }) { try skip(failure) }
            let good = failures.indices.filter { failures[$0] == nil }
            if good.count == failures.count {
                return push(
                    inputs: inputs, labels: labels, names: names, weights: weights, share: part)
            }
            let sampleSize = options.channels * options.height * options.width, labelSize = options.labelSize
            return push(
                inputs: good.flatMap { inputs[$0 * sampleSize..<($0 + 1) * sampleSize] },
                labels: good.flatMap { labels[$0 * labelSize..<($0 + 1) * labelSize] },
                names: good.map { names[$0] }, weights: good.map { weights[$0] }, share: part)
        }
        let (inputs, labels, names, weights, failures) = try decode(records, firstPosition: first)
        let good = failures.indices.filter { failures[$0] == nil }
        for failure in failures.compactMap({ $0 }) { try skip(failure) }
        if carryNames.isEmpty && good.count == failures.count {
            return push(inputs: inputs, labels: labels, names: names, weights: weights)
        }
        let sampleSize = options.channels * options.height * options.width, labelSize = options.labelSize
        for i in good {
            carryInputs.append(contentsOf: inputs[i * sampleSize..<(i + 1) * sampleSize])
            carryLabels.append(contentsOf: labels[i * labelSize..<(i + 1) * labelSize])
            carryNames.append(names[i])
            carryWeights.append(weights[i])
        }
        while carryNames.count >= options.batchSize {
            let n = options.batchSize
            let full = push(
                inputs: Array(carryInputs.prefix(n * sampleSize)), labels: Array(carryLabels.prefix(n * labelSize)),
                names: Array(carryNames.prefix(n)), weights: Array(carryWeights.prefix(n)))
            carryInputs.removeFirst(n * sampleSize)
            carryLabels.removeFirst(n * labelSize)
            carryNames.removeFirst(n)
            carryWeights.removeFirst(n)
            if !full { return false }
        }
        return true
    }

    /// Reads (when stored), parses, decodes and augments `records` on the workers; failed
    /// samples are zeros with their error beside them. `firstPosition` is the first record's
    /// position in the epoch, the key of its augmentation draws.
    private func decode(_ records: [PendingRecord], firstPosition first: Int) throws -> (
        inputs: [Float], labels: [Float], names: [String], weights: [Float], failures: [Error?]
    ) {
        let count = records.count
        let sampleSize = options.channels * options.height * options.width
        var failures = [Error?](repeating: nil, count: count)
        var labels = [Float](repeating: 0, count: count * options.labelSize)
        var names = [String](repeating: "", count: count)
        var weights = [Float](repeating: 1, count: count)
        let inputs = [Float](unsafeUninitializedCapacity: count * sampleSize) { buffer, initialized in
            guard let base = buffer.baseAddress else {
                initialized = 0
                return
            }
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                failures.withUnsafeMutableBufferPointer { failureBuffer in
                    names.withUnsafeMutableBufferPointer { nameBuffer in
                        weights.withUnsafeMutableBufferPointer { weightBuffer in
                            guard let labelBase = labelBuffer.baseAddress, let failureBase = failureBuffer.baseAddress,
                                let nameBase = nameBuffer.baseAddress, let weightBase = weightBuffer.baseAddress
                            else { return }
                            let workers = min(options.workers, count)
                            let work = SampleWork(
                                records: records, store: store, options: options, epoch: epoch, firstPosition: first,
                                inputs: base, labels: labelBase, names: nameBase, weights: weightBase, failures: failureBase)
                            if workers <= 1 {
                                for i in 0..<count { work.run(i) }
                            } else {
                                // Samples are handed out one at a time, so a worker that drew
                                // small crops takes more of them and neither waits long at the
                                // batch's end; where each sample lands does not depend on who
                                // decodes it.
                                let next = SampleCounter()
                                DispatchQueue.concurrentPerform(iterations: workers) { _ in
                                    while case let i = next.take(), i < count { work.run(i) }
                                }
                            }
                        }
                    }
                }
            }
            initialized = count * sampleSize  // failed samples were zero-filled
        }
        let stored = records.reduce(0) { n, record in if case .stored = record { return n + 1 } else { return n } }
        counts.add(read: stored, decoded: count)
        // Unless skipping, the first failure in batch order, so the error too is the same for any worker count.
        if !options.skipCorrupt, let error = failures.lazy.compactMap({ $0 }).first { throw error }
        return (inputs, labels, names, weights, failures)
    }
}

/// Parses, decodes, augments and writes one sample of a batch; samples touch disjoint memory,
/// so workers run them without locks.
// @unchecked Sendable for the pointers: they address the batch's buffers, which outlive the
// workers (concurrentPerform returns when every iteration has), and sample i writes only its
// own slice of `inputs`, `labels[i]`, `names[i]` and `failures[i]`. The other fields are
// Sendable constants (the store reads with pread, from any thread).
private struct SampleWork: @unchecked Sendable {
    let records: [PendingRecord]
    let store: RecordStore?
    let options: ImagePipelineOptions
    let epoch: Int
    let firstPosition: Int
    let inputs: UnsafeMutablePointer<Float>
    let labels: UnsafeMutablePointer<Float>
    let names: UnsafeMutablePointer<String>
    let weights: UnsafeMutablePointer<Float>
    let failures: UnsafeMutablePointer<Error?>

    func run(_ i: Int) {
        let sampleSize = options.channels * options.height * options.width
        var location: RecordLocation?
        do {
            try withRecord(records[i]) { bytes, at in
                location = at
                try decodeSample(bytes, i, sampleSize: sampleSize)
            }
        } catch let error as DataError {
            (inputs + i * sampleSize).initialize(repeating: 0, count: sampleSize)
            failures[i] = location.map { error.located(at: $0) } ?? error
        } catch {
            (inputs + i * sampleSize).initialize(repeating: 0, count: sampleSize)
            failures[i] = error
        }
    }

    /// The record's payload and location: the bytes already read, or read now from the store.
    private func withRecord(_ record: PendingRecord, _ body: (UnsafeRawBufferPointer, RecordLocation) throws -> Void) throws {
        switch record {
        case .read(let raw): try raw.bytes.withUnsafeBytes { try body($0, raw.location) }
        case .stored(let ref):
            guard let store else { preconditionFailure("a stored record without its store") }
            try store.withRecord(ref, body)
        }
    }

    private func decodeSample(_ bytes: UnsafeRawBufferPointer, _ i: Int, sampleSize: Int) throws {
        let example = try ExampleHandle(parsing: bytes)
        if let key = options.keys.sampleWeight { weights[i] = try readWeight(example, key: key) }
        if let name = example.bytes("image/filename", at: 0) { names[i] = String(decoding: name, as: UTF8.self) }
        if let dense = options.denseLabel {
            try decodeDense(example, dense, i, sampleSize: sampleSize)
            return
        }
        labels[i] = try readLabel(example)
        guard let encoded = example.bytes(options.keys.input, at: 0) else {
            throw missingImage(example)
        }
        if try placeCropped(encoded, sample: i, into: inputs + i * sampleSize) { return }
        try ImageDecoder.withPixels(
            encoded, channels: options.channels, dct: options.jpegDCT, key: options.keys.input
        ) { pixels in
            guard pixels.channels == options.channels else {
                throw DataError.wrongLength(
                    key: options.keys.input, expected: options.channels, found: pixels.channels, at: nil)
            }
            place(pixels, sample: i, into: inputs + i * sampleSize)
        }
    }

    /// An image and its dense label, decoded, checked to be the same size, augmented together
    /// and resized to the output size (the label by nearest neighbour when it is a class mask).
    private func decodeDense(_ example: ExampleHandle, _ dense: DenseLabel, _ i: Int, sampleSize: Int) throws {
        guard let encoded = example.bytes(options.keys.input, at: 0) else { throw missingImage(example) }
        var image = try ImageDecoder.withPixels(encoded, channels: options.channels, dct: options.jpegDCT, key: options.keys.input) {
            pixels in
            guard pixels.channels == options.channels else {
                throw DataError.wrongLength(key: options.keys.input, expected: options.channels, found: pixels.channels, at: nil)
            }
            return pixels.image()
        }
        let labelKey = options.keys.label
        let labelSize = options.labelSize
        guard let encodedLabel = example.bytes(labelKey, at: 0) else {
            if !options.labelsRequired {
                (labels + i * labelSize).initialize(repeating: .nan, count: labelSize)
                image = image.resized(height: options.height, width: options.width)
                image.copyCHW(to: inputs + i * sampleSize)
                return
            }
            guard let (kind, _) = example.find(labelKey) else {
                throw DataError.missingFeature(key: labelKey, present: example.keys, at: nil)
            }
            throw DataError.wrongFeatureKind(
                key: labelKey, expected: "bytes (an encoded label image)", found: kind == TL_FEATURE_FLOAT ? "float" : "int64", at: nil)
        }
        let precise: Image?
        if case .targetImage = dense { precise = try Image.decodingPNGAtFullPrecision(encodedLabel, key: labelKey) } else { precise = nil }
        var labelImage =
            try precise
            ?? ImageDecoder.withPixels(encodedLabel, channels: dense.channels, dct: options.jpegDCT, key: labelKey) { pixels in
                pixels.image()
            }
        guard labelImage.channels == dense.channels else {
            throw DataError.wrongLength(key: labelKey, expected: dense.channels, found: labelImage.channels, at: nil)
        }
        guard labelImage.height == image.height, labelImage.width == image.width else {
            throw DataError.undecodableImage(
                key: labelKey,
                message: "the label image is \(labelImage.width)×\(labelImage.height), its input '\(options.keys.input)' "
                    + "\(image.width)×\(image.height): they must be the same size",
                at: nil)
        }
        var target = DenseTarget(image: labelImage, isMask: false, fill: 0)
        if case .classMask(let fill) = dense {
            // Decoded as intensities in [0, 1]: back to the 8-bit class indices.
            target.image.pixels = labelImage.pixels.map { ($0 * 255).rounded() }
            (target.isMask, target.fill) = (true, fill)
        }
        var random = SampleRandom(seed: options.seed, epoch: epoch, index: firstPosition + i)
        if let transform = options.transform { (image, target) = transform.apply(image, target: target, random: &random) }
        labelImage = target.resized(height: options.height, width: options.width).image
        image.resized(height: options.height, width: options.width).copyCHW(to: inputs + i * sampleSize)
        labelImage.copyCHW(to: labels + i * labelSize)
    }

    /// A JPEG whose window transform keeps part of it: the window is drawn from the header's
    /// size (the same draws ``place(_:sample:into:)`` makes) and only that part is decoded
    /// (``ImageDecoder/withPixels(_:channels:dct:key:keeping:_:)``), the same output for about
    /// the cost of the area kept. False (nothing written) for anything else.
    private func placeCropped(_ encoded: UnsafeRawBufferPointer, sample i: Int, into out: UnsafeMutablePointer<Float>) throws
        -> Bool
    {
        guard ImageDecoder.format(of: encoded) == .jpeg, let transform = options.transform as? any WindowTransform else {
            return false
        }
        let info = try ImageDecoder.info(encoded, key: options.keys.input)
        var random = SampleRandom(seed: options.seed, epoch: epoch, index: firstPosition + i)
        guard let window = transform.window(of: .whole(height: info.height, width: info.width), random: &random),
            window.height < info.height || window.width < info.width
        else { return false }
        try ImageDecoder.withPixels(
            encoded, channels: options.channels, dct: options.jpegDCT, key: options.keys.input, keeping: window
        ) { pixels, moved in
            pixels.resample(.window(moved, height: options.height, width: options.width), layout: .chw, into: out)
        }
        return true
    }

    /// Crops, flips and normalisation fold into one resample straight into the batch; any other
    /// transform gets an ``Image`` to work on, resized after it.
    private func place(_ pixels: DecodedPixels, sample i: Int, into out: UnsafeMutablePointer<Float>) {
        let whole = CropWindow.whole(height: pixels.height, width: pixels.width)
        var random = SampleRandom(seed: options.seed, epoch: epoch, index: firstPosition + i)
        let window = options.transform.map { ($0 as? any WindowTransform)?.window(of: whole, random: &random) } ?? whole
        if let window {
            pixels.resample(.window(window, height: options.height, width: options.width), layout: .chw, into: out)
            return
        }
        random = SampleRandom(seed: options.seed, epoch: epoch, index: firstPosition + i)
        var image = pixels.image()
        if let transform = options.transform { image = transform.apply(image, random: &random) }
        image.resized(height: options.height, width: options.width).copyCHW(to: out)
    }

    private func missingImage(_ example: ExampleHandle) -> DataError {
        let key = options.keys.input
        guard let (kind, count) = example.find(key) else {
            return .missingFeature(key: key, present: example.keys, at: nil)
        }
        if kind != TL_FEATURE_BYTES {
            return .wrongFeatureKind(
                key: key, expected: "bytes", found: kind == TL_FEATURE_FLOAT ? "float" : "int64", at: nil)
        }
        return .wrongLength(key: key, expected: 1, found: count, at: nil)
    }

    /// The sample's loss weight: the first value of a float or int64 feature.
    private func readWeight(_ example: ExampleHandle, key: String) throws -> Float {
        guard let (kind, count) = example.find(key) else {
            throw DataError.missingFeature(key: key, present: example.keys, at: nil)
        }
        guard count == 1 else { throw DataError.wrongLength(key: key, expected: 1, found: count, at: nil) }
        switch kind {
        case TL_FEATURE_FLOAT:
            var value: Float = 0
            _ = withUnsafeMutablePointer(to: &value) { example.copyFloats(key, into: UnsafeMutableBufferPointer(start: $0, count: 1)) }
            return value
        case TL_FEATURE_INT64:
            var value: Int64 = 0
            _ = withUnsafeMutablePointer(to: &value) { example.copyInt64s(key, into: UnsafeMutableBufferPointer(start: $0, count: 1)) }
            return Float(value)
        default:
            throw DataError.wrongFeatureKind(key: key, expected: "float or int64", found: "bytes", at: nil)
        }
    }

    /// The first value of the int64 or float label feature.
    private func readLabel(_ example: ExampleHandle) throws -> Float {
        let key = options.keys.label
        guard let (kind, count) = example.find(key) else {
            if !options.labelsRequired { return .nan }
            throw DataError.missingFeature(key: key, present: example.keys, at: nil)
        }
        guard count >= 1 else { throw DataError.wrongLength(key: key, expected: 1, found: count, at: nil) }
        switch kind {
        case TL_FEATURE_INT64:
            var value: Int64 = 0
            _ = withUnsafeMutablePointer(to: &value) {
                example.copyInt64s(key, into: UnsafeMutableBufferPointer(start: $0, count: 1))
            }
            return Float(value)
        case TL_FEATURE_FLOAT:
            var value: Float = 0
            _ = withUnsafeMutablePointer(to: &value) {
                example.copyFloats(key, into: UnsafeMutableBufferPointer(start: $0, count: 1))
            }
            return value
        default:
            throw DataError.wrongFeatureKind(key: key, expected: "int64 or float", found: "bytes", at: nil)
        }
    }
}

/// Hands out sample numbers 0, 1, 2, ... to the workers of one batch, each number once.
// @unchecked Sendable: the one word is only touched through the shim's atomic fetch-add.
private final class SampleCounter: @unchecked Sendable {
    private let word = UnsafeMutablePointer<Int>.allocate(capacity: 1)

    init() { word.initialize(to: 0) }
    deinit { word.deallocate() }

    func take() -> Int { tl_atomic_fetch_add_long(word, 1) }
}
