/// Training from tensors the caller holds (PuzzleLib's `Trainer`, Keras' `fit(x, y)` and
/// `train_on_batch`): no data source, no epoch bookkeeping beyond a pass counter.
extension SupervisedLearner {
    /// One pass over samples held on the host, moved to the device a macrobatch at a time: each
    /// macrobatch of `macroBatchSize` samples (rounded down to whole batches) is gathered in
    /// the pass's order, copied to the device whole, and cut there into batches of `batchSize`
    /// (PuzzleLib's `trainFromHost`). Returns the pass's mean training loss.
    ///
    /// Passes count from 1 and key the shuffle as `fit`'s epochs do, so passes 1…E over the
    /// samples of an ``InMemoryDataset`` take exactly the steps of `fit(startEpoch: 1, epochs: E)`.
    @discardableResult
    public func trainFromHost(
        data: Tensor, target: Tensor, batchSize: Int = 32, macroBatchSize: Int = 10_000,
        random: Bool = true,
        onMacroBatchFinish: ((_ learner: SupervisedLearner, _ macroBatch: Int) -> Void)? = nil
    ) throws -> Float {
        guard batchSize > 0, macroBatchSize > 0 else {
            throw LearnerError.invalidArgument("batchSize (\(batchSize)) and macroBatchSize (\(macroBatchSize)) must be > 0")
        }
        let count = data.shape.first ?? 0
        guard count > 0 else { throw LearnerError.invalidArgument("trainFromHost: no samples") }
        _ = try checkedBatch(inputs: data, labels: target, caller: "trainFromHost")
        hostPasses += 1
        let order = random ? SupervisedLearner.shuffledOrder(count: count, seed: seed, epoch: hostPasses) : Array(0..<count)
        let macro = max(macroBatchSize / batchSize, 1) * batchSize
        var lossSum = 0.0
        var start = 0, index = 0
        while start < count {
            let rows = Array(order[start..<min(count, start + macro)])
            let (x, y) = withoutGradients {
                (data.to(.cpu).gatherRows(rows).to(device), target.to(.cpu).gatherRows(rows).to(device))
            }
            lossSum +=
                try trainPass(TensorDataSource(inputs: x, labels: y), batchSize: batchSize, shuffled: false)
                * Double(rows.count)
            onMacroBatchFinish?(self, index)
            start += macro
            index += 1
        }
        return Float(lossSum / Double(count))
    }

    /// One pass over samples already on the device, cut into batches there (PuzzleLib's
    /// `train`); `random` shuffles the pass. Returns the pass's mean training loss.
    @discardableResult
    public func train(data: Tensor, target: Tensor, batchSize: Int = 32, random: Bool = true) throws -> Float {
        guard batchSize > 0 else { throw LearnerError.invalidArgument("batchSize must be > 0, got \(batchSize)") }
        _ = try checkedBatch(inputs: data, labels: target, caller: "train(data:target:)")
        hostPasses += 1
        return Float(
            try trainPass(
                TensorDataSource(inputs: data.to(device), labels: target.to(device)),
                batchSize: batchSize, shuffled: random))
    }

    /// One optimizer step on one batch (Keras' `train_on_batch`, PuzzleLib's `handleBatch`),
    /// with ``TrainingOptions/classWeights`` applied; returns the batch loss.
    @discardableResult
    public func trainOnBatch(inputs: Tensor, labels: Tensor, sampleWeights: Tensor? = nil) throws -> Float {
        let batch = try checkedBatch(inputs: inputs, labels: labels, sampleWeights: sampleWeights, caller: "trainOnBatch")
        return try optimizerStep(withClassWeights(batch).to(device), share: 1, sampleOffset: 0).loss.scalar
    }

    /// Steps through every batch of `source` (pass ``hostPasses``), whose samples the caller
    /// checked; the mean loss.
    private func trainPass(_ source: TensorDataSource, batchSize: Int, shuffled: Bool) throws -> Double {
        let stream = try source.batches(BatchRequest(epoch: hostPasses, batchSize: batchSize, training: shuffled, seed: seed))
        var lossSum = 0.0, seen = 0
        while let batch = try stream.next() {
            let value = try optimizerStep(withClassWeights(batch).to(device), share: 1, sampleOffset: 0).loss.scalar
            lossSum += Double(value) * Double(batch.count)
            seen += batch.count
        }
        return lossSum / Double(max(seen, 1))
    }
}
