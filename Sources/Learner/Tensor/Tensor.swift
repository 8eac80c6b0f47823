import CLearner

/// An n-dimensional array of Float32 values in contiguous row-major storage on one device.
///
/// Tensors are values: every op returns a new tensor and leaves its inputs alone. A tensor
/// produced from inputs that take part in differentiation carries a node of the autodiff tape
/// (``Tape``), so that ``gradients(of:wrt:)`` can run the chain rule backwards.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: Storage
    /// The tape node that produced this tensor, or the leaf node of a trainable tensor.
    var node: TapeNode?

    public var dtype: DType { .float32 }
    public var device: Device { storage.device }
    public var rank: Int { shape.count }
    public var scalarCount: Int { storage.count }
    /// Whether gradients flow back through this tensor.
    public var requiresGradient: Bool { node != nil }

    init(shape: [Int], storage: Storage, node: TapeNode? = nil) {
        precondition(ShapeMath.count(shape) == storage.count,
                     "shape \(shape) holds \(ShapeMath.count(shape)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.node = node
    }

    /// A tensor with the given shape and values (row-major).
    public init(shape: [Int], scalars: [Float]) {
        precondition(ShapeMath.count(shape) == scalars.count,
                     "shape \(shape) needs \(ShapeMath.count(shape)) values, got \(scalars.count)")
        let storage = Storage(count: scalars.count)
        scalars.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: scalars.count) }
        }
        self.init(shape: shape, storage: storage)
    }

    /// A rank-1 tensor.
    public init(_ scalars: [Float]) { self.init(shape: [scalars.count], scalars: scalars) }

    /// A rank-0 tensor.
    public init(_ scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    public init(repeating value: Float, shape: [Int]) {
        let storage = Storage(count: ShapeMath.count(shape))
        storage.pointer.initialize(repeating: value, count: storage.count)
        self.init(shape: shape, storage: storage)
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }

    /// Normally distributed values with the given standard deviation.
    public static func randomNormal(_ shape: [Int], standardDeviation: Float = 1,
                                    generator: inout RandomGenerator) -> Tensor {
        let t = Tensor(shape: shape, storage: Storage(count: ShapeMath.count(shape)))
        for i in 0..<t.scalarCount { t.storage.pointer[i] = generator.nextNormal() * standardDeviation }
        return t
    }

    /// Uniformly distributed values in `lower..<upper`.
    public static func randomUniform(_ shape: [Int], lower: Float, upper: Float,
                                     generator: inout RandomGenerator) -> Tensor {
        let t = Tensor(shape: shape, storage: Storage(count: ShapeMath.count(shape)))
        for i in 0..<t.scalarCount { t.storage.pointer[i] = lower + (upper - lower) * generator.nextUniform() }
        return t
    }

    /// The values, copied to the host.
    public var scalars: [Float] { Array(storage.buffer) }

    /// The single value of a one-element tensor.
    public var scalar: Float {
        precondition(scalarCount == 1, "scalar of a tensor with shape \(shape)")
        return storage.pointer[0]
    }

    /// The same values without a link to the tape.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// A copy with its own storage.
    public func copy() -> Tensor {
        let out = Storage(count: scalarCount)
        out.pointer.update(from: storage.pointer, count: scalarCount)
        return Tensor(shape: shape, storage: out)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(16).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(scalarCount > 16 ? ", ..." : "")])"
    }
}
