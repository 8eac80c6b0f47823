import Foundation

/// A measure of a model's outputs against labels, accumulated batch by batch and exact at
/// the end: each metric keeps sufficient statistics (counts, sums, a confusion matrix), never
/// a mean of per-batch means (Keras' stateful `Metric`, fastai's `AvgMetric`/`AccumMetric`).
///
/// Outputs are the model's raw outputs (logits for classification, values for regression);
/// labels are class indices `[N]`, 0/1 targets `[N, C]` (multi-label) or targets (regression).
public protocol Metric: Sendable {
    /// The key of the main value, as shown in logs (`accuracy`, `val_accuracy`).
    var name: String { get }
    /// Adds one batch.
    mutating func update(outputs: Tensor, labels: Tensor)
    /// The values over every batch since the last reset, by key (most metrics report one, `name`).
    func values() -> [String: Float]
    /// Forgets every batch.
    mutating func reset()
    /// The sufficient statistics behind ``values()`` as numbers that add up across data-parallel
    /// replicas (counts, sums, confusion-matrix cells), so that a training metric is the whole
    /// global batch's, not one replica's share; nil (the default) for a metric whose state does
    /// not add up, which then reports the share of the replica that logs. Setting them replaces
    /// the state.
    var statistics: [Double]? { get set }
    /// Why model outputs of `outputShape` per sample (the batch axis left out) with
    /// `labelsPerSample` label values per sample cannot be measured, or nil (the default): `fit`
    /// and `evaluate` name it before the first batch instead of trapping inside ``update(outputs:labels:)``.
    func problem(outputShape: [Int], labelsPerSample: Int) -> String?
}

extension Metric {
    public func problem(outputShape: [Int], labelsPerSample: Int) -> String? { nil }

    public var statistics: [Double]? {
        get { nil }
        set {}
    }
}

/// Adds the replicas' statistics of each metric, so that every replica holds the global batch's
/// (one all-reduce for the lengths, then one per metric; a metric whose statistics differ in
/// length between replicas, or that has none, keeps its own).
func mergeAcrossReplicas(_ metrics: inout [any Metric], _ sync: any GradientSynchronizer) throws {
    guard sync.worldSize > 1, !metrics.isEmpty else { return }
    let mine = metrics.map { $0.statistics ?? [] }
    // Equal lengths n on every replica: Σn = N·n and Σn² = N·n².
    let lengths = try sync.allReduceSum(mine.flatMap { [Double($0.count), Double($0.count * $0.count)] })
    let replicas = Double(sync.worldSize)
    for i in metrics.indices {
        let n = Double(mine[i].count)
        guard n > 0, lengths[2 * i] == replicas * n, lengths[2 * i + 1] == replicas * n * n else { continue }
        metrics[i].statistics = try sync.allReduceSum(mine[i])
    }
}

/// Host copies of a batch's outputs as rows `[N][C]` (C = 1 for rank-1 outputs) and its labels.
struct HostBatch {
    let rows: Int
    let columns: Int
    let outputs: [Float]
    let labels: [Float]

    init(_ outputs: Tensor, _ labels: Tensor) {
        rows = outputs.shape.first ?? 1
        columns = rows > 0 ? outputs.scalarCount / rows : 0
        self.outputs = outputs.scalars
        self.labels = labels.scalars
    }

    /// Whether labels are one value per row (class index or target) rather than a 0/1 row.
    var labelsAreIndices: Bool { labels.count == rows }

    /// The 0/1 target of row `r`, column `c` (from an index label or a multi-hot row).
    func target(_ r: Int, _ c: Int) -> Float {
        labelsAreIndices ? (Int(labels[r]) == c ? 1 : 0) : labels[r * columns + c]
    }

    /// Arg-max of row `r` (first maximum), or the rounded value for single-column outputs.
    func predictedClass(_ r: Int, classes: Int) -> Int {
        if columns == 1 { return Swift.min(Swift.max(Int(outputs[r].rounded()), 0), classes - 1) }
        var best = 0
        var top = -Float.infinity
        for c in 0..<columns where outputs[r * columns + c] > top {
            top = outputs[r * columns + c]
            best = c
        }
        return best
    }
}

/// The logistic function, for thresholding logits on the host.
@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
