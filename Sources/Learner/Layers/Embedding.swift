/// A table of `count` learned vectors of `dimension` values (PyTorch's `nn.Embedding`, its
/// parameter `weight` [count, dimension] drawn from N(0, 1)): indices `[N]` or `[N, L]` (stored
/// as floats) become `[N, dimension]` or `[N, L, dimension]`.
public final class Embedding: Module {
    public let weight: Parameter
    public var count: Int { weight.shape[0] }
    public var dimension: Int { weight.shape[1] }

    public init(count: Int, dimension: Int, seed: UInt64? = nil) {
        precondition(count > 0 && dimension > 0, "Embedding(\(count), \(dimension))")
        var generator = RandomGenerator(seed: seed ?? Dense.nextSeed())
        weight = Parameter(Tensor.randomNormal([count, dimension], generator: &generator))
        super.init()
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] { shape + [dimension] }

    /// Whether `value` is a whole number naming a row (NaN and infinities are not).
    private func isRow(_ value: Float) -> Bool { value >= 0 && value < Float(count) && value.rounded() == value }

    public override var checksSamples: Bool { true }

    public override func firstInvalidSample(_ input: Tensor) -> (sample: Int, reason: String)? {
        guard input.device == .cpu, let n = input.shape.first, n > 0 else { return nil }
        let values = input.scalars
        guard let i = values.firstIndex(where: { !isRow($0) }) else { return nil }
        return (i / (values.count / n), "index \(values[i]) is not a row of Embedding(\(count), \(dimension)) (0..<\(count))")
    }

    public override func forward(_ input: Tensor) -> Tensor {
        let indices = input.scalars.enumerated().map { i, value -> Int in
            // fit checks the indices first (firstInvalidSample); a direct call with a bad one stops here.
            precondition(isRow(value), "Embedding(\(count), \(dimension)): index \(value) at \(i) is not in 0..<\(count)")
            return Int(value)
        }
        return weight.value.gatherRows(indices).reshaped(to: input.shape + [dimension])
    }

    public override var localParameters: [(String, Parameter)] { [("weight", weight)] }
}
