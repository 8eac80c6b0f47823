/// Dropout (Srivastava et al. 2014): active in training mode, the identity in evaluation.
public final class Dropout: Module {
    public let rate: Float

    public init(rate: Float) {
        precondition(rate >= 0 && rate < 1, "Dropout rate \(rate) must be in [0, 1)")
        self.rate = rate
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        guard isTraining, rate > 0 else { return input }
        let perSample = input.rank > 0 && input.shape[0] > 0 ? input.scalarCount / input.shape[0] : 0
        return input.dropout(
            rate: rate, seed: randomKey.seed, step: randomKey.step, salt: randomKey.salt,
            elementOffset: randomSampleOffset * perSample)
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] { shape }
}

/// Channel dropout (Tompson et al. 2015; PyTorch's `nn.Dropout2d`): in training, zeroes whole
/// channels of [N, C, H, W] with probability `rate` and scales the rest by 1/(1 − rate); the
/// identity in evaluation. The mask [N, C, 1, 1] is keyed like ``Dropout``'s, by global sample index too.
public final class Dropout2D: Module {
    public let rate: Float

    public init(rate: Float) {
        precondition(rate >= 0 && rate < 1, "Dropout2D rate \(rate) must be in [0, 1)")
        self.rate = rate
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4, "Dropout2D(rate \(rate)): input shape \(input.shape) should be [N, C, H, W]")
        guard isTraining, rate > 0 else { return input }
        let key = Tensor.dropoutKey(seed: randomKey.seed, salt: randomKey.salt)
        let channels = input.shape[0] * input.shape[1]
        let mask = Tensor(
            shape: [input.shape[0], input.shape[1], 1, 1],
            storage: Tensor.dropoutMask(
                on: input.device, count: channels, offset: randomSampleOffset * input.shape[1],
                rate: rate, key: key, step: randomKey.step))
        return input * mask
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        try requireImage(shape, layer: "Dropout2D(rate \(rate))")
        return shape
    }
}
