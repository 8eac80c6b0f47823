/// How many batches an epoch has and where they come from.
struct EpochPlan {
    let source: any DataSource
    let batchSize: Int
    let dropLastBatch: Bool
    let batchesPerEpoch: Int
    /// Batches in one pass over the data, when the source knows its size.
    let batchesPerPass: Int?

    init(source: any DataSource, batchSize: Int, dropLastBatch: Bool, iterationsPerEpoch: Int?) throws {
        self.source = source
        self.batchSize = batchSize
        self.dropLastBatch = dropLastBatch
        batchesPerPass = source.sampleCount.map { batchCount(samples: $0, batchSize: batchSize, dropLastBatch: dropLastBatch) }
        if let perPass = batchesPerPass, perPass == 0 {
            throw LearnerError.invalidArgument(
                "the training data (\(source.dataDescription)) holds \(source.sampleCount ?? 0) samples: no batch of \(batchSize)"
                    + (dropLastBatch ? " (the last, short batch is dropped)" : ""))
        }
        if let iterations = iterationsPerEpoch {
            guard iterations > 0 else { throw LearnerError.invalidArgument("iterationsPerEpoch must be > 0, got \(iterations)") }
            batchesPerEpoch = iterations
        } else {
            guard let perPass = batchesPerPass else {
                throw LearnerError.invalidArgument("the training data does not know its size: give iterationsPerEpoch")
            }
            batchesPerEpoch = perPass
        }
    }

    /// The batches of `epoch` from batch `startBatch` on, across passes when the epoch is longer
    /// than one.
    func cursor(epoch: Int, seed: UInt64, startBatch: Int, replica: ReplicaShare? = nil) throws -> PassCursor {
        try PassCursor(plan: self, epoch: epoch, seed: seed, startBatch: startBatch, replica: replica)
    }
}

/// Walks an epoch's batches, opening the next pass over the data when one ends.
final class PassCursor {
    private let plan: EpochPlan
    private let epoch: Int
    private let seed: UInt64
    private let replica: ReplicaShare?
    private var pass: Int
    private var stream: any BatchStream
    private var batchesThisPass = 0
    /// Corrupt records skipped in the passes already finished.
    private var skippedBefore: SkipReport?

    /// Corrupt records skipped so far this epoch, over every pass (nil when the source skips none).
    var skipped: SkipReport? {
        guard let current = stream.skipped else { return skippedBefore }
        var all = skippedBefore ?? SkipReport()
        all.errors += current.errors
        return all
    }

    init(plan: EpochPlan, epoch: Int, seed: UInt64, startBatch: Int, replica: ReplicaShare?) throws {
        self.plan = plan
        self.epoch = epoch
        self.seed = seed
        self.replica = replica
        var skip = startBatch
        if let perPass = plan.batchesPerPass, perPass > 0 {
            pass = startBatch / perPass
            skip = startBatch % perPass
        } else {
            pass = 0
        }
        stream = try plan.source.batches(
            BatchRequest(
                epoch: epoch, pass: pass, batchSize: plan.batchSize, training: true,
                seed: seed, dropLastBatch: plan.dropLastBatch, startBatch: skip, replica: replica))
        batchesThisPass = skip
    }

    func next() throws -> DataBatch? {
        if let batch = try stream.next() {
            batchesThisPass += 1
            return batch
        }
        guard batchesThisPass > 0 else { return nil }  // an empty pass: the data ran dry
        skippedBefore = skipped
        pass += 1
        batchesThisPass = 0
        stream = try plan.source.batches(
            BatchRequest(
                epoch: epoch, pass: pass, batchSize: plan.batchSize, training: true,
                seed: seed, dropLastBatch: plan.dropLastBatch, replica: replica))
        return try next()
    }
}
