/// Fraction of samples whose arg-max output is the label (Keras' `accuracy`, fastai's `accuracy`).
public struct Accuracy: Metric, Codable {
    public var name: String { "accuracy" }
    var correct = 0
    var count = 0

    public init() {}

    public mutating func update(outputs: Tensor, labels: Tensor) {
        let predicted = outputs.argmax(alongAxis: -1).scalars
        let truth = labels.scalars
        for (p, t) in zip(predicted, truth) where p == t { correct += 1 }
        count += predicted.count
    }

    public func values() -> [String: Float] { [name: count > 0 ? Float(correct) / Float(count) : 0] }
    public mutating func reset() {
        correct = 0
        count = 0
    }
    public var statistics: [Double]? {
        get { [Double(correct), Double(count)] }
        set { if let s = newValue, s.count == 2 { (correct, count) = (Int(s[0]), Int(s[1])) } }
    }
}

/// 1 − accuracy (fastai's `error_rate`).
public struct ErrorRate: Metric, Codable {
    public var name: String { "error_rate" }
    var accuracy = Accuracy()

    public init() {}
    public mutating func update(outputs: Tensor, labels: Tensor) { accuracy.update(outputs: outputs, labels: labels) }
    public func values() -> [String: Float] {
        [name: accuracy.count > 0 ? 1 - (accuracy.values()["accuracy"] ?? 0) : 0]
    }
    public mutating func reset() { accuracy.reset() }
    public var statistics: [Double]? {
        get { accuracy.statistics }
        set { accuracy.statistics = newValue }
    }
}

/// Fraction of samples whose label is among the `k` highest outputs; a label tied with the
/// k-th score counts (fewer than `k` outputs strictly greater), as `torch.topk`-based checks do.
public struct TopKAccuracy: Metric, Codable {
    public let k: Int
    public var name: String { "top_\(k)_accuracy" }
    var correct = 0
    var count = 0

    public init(k: Int = 5) { self.k = Swift.max(k, 1) }

    public mutating func update(outputs: Tensor, labels: Tensor) {
        let b = HostBatch(outputs, labels)
        for r in 0..<b.rows {
            let label = Int(b.labels[r])
            guard label >= 0, label < b.columns else {
                count += 1
                continue
            }
            let score = b.outputs[r * b.columns + label]
            var greater = 0
            for c in 0..<b.columns where b.outputs[r * b.columns + c] > score { greater += 1 }
            if greater < k { correct += 1 }
            count += 1
        }
    }

    public func values() -> [String: Float] { [name: count > 0 ? Float(correct) / Float(count) : 0] }
    public mutating func reset() {
        correct = 0
        count = 0
    }
    public var statistics: [Double]? {
        get { [Double(correct), Double(count)] }
        set { if let s = newValue, s.count == 2 { (correct, count) = (Int(s[0]), Int(s[1])) } }
    }
}

/// Per-class precision and recall from a streamed confusion matrix, plus their macro means.
///
/// As sklearn's `precision_score`/`recall_score` with `average=None` (0 where undefined). Reports `precision_<c>`, `recall_<c>`, `precision` and `recall` (macro).
public struct PrecisionRecall: Metric, Codable {
    public var name: String { "precision" }
    var confusion: ConfusionMatrix

    /// - Parameter classes: the number of classes; nil takes it from the outputs' width.
    public init(classes: Int? = nil) { confusion = ConfusionMatrix(classes: classes) }

    public mutating func update(outputs: Tensor, labels: Tensor) { confusion.update(outputs: outputs, labels: labels) }

