/// Normalises each sample over its last axes (PyTorch's `nn.LayerNorm(normalized_shape)`):
/// y = (x − μ) / √(σ² + ε) · γ + β, μ and the biased σ² over those axes, γ and β of that shape.
/// The same in training and evaluation; no running statistics.
public final class LayerNorm: Module {
    public let normalizedShape: [Int]
    public let epsilon: Float
    /// γ (starts at 1) and β (starts at 0), PyTorch's `weight` and `bias`; nil without an affine.
    public let weight: Parameter?
    public let bias: Parameter?

    public init(normalizedShape: [Int], epsilon: Float = 1e-5, affine: Bool = true) {
        precondition(!normalizedShape.isEmpty && normalizedShape.allSatisfy { $0 > 0 }, "LayerNorm: shape \(normalizedShape)")
        self.normalizedShape = normalizedShape
        self.epsilon = epsilon
        weight = affine ? Parameter(.ones(normalizedShape)) : nil
        bias = affine ? Parameter(.zeros(normalizedShape)) : nil
        super.init()
    }

    /// Over the last axis of `features` values.
    public convenience init(features: Int, epsilon: Float = 1e-5) { self.init(normalizedShape: [features], epsilon: epsilon) }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        guard shape.count >= normalizedShape.count, Array(shape.suffix(normalizedShape.count)) == normalizedShape else {
            throw shapeError(
                "normalises samples ending in \(ShapeError.text(normalizedShape)), gets \(ShapeError.text(shape))",
                layer: "LayerNorm(\(normalizedShape))")
        }
        return shape
    }

    public override func forward(_ input: Tensor) -> Tensor {
        let axes = Array((input.rank - normalizedShape.count)..<input.rank)
        precondition(
            Array(input.shape.suffix(normalizedShape.count)) == normalizedShape, "LayerNorm(\(normalizedShape)): input \(input.shape)")
        var y = input.normalized(alongAxes: axes, epsilon: epsilon)
        if let weight, let bias { y = y * weight.value + bias.value }
        return y
    }

    public override var localParameters: [(String, Parameter)] {
        guard let weight, let bias else { return [] }
        return [("weight", weight), ("bias", bias)]
    }
}

/// Group normalisation (Wu & He 2018; PyTorch's `nn.GroupNorm(num_groups, num_channels)`): the
/// channels of each sample of `[N, C, ...]` split into `groups`, each normalised over its
/// channels and positions; then a per-channel γ and β. Independent of the batch size.
public final class GroupNorm: Module {
    public let groups: Int
    public let channels: Int
    public let epsilon: Float
    public let weight: Parameter
    public let bias: Parameter

    public init(groups: Int, channels: Int, epsilon: Float = 1e-5) {
        precondition(groups > 0 && channels % groups == 0, "GroupNorm: \(groups) groups must divide \(channels) channels")
        self.groups = groups
        self.channels = channels
        self.epsilon = epsilon
        weight = Parameter(.ones([channels]))
        bias = Parameter(.zeros([channels]))
        super.init()
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        guard shape.first == channels else {
            throw shapeError(
                "normalises \(channels) channels of [channels, ...] samples, gets \(ShapeError.text(shape))",
                layer: "GroupNorm(\(groups), \(channels))")
        }
        return shape
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank >= 2 && input.shape[1] == channels, "GroupNorm(\(groups), \(channels)): input \(input.shape)")
        let n = input.shape[0]
        let grouped = input.reshaped(to: [n, groups, -1]).normalized(alongAxes: [2], epsilon: epsilon).reshaped(to: input.shape)
        var perChannel = [Int](repeating: 1, count: input.rank)
        perChannel[1] = channels
        return grouped * weight.value.reshaped(to: perChannel) + bias.value.reshaped(to: perChannel)
    }

    public override var localParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
}

extension Tensor {
    /// (x − μ) / √(σ² + ε) with μ and the biased σ² over `axes` (kept for broadcasting).
    public func normalized(alongAxes axes: [Int], epsilon: Float) -> Tensor {
        let centred = self - mean(alongAxes: axes, keepingDimensions: true)
        let variance = (centred * centred).mean(alongAxes: axes, keepingDimensions: true)
        return centred / (variance + epsilon).sqrt()
    }
}
