/// 2-D convolution layer over NCHW activations: y = activation(conv2d(x, W) + b).
///
/// Input [N, inputChannels, H, W], output [N, outputChannels, OH, OW] with
/// OH = ⌊(H + padTop + padBottom − d·(kH − 1) − 1) / s⌋ + 1. `weight` is
/// [outputChannels, inputChannels / groups, kH, kW] and `bias` [outputChannels], PyTorch's
/// `nn.Conv2d` names and layout. Weights start He-normal, N(0, 2 / fanIn) with
/// fanIn = inputChannels / groups · kH · kW; the bias starts at zero.
///
/// Declared by its outputs alone (``init(outputChannels:kernelSize:stride:padding:dilation:groups:useBias:activation:initializer:seed:)``),
/// the layer makes its weight when it first learns its input channels: from
/// ``Module/build(inputShape:)``, from `fit`'s first batch, or from its first input (PyTorch's `LazyConv2d`).
public final class Conv2D: Module {
    private var storedWeight: Parameter?
    public let bias: Parameter?
    public let stride: Size2D
    public let padding: Padding2D
    public let dilation: Size2D
    public let groups: Int
    public let activation: Activation
    public let outputChannels: Int
    public let kernelSize: Size2D
    private let initializer: Initializer
    private let seed: UInt64

    public convenience init(
        inputChannels: Int, outputChannels: Int, kernelSize: Size2D, stride: Size2D = 1,
        padding: Padding2D = .valid, dilation: Size2D = 1, groups: Int = 1, useBias: Bool = true,
        activation: Activation = .identity, initializer: Initializer = .heNormal, seed: UInt64? = nil
    ) {
        precondition(
            groups > 0 && inputChannels % groups == 0 && outputChannels % groups == 0,
            "Conv2D: groups \(groups) must divide inputChannels \(inputChannels) and outputChannels \(outputChannels)")
        self.init(
            outputChannels: outputChannels, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation,
            groups: groups, useBias: useBias, activation: activation, initializer: initializer, seed: seed)
        storedWeight = Parameter(makeWeight(inputChannels: inputChannels))
    }

    /// A convolution of `outputChannels` filters whose input channels come from its first input (see above).
    public init(
        outputChannels: Int, kernelSize: Size2D, stride: Size2D = 1, padding: Padding2D = .valid, dilation: Size2D = 1,
        groups: Int = 1, useBias: Bool = true, activation: Activation = .identity, initializer: Initializer = .heNormal,
        seed: UInt64? = nil
    ) {
        precondition(
            groups > 0 && outputChannels % groups == 0, "Conv2D: groups \(groups) must divide outputChannels \(outputChannels)")
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.initializer = initializer
        self.seed = seed ?? Dense.nextSeed()
        bias = useBias ? Parameter(.zeros([outputChannels])) : nil
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.activation = activation
        super.init()
    }

    private func makeWeight(inputChannels: Int) -> Tensor {
        var generator = RandomGenerator(seed: seed)
        let fanIn = inputChannels / groups * kernelSize.height * kernelSize.width
        let fanOut = outputChannels / groups * kernelSize.height * kernelSize.width
        return initializer.make(
            [outputChannels, inputChannels / groups, kernelSize.height, kernelSize.width], fanIn: fanIn, fanOut: fanOut,
            generator: &generator)
    }

    /// Whether the weight exists (false until a layer declared by its outputs sees its input).
    public var isBuilt: Bool { storedWeight != nil }

    /// [outputChannels, inputChannels / groups, kH, kW]; none until a layer declared by its
    /// outputs alone is built.
    public var weight: Parameter {
        guard let storedWeight else {
            preconditionFailure(
                "Conv2D(→\(outputChannels)) has no weight before its input channels are known: call build(inputShape:) first")
        }
        return storedWeight
    }

    /// The input channels; 0 while a layer declared by its outputs alone is not built.
    public var inputChannels: Int { (storedWeight?.shape[1] ?? 0) * groups }

    private func buildIfNeeded(inputChannels: Int) {
        guard storedWeight == nil, inputChannels > 0, inputChannels % groups == 0 else { return }
        storedWeight = Parameter(makeWeight(inputChannels: inputChannels).to(placement))
    }

