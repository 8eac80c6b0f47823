/// Random draws for one sample of one epoch, a pure function of (seed, epoch, index) and the
/// draw's position: a counter-based generator (SplitMix64 finaliser over a keyed counter).
///
/// Augmentation and shuffling draw from it instead of a shared stream, so a sample gets the same
/// crop, flip and jitter whichever worker thread decodes it, in whatever order, and after a
/// resume from (seed, epoch) alone. Kept here rather than using the tensor module's generator,
/// since Data depends on nothing above it.
public struct SampleRandom: Sendable {
    private let key: UInt64
    private var counter: UInt64 = 0

    public init(seed: UInt64, epoch: Int, index: Int) {
        var k = mix(seed ^ 0x5851_F42D_4C95_7F2D)
        k = mix(k ^ UInt64(bitPattern: Int64(epoch)) &* 0xD6E8_FEB8_6659_FD93)
        k = mix(k ^ UInt64(bitPattern: Int64(index)) &* 0xA076_1D64_78BD_642F)
        key = k
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        counter &+= 1
        return mix(key &+ counter &* 0x9E37_79B9_7F4A_7C15)
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in `range` (in [lower, upper)).
    public mutating func uniform(_ range: ClosedRange<Float>) -> Float {
        range.lowerBound + (range.upperBound - range.lowerBound) * uniform()
    }

    /// Uniform integer in `0..<bound` (bound > 0; Lemire's multiply-shift, bias below 2^-32 here).
    public mutating func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(UInt32(truncatingIfNeeded: next() >> 32)) &* UInt64(bound)) >> 32)
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Float) -> Bool { uniform() < p }
}

/// SplitMix64's finaliser: a bijective 64-bit mixer.
@inline(__always) func mix(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
