import CLearner

/// An n-dimensional array of Float32 values in contiguous row-major storage on one device.
///
/// Tensors are values: every op returns a new tensor and leaves its inputs alone. A tensor
/// produced from inputs that take part in differentiation carries a node of the autodiff tape
/// (``Tape``), so that ``gradients(of:wrt:onGradientReady:)`` can run the chain rule backwards.
// @unchecked Sendable: `shape` and `storage` are constants (``Storage`` says when its floats
// change), and `node` is an immutable tape node. The tape, with the backward closures a node
// holds, is recorded and run backwards on one thread (recording is per thread); tensors that
// cross threads (batches, parameters, results) are used there as values.
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
        precondition(
            ShapeMath.count(shape) == storage.count,
            "shape \(shape) holds \(ShapeMath.count(shape)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.node = node
    }

    /// A tensor with the given shape and values (row-major).
    public init(shape: [Int], scalars: [Float]) {
        precondition(
            ShapeMath.count(shape) == scalars.count,
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

    public init(repeating value: Float, shape: [Int], on device: Device = .cpu) {
        let storage = Storage(count: ShapeMath.count(shape), device: device)
        backendFor(device).fill(storage, value: value)
        self.init(shape: shape, storage: storage)
    }

    public static func zeros(_ shape: [Int], on device: Device = .cpu) -> Tensor { Tensor(repeating: 0, shape: shape, on: device) }
    public static func ones(_ shape: [Int], on device: Device = .cpu) -> Tensor { Tensor(repeating: 1, shape: shape, on: device) }

    /// Normally distributed values with the given standard deviation.
    public static func randomNormal(
        _ shape: [Int], standardDeviation: Float = 1,
        generator: inout RandomGenerator
    ) -> Tensor {
        let t = Tensor(shape: shape, storage: Storage(count: ShapeMath.count(shape)))
        for i in 0..<t.scalarCount { t.storage.pointer[i] = generator.nextNormal() * standardDeviation }
        return t
    }

    /// Uniformly distributed values in `lower..<upper`.
    public static func randomUniform(
        _ shape: [Int], lower: Float, upper: Float,
        generator: inout RandomGenerator
    ) -> Tensor {
        let t = Tensor(shape: shape, storage: Storage(count: ShapeMath.count(shape)))
        for i in 0..<t.scalarCount { t.storage.pointer[i] = lower + (upper - lower) * generator.nextUniform() }
        return t
    }

    /// The values, copied to the host (a synchronisation point on a GPU).
    public var scalars: [Float] {
        if device == .cpu { return Array(storage.buffer) }
        return to(.cpu).scalars
    }

    /// The single value of a one-element tensor (a synchronisation point on a GPU).
    public var scalar: Float {
        precondition(scalarCount == 1, "scalar of a tensor with shape \(shape)")
        if device == .cpu { return storage.pointer[0] }
        let host = to(.cpu)
        return withExtendedLifetime(host) { host.storage.pointer[0] }
    }

    /// A copy on `device` (the same tensor when it is already there). Not recorded on the tape:
    /// move parameters and data before training, not inside the model.
    public func to(_ target: Device) -> Tensor {
        if target == device { return self }
        let out = Storage(count: scalarCount, device: target)
        DeviceCopy.copy(from: storage, to: out)
        return Tensor(shape: shape, storage: out)
    }

    /// The same values without a link to the tape.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// A copy with its own storage.
    public func copy() -> Tensor {
        let out = Storage(count: scalarCount, device: device)
        DeviceCopy.copy(from: storage, to: out)
        return Tensor(shape: shape, storage: out)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(16).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(scalarCount > 16 ? ", ..." : "")])"
    }
}

extension Tensor {
    /// The backend of this tensor's device.
    var backend: any Backend { backendFor(device) }
}