    var label: String { "Conv2D(\(inputChannels)→\(outputChannels), kernel \(kernelSize), stride \(stride))" }

    public override func forward(_ input: Tensor) -> Tensor {
        if input.rank == 4 { buildIfNeeded(inputChannels: input.shape[1]) }
        precondition(
            input.rank == 4 && input.shape[1] == inputChannels,
            "\(label): input shape \(input.shape) should be [N, \(inputChannels), H, W] (weight \(weight.shape))")
        return activation(
            input.conv2d(
                weight: weight.value, bias: bias?.value, stride: stride, padding: padding,
                dilation: dilation, groups: groups))
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        if shape.count == 3 { buildIfNeeded(inputChannels: shape[0]) }
        if !isBuilt, shape.count == 3 {
            throw shapeError("\(groups) groups must divide the \(shape[0]) input channels", layer: label)
        }
        try requireImage(shape, channels: isBuilt ? inputChannels : nil, layer: label)
        return try windowOutput(
            shape, outputChannels: outputChannels, kernel: kernelSize, stride: stride, padding: padding, dilation: dilation,
            layer: label)
    }

    public override var localParameters: [(String, Parameter)] {
        var p: [(String, Parameter)] = storedWeight.map { [("weight", $0)] } ?? []
        if let bias { p.append(("bias", bias)) }
        return p
    }
}

/// Transposed 2-D convolution (PyTorch's `nn.ConvTranspose2d`): the input-gradient of a
/// convolution used as a layer, for upsampling. `weight` is [inputChannels, outputChannels /
/// groups, kH, kW]; output OH = (H − 1)·s − 2·padding + d·(kH − 1) + 1 + outputPadding.
public final class ConvTranspose2D: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Size2D
    public let padding: Size2D
    public let outputPadding: Size2D
    public let dilation: Size2D
    public let groups: Int

    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: Size2D, stride: Size2D = 1, padding: Size2D = 0,
        outputPadding: Size2D = 0, dilation: Size2D = 1, groups: Int = 1, useBias: Bool = true, seed: UInt64? = nil
    ) {
        precondition(
            groups > 0 && inputChannels % groups == 0 && outputChannels % groups == 0,
            "ConvTranspose2D: groups \(groups) must divide inputChannels \(inputChannels) and outputChannels \(outputChannels)")
        var generator = RandomGenerator(seed: seed ?? Dense.nextSeed())
        let fanIn = outputChannels / groups * kernelSize.height * kernelSize.width
        weight = Parameter(
            Initializer.heNormal.make(
                [inputChannels, outputChannels / groups, kernelSize.height, kernelSize.width],
                fanIn: fanIn, fanOut: fanIn, generator: &generator))
        bias = useBias ? Parameter(.zeros([outputChannels])) : nil
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        self.dilation = dilation
        self.groups = groups
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank == 4 && input.shape[1] == weight.shape[0],
            "ConvTranspose2D(\(weight.shape[0])→\(weight.shape[1] * groups)): input shape \(input.shape) should be "
                + "[N, \(weight.shape[0]), H, W] (weight \(weight.shape))")
        return input.convTranspose2d(
            weight: weight.value, bias: bias?.value, stride: stride, padding: .symmetric(padding),
            outputPadding: outputPadding, dilation: dilation, groups: groups)
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        let label = "ConvTranspose2D(\(weight.shape[0])→\(weight.shape[1] * groups))"
        try requireImage(shape, channels: weight.shape[0], layer: label)
        let kernel = Size2D(weight.shape[2], weight.shape[3])
        let oh = (shape[1] - 1) * stride.height - 2 * padding.height + dilation.height * (kernel.height - 1) + 1 + outputPadding.height
        let ow = (shape[2] - 1) * stride.width - 2 * padding.width + dilation.width * (kernel.width - 1) + 1 + outputPadding.width
        guard oh > 0, ow > 0 else {
            throw shapeError("padding \(padding) leaves no output for a \(shape[1])×\(shape[2]) input", layer: label)
        }
        return [weight.shape[1] * groups, oh, ow]
    }

    public override var localParameters: [(String, Parameter)] {
        var p = [("weight", weight)]
        if let bias { p.append(("bias", bias)) }
        return p
    }
}
