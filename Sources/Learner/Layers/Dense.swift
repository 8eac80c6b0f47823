import Foundation

/// Element-wise activations usable inside layers and as layers of their own.
public enum Activation: String, Sendable, CaseIterable {
    case identity, relu, gelu, sigmoid, tanh
    /// x·σ(x) (PyTorch's `SiLU`, Swish).
    case silu
    /// max(x, 0.01·x) (PyTorch's `LeakyReLU` default slope; ``LeakyReLU`` takes another).
    case leakyRelu = "leaky_relu"
    /// Softmax over the features (axis 1: classes of [N, C], channels of [N, C, H, W]).
    case softmax

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .identity: return x
        case .relu: return x.relu()
        case .gelu: return x.gelu()
        case .sigmoid: return x.sigmoid()
        case .tanh: return x.tanh()
        case .silu: return x * x.sigmoid()
        case .leakyRelu: return x.leakyRelu(negativeSlope: 0.01)
        case .softmax: return x.softmaxOverFeatures()
        }
    }
}

/// How a layer's weights start.
public enum Initializer: Sendable {
    /// Glorot/Xavier uniform: U(±√(6 / (fanIn + fanOut))), suited to tanh/sigmoid/linear.
    case glorotUniform
    /// He/Kaiming normal: N(0, 2 / fanIn), suited to ReLU.
    case heNormal
    case zeros

    func make(_ shape: [Int], fanIn: Int, fanOut: Int, generator: inout RandomGenerator) -> Tensor {
        switch self {
        case .glorotUniform:
            let limit = Float((6.0 / Double(fanIn + fanOut)).squareRoot())
            return .randomUniform(shape, lower: -limit, upper: limit, generator: &generator)
        case .heNormal:
            return .randomNormal(shape, standardDeviation: Float((2.0 / Double(fanIn)).squareRoot()), generator: &generator)
        case .zeros:
            return .zeros(shape)
        }
    }
}

/// Fully connected layer: y = activation(x Wᵀ + b).
///
/// Input [N, inputSize], output [N, units]. `weight` is [units, inputSize] and
/// `bias` [units], as in PyTorch's `nn.Linear`. Weights start He-normal before a ReLU
/// and Glorot-uniform otherwise; the bias starts at zero.
///
/// Declared by its outputs alone (``init(units:activation:useBias:initializer:seed:)``), the
/// layer makes its weight when it first learns its input size: from ``Module/build(inputShape:)``,
/// from `fit`'s first batch, or from the first input it is called on (PyTorch's `LazyLinear`).
public final class Dense: Module {
    private var storedWeight: Parameter?
    public let bias: Parameter?
    public let activation: Activation
    public let units: Int
    private let initializer: Initializer
    private let seed: UInt64

    public convenience init(
        inputSize: Int, units: Int, activation: Activation = .identity, useBias: Bool = true,
        initializer: Initializer? = nil, seed: UInt64? = nil
    ) {
        self.init(units: units, activation: activation, useBias: useBias, initializer: initializer, seed: seed)
        storedWeight = Parameter(makeWeight(inputSize: inputSize))
    }

    /// A layer of `units` outputs whose input size comes from its first input (see above).
    public init(
        units: Int, activation: Activation = .identity, useBias: Bool = true, initializer: Initializer? = nil, seed: UInt64? = nil
    ) {
        precondition(units > 0, "Dense: units \(units)")
        self.units = units
        self.activation = activation
        self.initializer = initializer ?? (activation == .relu || activation == .gelu ? .heNormal : .glorotUniform)
        self.seed = seed ?? Dense.nextSeed()
        bias = useBias ? Parameter(.zeros([units])) : nil
        super.init()
    }

    private func makeWeight(inputSize: Int) -> Tensor {
        var generator = RandomGenerator(seed: seed)
        return initializer.make([units, inputSize], fanIn: inputSize, fanOut: units, generator: &generator)
    }

    /// Whether the weight exists (false until a layer declared by its outputs sees its input size).
    public var isBuilt: Bool { storedWeight != nil }

    /// [units, inputSize]. A layer declared by its outputs alone has none until it is built.
    public var weight: Parameter {
        guard let storedWeight else {
            preconditionFailure("Dense(units: \(units)) has no weight before its input size is known: call build(inputShape:) first")
        }
        return storedWeight
    }

    /// The input size; 0 while a layer declared by its outputs alone is not built.
    public var inputSize: Int { storedWeight?.shape[1] ?? 0 }

    private func buildIfNeeded(inputSize: Int) {
        guard storedWeight == nil, inputSize > 0 else { return }
        storedWeight = Parameter(makeWeight(inputSize: inputSize).to(placement))
    }

    private var label: String { isBuilt ? "Dense(\(inputSize)→\(units))" : "Dense(→\(units))" }

    public override func forward(_ input: Tensor) -> Tensor {
        if input.rank == 2 { buildIfNeeded(inputSize: input.shape[1]) }
        precondition(
            input.rank == 2 && input.shape[1] == inputSize,
            "\(label): input shape \(input.shape) should be [N, \(isBuilt ? String(inputSize) : "features")]")
        return activation(input.linear(weight: weight.value, bias: bias?.value))
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        if shape.count == 1 { buildIfNeeded(inputSize: shape[0]) }
        guard isBuilt, shape == [inputSize] else {
            throw shapeError(
                "takes \(isBuilt ? "\(inputSize) values" : "flat [features]") per sample, gets \(ShapeError.text(shape))"
                    + (shape.count > 1 && (!isBuilt || shape.reduce(1, *) == inputSize) ? " (flatten it first)" : ""),
                layer: label)
        }
        return [units]
    }

    public override var localParameters: [(String, Parameter)] {
        var p: [(String, Parameter)] = storedWeight.map { [("weight", $0)] } ?? []
        if let bias { p.append(("bias", bias)) }
        return p
    }

    /// Layers built without a seed draw distinct, reproducible ones from a process-wide counter
    /// (locked: replicas may build their models on threads of their own).
    private static let seedCounter = Locked<UInt64>(0x7EF1A)
    static func nextSeed() -> UInt64 {
        seedCounter.withLock { counter in
            counter &+= 1
            return counter
        }
    }
}

/// An activation function as a layer.
public final class ActivationLayer: Module {
    public let activation: Activation
    public init(_ activation: Activation) {
        self.activation = activation
        super.init()
    }
    public override func forward(_ input: Tensor) -> Tensor { activation(input) }
    public override func outputShape(forInput shape: [Int]) throws -> [Int] { shape }
}

/// Flattens every axis after the batch axis: [N, d1, d2, ...] → [N, d1·d2·...].
public final class Flatten: Module {
    public override init() { super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input.flattened() }
    public override func outputShape(forInput shape: [Int]) throws -> [Int] { [shape.reduce(1, *)] }
}

/// Gives each sample the shape `shape` (the same values in the same order): flat feature
/// vectors become [channels, height, width] images for convolutions.
public final class Reshape: Module {
    public let shape: [Int]

    public init(_ shape: [Int]) {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 > 0 }, "Reshape: \(shape) must be positive sizes")
        self.shape = shape
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor { input.reshaped(to: [input.shape[0]] + shape) }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        let size = self.shape.reduce(1, *)
        guard shape.reduce(1, *) == size else {
            throw shapeError(
                "makes \(ShapeError.text(self.shape)) samples of \(size) values, but each sample has \(shape.reduce(1, *)) "
                    + "(shape \(ShapeError.text(shape)))", layer: "Reshape(\(ShapeError.text(self.shape)))")
        }
        return self.shape
    }
}