    public func values() -> [String: Float] {
        var result: [String: Float] = [:]
        let n = confusion.classes
        var pSum = 0.0
        var rSum = 0.0
        for c in 0..<n {
            var tp = 0.0
            var predicted = 0.0
            var actual = 0.0
            for o in 0..<n {
                predicted += confusion[o, c]
                actual += confusion[c, o]
            }
            tp = confusion[c, c]
            let p = predicted > 0 ? tp / predicted : 0
            let r = actual > 0 ? tp / actual : 0
            result["precision_\(c)"] = Float(p)
            result["recall_\(c)"] = Float(r)
            pSum += p
            rSum += r
        }
        result["precision"] = n > 0 ? Float(pSum / Double(n)) : 0
        result["recall"] = n > 0 ? Float(rSum / Double(n)) : 0
        return result
    }

    public mutating func reset() { confusion.reset() }
    public var statistics: [Double]? {
        get { confusion.cells }
        set { if let cells = newValue { confusion.cells = cells } }
    }
}

/// Counts of (true class, predicted class); predictions are the arg-max, or the rounded value
/// of single-column outputs (ordinal regression, as in the Kaggle diabetic-retinopathy setups).
struct ConfusionMatrix: Sendable, Codable {
    private(set) var classes: Int
    private var counts: [Double]

    init(classes: Int?) {
        self.classes = classes ?? 0
        counts = [Double](repeating: 0, count: self.classes * self.classes)
    }

    subscript(truth: Int, predicted: Int) -> Double { counts[truth * classes + predicted] }

    mutating func update(outputs: Tensor, labels: Tensor) {
        let b = HostBatch(outputs, labels)
        if classes == 0 { grow(to: Swift.max(b.columns, 2)) }
        for r in 0..<b.rows {
            let t = Int(b.labels[r].rounded())
            let p = b.predictedClass(r, classes: classes)
            if t >= classes || p >= classes { grow(to: Swift.max(t, p) + 1) }
            guard t >= 0 else { continue }
            counts[t * classes + p] += 1
        }
    }

    private mutating func grow(to n: Int) {
        var bigger = [Double](repeating: 0, count: n * n)
        for t in 0..<classes { for p in 0..<classes { bigger[t * n + p] = counts[t * classes + p] } }
        counts = bigger
        classes = n
    }

    mutating func reset() { counts = [Double](repeating: 0, count: counts.count) }

    var total: Double { counts.reduce(0, +) }

    /// The counts, row-major (classes² cells); set with as many cells to replace them.
    var cells: [Double] {
        get { counts }
        set { if newValue.count == counts.count { counts = newValue } }
    }
}

/// Cohen's kappa with quadratic weights (Cohen 1968; sklearn's `cohen_kappa_score(weights="quadratic")`):
/// `κ = 1 − Σ wᵢⱼ Oᵢⱼ / Σ wᵢⱼ Eᵢⱼ`, `wᵢⱼ = (i − j)²/(n − 1)²`, `E` the outer product of the marginals / N.
public struct QuadraticWeightedKappa: Metric, Codable {
    public var name: String { "kappa" }
    var confusion: ConfusionMatrix

    public init(classes: Int? = nil) { confusion = ConfusionMatrix(classes: classes) }

    public mutating func update(outputs: Tensor, labels: Tensor) { confusion.update(outputs: outputs, labels: labels) }

    public func values() -> [String: Float] {
        let n = confusion.classes
        let total = confusion.total
        guard n > 1, total > 0 else { return [name: 0] }
        var rowSum = [Double](repeating: 0, count: n)
        var colSum = [Double](repeating: 0, count: n)
        for i in 0..<n {
            for j in 0..<n {
                rowSum[i] += confusion[i, j]
                colSum[j] += confusion[i, j]
            }
        }
        var observed = 0.0
        var expected = 0.0
        for i in 0..<n {
            for j in 0..<n {
                let w = Double((i - j) * (i - j)) / Double((n - 1) * (n - 1))
                observed += w * confusion[i, j]
                expected += w * rowSum[i] * colSum[j] / total
            }
        }
        return [name: expected > 0 ? Float(1 - observed / expected) : 0]
    }

    public mutating func reset() { confusion.reset() }
    public var statistics: [Double]? {
        get { confusion.cells }
        set { if let cells = newValue { confusion.cells = cells } }
    }
}
