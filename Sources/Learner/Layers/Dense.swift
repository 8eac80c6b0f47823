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
public final class Dense: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let activation: Activation

    public init(
        inputSize: Int, units: Int, activation: Activation = .identity, useBias: Bool = true,
        initializer: Initializer? = nil, seed: UInt64? = nil
    ) {
        var generator = RandomGenerator(seed: seed ?? Dense.nextSeed())
        let init_ = initializer ?? (activation == .relu || activation == .gelu ? .heNormal : .glorotUniform)
        weight = Parameter(init_.make([units, inputSize], fanIn: inputSize, fanOut: units, generator: &generator))
        bias = useBias ? Parameter(.zeros([units])) : nil
        self.activation = activation
        super.init()
    }

    public var inputSize: Int { weight.shape[1] }
    public var units: Int { weight.shape[0] }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank == 2 && input.shape[1] == inputSize,
            "Dense(\(inputSize)→\(units)): input shape \(input.shape) should be [N, \(inputSize)]")
        return activation(input.linear(weight: weight.value, bias: bias?.value))
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        guard shape == [inputSize] else {
            throw shapeError(
                "takes \(inputSize) values per sample, gets \(ShapeError.text(shape))"
                    + (shape.count > 1 && shape.reduce(1, *) == inputSize ? " (flatten it first)" : ""),
                layer: "Dense(\(inputSize)→\(units))")
        }
        return [units]
    }

    public override var localParameters: [(String, Parameter)] {
        var p = [("weight", weight)]
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
