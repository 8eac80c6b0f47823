/// F-beta score for multi-label outputs: predictions are `sigmoid(output) > threshold` (or
/// `output > threshold` when `sigmoid` is false), `F = (1 + β²)·P·R / (β²·P + R)`.
///
/// `average` follows sklearn's `fbeta_score`: `.samples` (fastai v1's `fbeta`, the mean over
/// samples of each sample's score), `.micro` (global counts) or `.macro` (mean of per-class scores);
/// a score whose precision and recall are both 0 counts 0. Labels are 0/1 rows `[N, C]` or class indices `[N]`.
public struct FBeta: Metric, Codable {
    public enum Average: String, Sendable, Codable { case samples, micro, macro }

    public let beta: Float
    public let threshold: Float
    public let sigmoid: Bool
    public let average: Average
    public var name: String { "fbeta" }
    var sampleScoreSum = 0.0
    var samples = 0
    var tp: [Double] = [], fp: [Double] = [], fn: [Double] = []

    public init(beta: Float = 2, threshold: Float = 0.5, sigmoid: Bool = true, average: Average = .samples) {
        self.beta = beta
        self.threshold = threshold
        self.sigmoid = sigmoid
        self.average = average
    }

    func score(tp: Double, fp: Double, fn: Double) -> Double {
        let b2 = Double(beta * beta)
        let denominator = (1 + b2) * tp + b2 * fn + fp
        return denominator > 0 ? (1 + b2) * tp / denominator : 0
    }

    public mutating func update(outputs: Tensor, labels: Tensor) {
        let b = HostBatch(outputs, labels)
        if tp.count < b.columns {
            tp += [Double](repeating: 0, count: b.columns - tp.count)
            fp += [Double](repeating: 0, count: b.columns - fp.count)
            fn += [Double](repeating: 0, count: b.columns - fn.count)
        }
        for r in 0..<b.rows {
            var rowTP = 0.0
            var rowFP = 0.0
            var rowFN = 0.0
            for c in 0..<b.columns {
                let x = b.outputs[r * b.columns + c]
                let predicted = (sigmoid ? Learner.sigmoid(x) : x) > threshold
                let actual = b.target(r, c) > 0.5
                if predicted && actual {
                    rowTP += 1
                    tp[c] += 1
                } else if predicted {
                    rowFP += 1
                    fp[c] += 1
                } else if actual {
                    rowFN += 1
                    fn[c] += 1
                }
            }
            sampleScoreSum += score(tp: rowTP, fp: rowFP, fn: rowFN)
            samples += 1
        }
    }

    public func values() -> [String: Float] {
        switch average {
        case .samples:
            return [name: samples > 0 ? Float(sampleScoreSum / Double(samples)) : 0]
        case .micro:
            return [name: Float(score(tp: tp.reduce(0, +), fp: fp.reduce(0, +), fn: fn.reduce(0, +)))]
        case .macro:
            guard !tp.isEmpty else { return [name: 0] }
            let sum = tp.indices.reduce(0.0) { $0 + score(tp: tp[$1], fp: fp[$1], fn: fn[$1]) }
            return [name: Float(sum / Double(tp.count))]
        }
    }

    public mutating func reset() {
        sampleScoreSum = 0
        samples = 0
        tp = []
        fp = []
        fn = []
    }

    /// The score sum and sample count, then the per-class true positives, false positives and
    /// false negatives.
    public var statistics: [Double]? {
        get { [sampleScoreSum, Double(samples)] + tp + fp + fn }
        set {
            guard let s = newValue, s.count >= 2, (s.count - 2) % 3 == 0 else { return }
            let classes = (s.count - 2) / 3
            sampleScoreSum = s[0]
            samples = Int(s[1])
            tp = Array(s[2..<(2 + classes)])
            fp = Array(s[(2 + classes)..<(2 + 2 * classes)])
            fn = Array(s[(2 + 2 * classes)...])
        }
    }
}

/// Fraction of all (sample, label) pairs predicted right at a threshold (fastai's `accuracy_thresh`):
/// `mean((sigmoid(output) > threshold) == target)`.
public struct AccuracyThresh: Metric, Codable {
    public let threshold: Float
    public let sigmoid: Bool
    public var name: String { "accuracy_thresh" }
    var correct = 0
    var count = 0

    public init(threshold: Float = 0.5, sigmoid: Bool = true) {
        self.threshold = threshold
        self.sigmoid = sigmoid
    }

    public mutating func update(outputs: Tensor, labels: Tensor) {
        let b = HostBatch(outputs, labels)
        for r in 0..<b.rows {
            for c in 0..<b.columns {
                let x = b.outputs[r * b.columns + c]
                let predicted = (sigmoid ? Learner.sigmoid(x) : x) > threshold
                if predicted == (b.target(r, c) > 0.5) { correct += 1 }
                count += 1
            }
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
