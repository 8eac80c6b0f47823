/// Seeded splits and orders for the data tools: the same seed gives the same files on every
/// machine.
public enum DataSplit {
    /// A stratified split of samples with `labels`: within each label a seeded shuffle, the first
    /// `round(count × fraction)` to validation. Both parts come back in a seeded shuffled order,
    /// so shards written from them mix the classes.
    public static func stratified(labels: [Int], fraction: Double, seed: UInt64) -> (train: [Int], validation: [Int]) {
        precondition(fraction >= 0 && fraction < 1, "the validation fraction is in [0, 1)")
        var byLabel: [Int: [Int]] = [:]
        for (i, label) in labels.enumerated() { byLabel[label, default: []].append(i) }
        var train: [Int] = [], validation: [Int] = []
        for label in byLabel.keys.sorted() {
            let members = byLabel[label]!
            let order = shuffled(members.count, seed: seed, key: label)
            let held = Int((Double(members.count) * fraction).rounded())
            validation += order.prefix(held).map { members[$0] }
            train += order.dropFirst(held).map { members[$0] }
        }
        return (
            shuffled(train.count, seed: seed, key: -1).map { train[$0] },
            shuffled(validation.count, seed: seed, key: -2).map { validation[$0] }
        )
    }

    /// A seeded permutation of `0..<count` (Fisher-Yates); `key` draws independent ones from one seed.
    public static func shuffled(_ count: Int, seed: UInt64, key: Int = 0) -> [Int] {
        var order = Array(0..<count)
        var random = SampleRandom(seed: seed, epoch: -3, index: key)
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, random.below(i + 1)) }
        return order
    }
}
