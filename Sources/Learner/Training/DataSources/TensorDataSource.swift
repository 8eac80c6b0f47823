/// Samples held as tensors, on the host or already on a device (Keras' `fit(x, y)`, PuzzleLib's
/// `Trainer.train(data, target)`): batches are cut where the tensors live, without a copy
/// through the host.
public final class TensorDataSource: DataSource {
    public let inputs: Tensor
    public let labels: Tensor
    public let sampleWeights: Tensor?

    /// - Parameters: `inputs` `[N, ...]`; `labels` `[N]` or `[N, C]`; `sampleWeights` `[N]`.
    public init(inputs: Tensor, labels: Tensor, sampleWeights: Tensor? = nil) {
        precondition(
            inputs.rank >= 1 && labels.shape.first == inputs.shape.first,
            "TensorDataSource: \(inputs.shape.first ?? 0) inputs but \(labels.shape.first ?? 0) labels")
        if let w = sampleWeights {
            precondition(w.scalarCount == inputs.shape[0], "TensorDataSource: \(w.scalarCount) weights for \(inputs.shape[0]) samples")
        }
        self.inputs = inputs.detached()
        self.labels = labels.detached()
        self.sampleWeights = sampleWeights?.detached()
    }

    public var sampleCount: Int? { inputs.shape[0] }
    public var dataDescription: String { "the samples of tensors \(ShapeError.text(inputs.shape))" }

    /// Training batches gather the rows of ``SupervisedLearner/shuffledOrder(count:seed:epoch:pass:)``
    /// (the order an ``InMemoryDataset`` of the same samples uses); others are contiguous slices.
    public func batches(_ request: BatchRequest) throws -> any BatchStream {
        let count = inputs.shape[0]
        let order =
            request.training
            ? SupervisedLearner.shuffledOrder(count: count, seed: request.seed, epoch: request.epoch, pass: request.pass) : nil
        return IndexedBatchStream(request, count: count, order: order) { range, order in
            withoutGradients {
                guard let order else {
                    return DataBatch(
                        inputs: self.inputs.slice(alongAxis: 0, range), labels: self.labels.slice(alongAxis: 0, range),
                        sampleWeights: self.sampleWeights?.slice(alongAxis: 0, range))
                }
                let rows = Array(order[range])
                return DataBatch(
                    inputs: self.inputs.gatherRows(rows), labels: self.labels.gatherRows(rows),
                    sampleWeights: self.sampleWeights?.gatherRows(rows))
            }
        }
    }
}
