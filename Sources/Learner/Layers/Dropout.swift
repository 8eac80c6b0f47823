extension Tensor {
    /// Inverted dropout: zeroes each element with probability `rate` and scales the rest by
    /// 1/(1 − rate). The mask is a pure function of (seed, step, salt, element index), so a
    /// resumed run draws the same masks.
    public func dropout(rate: Float, seed: UInt64, step: UInt64, salt: UInt64) -> Tensor {
        precondition(rate >= 0 && rate < 1, "dropout rate \(rate) must be in [0, 1)")
        let key = seed ^ (salt &* 0x9E37_79B9_7F4A_7C15)
        let mask = backend.dropoutMask(count: scalarCount, rate: rate, key: key, step: step)
        let m = Tensor(shape: shape, storage: mask)
        let out = Tensor.binary(.multiply, self, m)
        return Tape.record(.dropout, out, inputs: [self]) { g in [g * m] }
    }
}

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
        return input.dropout(rate: rate, seed: randomKey.seed, step: randomKey.step, salt: randomKey.salt)
    }
}

/// Channel dropout (Tompson et al. 2015; PyTorch's `nn.Dropout2d`): in training, zeroes whole
/// channels of [N, C, H, W] with probability `rate` and scales the rest by 1/(1 − rate); the
/// identity in evaluation. The mask [N, C, 1, 1] is keyed like ``Dropout``'s.
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
        let key = randomKey.seed ^ (randomKey.salt &* 0x9E37_79B9_7F4A_7C15)
        let channels = input.shape[0] * input.shape[1]
        let mask = Tensor(shape: [input.shape[0], input.shape[1], 1, 1],
                          storage: input.backend.dropoutMask(count: channels, rate: rate, key: key, step: randomKey.step))
        return input * mask
    }
}
