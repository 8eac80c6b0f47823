extension Tensor {
    /// x where x > 0, `negativeSlope`·x elsewhere (the slope's side chosen by a mask, so the
    /// gradient is 1 or the slope).
    public func leakyRelu(negativeSlope: Float = 0.01) -> Tensor {
        let positive = greater(Tensor(repeating: 0, shape: [], on: device))
        return self * (positive * (1 - negativeSlope) + negativeSlope)
    }

    /// Softmax along axis 1: over the classes of `[N, C]`, over the channels of `[N, C, ...]`.
    public func softmaxOverFeatures() -> Tensor {
        guard rank > 2 else { return softmax() }
        // Move the features last, normalise, move them back.
        let last = [0] + Array(2..<rank) + [1]
        var back = [Int](repeating: 0, count: rank)
        for (i, axis) in last.enumerated() { back[axis] = i }
        return transposed(last).softmax().transposed(back)
    }
}

/// `LeakyReLU` with a chosen slope (PyTorch's `nn.LeakyReLU(negative_slope)`).
public final class LeakyReLU: Module {
    public let negativeSlope: Float

    public init(negativeSlope: Float = 0.01) {
        self.negativeSlope = negativeSlope
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor { input.leakyRelu(negativeSlope: negativeSlope) }
    public override func outputShape(forInput shape: [Int]) throws -> [Int] { shape }
}
