/// An in-memory data set whose training epochs draw samples by class with a
/// ``ClassBalancer`` (tefla's `data_balancing`): epoch e samples classes with p(e), moving from
/// uniform at epoch 1 to the target distribution at epoch E. Validation batches are the plain
/// data in order.
///
/// Each epoch draws as many samples as the data set holds (with replacement within a class);
/// a run resumed at epoch N draws p(N)'s samples, as if it had never stopped.
public struct BalancedDataset: DataSource {
    public let data: InMemoryDataset
    public let balancer: ClassBalancer

    /// Balancing over `epochs` epochs for a classification data set (labels are class indices
    /// below `classCount`); `initProbabilities` is q (nil: the labels' own frequencies).
    public init(_ data: InMemoryDataset, classCount: Int, epochs: Int, initProbabilities: [Double]? = nil) throws {
        guard data.labelSize == 1 else {
            throw LearnerError.invalidArgument("class balancing needs one class index per sample, got \(data.labelSize) label values")
        }
        self.data = data
        self.balancer = try ClassBalancer(
            labels: data.labels.map { Int($0) }, classCount: classCount, epochs: epochs,
            initProbabilities: initProbabilities)
    }

    public var sampleCount: Int? { data.count }
    public var dataDescription: String { data.dataDescription }

    public func batches(_ request: BatchRequest) throws -> any BatchStream {
        guard request.training else { return try data.batches(request) }
        // A later pass of an epoch draws afresh (its own key), with the epoch's probabilities.
        let order = balancer.sampleOrder(epoch: request.epoch, seed: request.seed ^ (UInt64(request.pass) << 40))
        return IndexedBatchStream(request, count: order.count, order: order) { positions, order in
            self.data.collate(Array(order![positions]))
        }
    }
}
