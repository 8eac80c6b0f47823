import Foundation

/// The running loss and metrics of an epoch's training batches. Batches wait on the device
/// (loss, outputs, labels) until ``flush()`` reads them back and adds them in order, so the
/// values are the same however often it is called.
struct EpochProgress {
    var lossSum = 0.0
    var seen = 0
    /// Samples trained since this process started the epoch (for samples/s after a resume).
    var seenThisRun = 0
    var metrics: [any Metric]
    private var pending: [(loss: Tensor, samples: Int, outputs: Tensor?, labels: Tensor)] = []
    /// Batches held at most before they are read back (their outputs hold device memory).
    static let maxPending = 64

    init(metrics: [any Metric]) {
        self.metrics = metrics
        for i in self.metrics.indices { self.metrics[i].reset() }
    }

    var pendingCount: Int { pending.count }

    /// Reads the waiting batches back once as many as ``maxPending`` wait (their outputs hold device memory).
    mutating func flushIfFull() {
        if pending.count >= EpochProgress.maxPending { flush() }
    }

    mutating func add(loss: Tensor, samples: Int, outputs: Tensor?, labels: Tensor) {
        pending.append((loss, samples, outputs, labels))
        seenThisRun += samples
    }

    /// Reads the waiting batches back (their losses in one transfer) and adds them; returns the
    /// last one's loss (NaN when none was waiting).
    @discardableResult
    mutating func flush() -> Float {
        guard !pending.isEmpty else { return .nan }
        let losses =
            pending.count == 1
            ? [pending[0].loss.scalar]
            : Tensor.concatenate(pending.map { $0.loss.reshaped(to: [1]) }, alongAxis: 0).scalars
        for (batch, loss) in zip(pending, losses) {
            lossSum += Double(loss) * Double(batch.samples)
            seen += batch.samples
            if let outputs = batch.outputs {
                for i in metrics.indices { metrics[i].update(outputs: outputs, labels: batch.labels) }
            }
        }
        pending.removeAll(keepingCapacity: true)
        return losses.last ?? .nan
    }

    var meanLoss: Float { Float(lossSum / Double(max(seen, 1))) }

    /// The metrics' statistics as JSON, by position (metrics that are not `Codable` are left out).
    func metricStates() -> [String] {
        metrics.map { metric in
            guard let encodable = metric as? any Encodable,
                let data = try? JSONEncoder().encode(encodable)
            else { return "" }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Continues the epoch a mid-epoch checkpoint stopped in.
    mutating func restore(_ position: ResumePosition) {
        lossSum = position.lossSum
        seen = position.seen
        for (i, state) in position.metricStates.enumerated() where i < metrics.count && !state.isEmpty {
            if let restored = EpochProgress.decode(state, like: metrics[i]) { metrics[i] = restored }
        }
    }

    private static func decode(_ json: String, like metric: any Metric) -> (any Metric)? {
        guard let type = type(of: metric) as? any (Metric & Decodable).Type else { return nil }
        return try? JSONDecoder().decode(type, from: Data(json.utf8))
    }
}

/// Where a run resumed from a mid-epoch checkpoint stands in its epoch.
struct ResumePosition {
    var epoch: Int
    /// Batches of `epoch` already trained.
    var batch: Int
    var lossSum: Double
    var seen: Int
    var metricStates: [String]
}
