extension Tensor {
    /// Inverted dropout: zeroes each element with probability `rate` and scales the rest by
    /// 1/(1 − rate). The mask is a pure function of (key, step, element index), so a resumed run
    /// draws the same masks. `elementOffset` shifts the element index: a replica holding rows
    /// r ..< r + n of a global batch passes r × (elements per row) and draws those rows' part of
    /// the whole batch's mask. The gradient is the upstream gradient times the same mask.
    public func dropout(rate: Float, key: UInt64, step: UInt64, elementOffset: Int = 0) -> Tensor {
        precondition(rate >= 0 && rate < 1, "dropout rate \(rate) must be in [0, 1)")
        let mask = Tensor(
            shape: shape,
            storage: Tensor.dropoutMask(
                on: device, count: scalarCount, offset: elementOffset, rate: rate, key: key, step: step))
        let out = Tensor.binary(.multiply, self, mask)
        return Tape.record(.dropout, out, inputs: [self]) { g in [g * mask] }
    }

    /// ``dropout(rate:key:step:elementOffset:)`` with the key of (seed, salt), as the layers
    /// draw it: each layer salts the run's seed with its own number.
    public func dropout(rate: Float, seed: UInt64, step: UInt64, salt: UInt64, elementOffset: Int = 0) -> Tensor {
        dropout(rate: rate, key: Tensor.dropoutKey(seed: seed, salt: salt), step: step, elementOffset: elementOffset)
    }

    /// The mask key of a layer salted `salt` in a run seeded `seed`.
    static func dropoutKey(seed: UInt64, salt: UInt64) -> UInt64 { seed ^ (salt &* 0x9E37_79B9_7F4A_7C15) }

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
