/// Sums that give MAE, RMSE and R² exactly over any number of batches (in Double).
struct RegressionSums: Sendable, Codable {
    var count = 0.0
    var absError = 0.0
    var squaredError = 0.0
    var target = 0.0
    var targetSquared = 0.0

    mutating func update(outputs: Tensor, labels: Tensor) {
        let p = outputs.scalars
        let t = labels.scalars
        precondition(p.count == t.count, "regression metric: \(p.count) outputs for \(t.count) targets")
        for (x, y) in zip(p, t) {
            let e = Double(x) - Double(y)
            absError += Swift.abs(e)
            squaredError += e * e
            target += Double(y)
            targetSquared += Double(y) * Double(y)
        }
        count += Double(p.count)
    }

    var all: [Double] {
        get { [count, absError, squaredError, target, targetSquared] }
        set {
            guard newValue.count == 5 else { return }
            (count, absError, squaredError, target, targetSquared) = (newValue[0], newValue[1], newValue[2], newValue[3], newValue[4])
        }
    }
}

/// Mean absolute error, `Σ|ŷ − y| / N`.
public struct MeanAbsoluteError: Metric, Codable {
    public var name: String { "mae" }
    var sums = RegressionSums()
    public init() {}
    public mutating func update(outputs: Tensor, labels: Tensor) { sums.update(outputs: outputs, labels: labels) }
    public func values() -> [String: Float] { [name: sums.count > 0 ? Float(sums.absError / sums.count) : 0] }
    public mutating func reset() { sums = RegressionSums() }
    public var statistics: [Double]? {
        get { sums.all }
        set { if let s = newValue { sums.all = s } }
    }
}

/// Root mean squared error, `√(Σ(ŷ − y)² / N)`.
public struct RootMeanSquaredError: Metric, Codable {
    public var name: String { "rmse" }
    var sums = RegressionSums()
    public init() {}
    public mutating func update(outputs: Tensor, labels: Tensor) { sums.update(outputs: outputs, labels: labels) }
    public func values() -> [String: Float] {
        [name: sums.count > 0 ? Float((sums.squaredError / sums.count).squareRoot()) : 0]
    }
    public mutating func reset() { sums = RegressionSums() }
    public var statistics: [Double]? {
        get { sums.all }
        set { if let s = newValue { sums.all = s } }
    }
}

/// Coefficient of determination, `R² = 1 − SS_res / SS_tot` with `SS_tot = Σy² − (Σy)²/N`
/// (sklearn's `r2_score` over all outputs flattened; 0 when the targets are constant).
public struct RSquared: Metric, Codable {
    public var name: String { "r2" }
    var sums = RegressionSums()
    public init() {}
    public mutating func update(outputs: Tensor, labels: Tensor) { sums.update(outputs: outputs, labels: labels) }
    public func values() -> [String: Float] {
        guard sums.count > 0 else { return [name: 0] }
        let total = sums.targetSquared - sums.target * sums.target / sums.count
        return [name: total > 0 ? Float(1 - sums.squaredError / total) : 0]
    }
    public mutating func reset() { sums = RegressionSums() }
    public var statistics: [Double]? {
        get { sums.all }
        set { if let s = newValue { sums.all = s } }
    }
}
