extension Tensor {
    /// Inverted dropout: zeroes each element with probability `rate` and scales the rest by
    /// 1/(1 − rate). The mask is a pure function of (seed, step, salt, element index), so a
    /// resumed run draws the same masks. `elementOffset` shifts the element index: a replica
    /// holding rows r ..< r + n of a global batch passes r × (elements per row) and draws
    /// those rows' part of the whole batch's mask.
    public func dropout(rate: Float, seed: UInt64, step: UInt64, salt: UInt64, elementOffset: Int = 0) -> Tensor {
        precondition(rate >= 0 && rate < 1, "dropout rate \(rate) must be in [0, 1)")
        let key = seed ^ (salt &* 0x9E37_79B9_7F4A_7C15)
        let mask = Tensor.dropoutMask(on: device, count: scalarCount, offset: elementOffset, rate: rate, key: key, step: step)
        let m = Tensor(shape: shape, storage: mask)
        let out = Tensor.binary(.multiply, self, m)
        return Tape.record(.dropout, out, inputs: [self]) { g in [g * m] }
    }

    /// Elements offset ..< offset + count of the mask the backend draws for offset + count elements.
    static func dropoutMask(on device: Device, count: Int, offset: Int, rate: Float, key: UInt64, step: UInt64) -> Storage {
        precondition(offset >= 0, "dropout mask offset \(offset) must not be negative")
        let backend = backendFor(device)
        if offset == 0 { return backend.dropoutMask(count: count, rate: rate, key: key, step: step) }
        if device == .cpu {
            // The CPU backend's rule (CPUBackend.dropoutMask), from element `offset` on.
            let mask = Storage(count: count)
            let scale = 1 / (1 - rate)
            let mp = mask.pointer
            CPUParallel.forRanges(count) { s, e in
                for i in s..<e { mp[i] = hashedUniform(key, step, UInt64(offset + i)) >= rate ? scale : 0 }
            }
            return mask
        }
        let whole = Tensor(shape: [offset + count], storage: backend.dropoutMask(count: offset + count, rate: rate, key: key, step: step))
        return whole.slice(alongAxis: 0, offset..<(offset + count)).storage
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
        let perSample = input.rank > 0 && input.shape[0] > 0 ? input.scalarCount / input.shape[0] : 0
        return input.dropout(rate: rate, seed: randomKey.seed, step: randomKey.step, salt: randomKey.salt,
                             elementOffset: randomSampleOffset * perSample)
    }
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
        let key = randomKey.seed ^ (randomKey.salt &* 0x9E37_79B9_7F4A_7C15)
        let channels = input.shape[0] * input.shape[1]
        let mask = Tensor(shape: [input.shape[0], input.shape[1], 1, 1],
                          storage: Tensor.dropoutMask(on: input.device, count: channels, offset: randomSampleOffset * input.shape[1],
                                                      rate: rate, key: key, step: randomKey.step))
        return input * mask
    }
}
