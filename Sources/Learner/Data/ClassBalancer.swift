/// Per-epoch class balancing, as tefla's `data_balancing`.
///
/// Each epoch draws its samples class by class from probabilities that move linearly from
/// uniform towards a target distribution,
///
///     p(e) = u + (e − 1) / E · (q − u),   e = 1 ... E,
///
/// where u is uniform over the classes, q is the data's own class distribution (or the given
/// `initProbabilities`, tefla's `init_probs`) and E the number of epochs. Epoch 1 sees every
/// class equally often; later epochs drift back to the data's balance. Epochs past E use p(E),
/// before 1 use p(1). A resumed run at epoch N simply asks for p(N): everything here is a pure
/// function of (seed, epoch).
///
/// Classes without any sample get probability 0 and the rest is renormalised, since nothing
/// could be drawn for them.
public struct ClassBalancer: Sendable {
    /// The class of each sample, in data-set order.
    public let labels: [Int]
    public let classCount: Int
    /// E in the formula.
    public let epochs: Int
    /// q in the formula.
    public let targetProbabilities: [Double]
    /// Sample indices of each class.
    private let members: [[Int]]

    /// Balancing for samples of classes `labels` (each in `0..<classCount`); `initProbabilities`
    /// nil takes q from the labels' frequencies.
    public init(labels: [Int], classCount: Int, epochs: Int, initProbabilities: [Double]? = nil) throws {
        guard classCount >= 1, epochs >= 1 else {
            throw ConversionError.invalidOption("class balancing needs classCount >= 1 and epochs >= 1")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classCount }) {
            throw ConversionError.invalidOption("sample \(bad) has class \(labels[bad]), outside 0..<\(classCount)")
        }
        var members = Array(repeating: [Int](), count: classCount)
        for (index, label) in labels.enumerated() { members[label].append(index) }
        let q: [Double]
        if let given = initProbabilities {
            let sum = given.reduce(0, +)
            guard given.count == classCount, given.allSatisfy({ $0 >= 0 }), sum > 0 else {
                throw ConversionError.invalidOption(
                    "initProbabilities must hold \(classCount) non-negative values with a positive sum")
            }
            q = given.map { $0 / sum }
        } else {
            guard !labels.isEmpty else { throw ConversionError.invalidOption("class balancing needs samples") }
            q = members.map { Double($0.count) / Double(labels.count) }
        }
        self.labels = labels
        self.classCount = classCount
        self.epochs = epochs
        self.targetProbabilities = q
        self.members = members
    }

    /// p(epoch) by the formula above (before removing empty classes).
    public func probabilities(epoch: Int) -> [Double] {
        let e = min(max(epoch, 1), epochs)
        let t = Double(e - 1) / Double(epochs)
        let u = 1 / Double(classCount)
        return targetProbabilities.map { u + t * ($0 - u) }
    }

    /// The probabilities samples are actually drawn with: p(epoch) with empty classes at 0, renormalised.
    public func samplingProbabilities(epoch: Int) -> [Double] {
        let p = zip(probabilities(epoch: epoch), members).map { $1.isEmpty ? 0 : $0 }
        let sum = p.reduce(0, +)
        return sum > 0 ? p.map { $0 / sum } : p
    }

    /// The sample indices of one epoch, `count` of them (default: the data set's size).
    ///
    /// Each draw picks a class from ``samplingProbabilities(epoch:)``, then a sample of that class
    /// uniformly (with replacement). Draw `i` depends only on (seed, epoch, i).
    public func sampleOrder(epoch: Int, seed: UInt64, count: Int? = nil) -> [Int] {
        let n = count ?? labels.count
        var cumulative: [Double] = []
        var total = 0.0
        for p in samplingProbabilities(epoch: epoch) {
            total += p
            cumulative.append(total)
        }
        guard total > 0 else { return [] }
        return (0..<n).map { i in
            var random = SampleRandom(seed: seed ^ 0xC1A5_5BA1_A4CE_0000, epoch: epoch, index: i)
            let u = Double(random.next() >> 11) * 0x1p-53 * total
            var c = cumulative.firstIndex { u < $0 } ?? (classCount - 1)
            while members[c].isEmpty { c = (c + classCount - 1) % classCount }
            return members[c][random.below(members[c].count)]
        }
    }

    /// Per-sample weights from per-class weights (tefla's `class_weights`): sample i gets
    /// `classWeights[labels[i]]`.
    public func sampleWeights(classWeights: [Float]) throws -> [Float] {
        guard classWeights.count == classCount else {
            throw ConversionError.invalidOption(
                "classWeights has \(classWeights.count) values for \(classCount) classes")
        }
        return labels.map { classWeights[$0] }
    }

    /// Class weights inversely proportional to the class frequencies, scaled so the weighted
    /// samples sum to the sample count (scikit-learn's `class_weight="balanced"`); 0 for empty classes.
    public func balancedClassWeights() -> [Float] {
        members.map { $0.isEmpty ? 0 : Float(Double(labels.count) / (Double(classCount) * Double($0.count))) }
    }
}
