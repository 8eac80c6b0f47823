/// How a residual block's shortcut matches a change of shape (He et al. 2016, §3.3).
public enum ResidualShortcut: Sendable {
    /// Option A: subsample by the stride and zero-pad the new channels; no parameters.
    case zeroPadding
    /// Option B: a 1×1 convolution with the stride, then batch norm (`downsample.0`, `downsample.1`).
    case projection
}

/// Option A's shortcut: x[:, :, ::s, ::s] with (outC − C) zero channels split around it
/// (the CIFAR ResNets of He et al. 2016 §4.2). Parameter-free.
public final class ZeroPadShortcut: Module {
    public let outputChannels: Int
    public let stride: Int

    public init(outputChannels: Int, stride: Int) {
        self.outputChannels = outputChannels
        self.stride = stride
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank == 4 && input.shape[1] <= outputChannels,
            "ZeroPadShortcut(→\(outputChannels), stride \(stride)): input shape \(input.shape) should be [N, ≤\(outputChannels), H, W]")
        // A 1×1 max pool with stride s is exactly the strided subsampling.
        let sub = stride == 1 ? input : input.maxPool2d(kernel: 1, stride: Size2D(stride, stride))
        let extra = outputChannels - input.shape[1]
        guard extra > 0 else { return sub }
        let before = extra / 2
        var parts: [Tensor] = []
        let (n, h, w) = (sub.shape[0], sub.shape[2], sub.shape[3])
        if before > 0 { parts.append(.zeros([n, before, h, w], on: sub.device)) }
        parts.append(sub)
        parts.append(.zeros([n, extra - before, h, w], on: sub.device))
        return Tensor.concatenate(parts, alongAxis: 1)
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        let label = "ZeroPadShortcut(→\(outputChannels), stride \(stride))"
        try requireImage(shape, layer: label)
        guard shape[0] <= outputChannels else { throw shapeError("gets \(shape[0]) channels, more than \(outputChannels)", layer: label) }
        return [outputChannels, (shape[1] - 1) / stride + 1, (shape[2] - 1) / stride + 1]
    }
}

/// ResNet's basic block (two 3×3 convolutions): y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
/// torchvision's names: `conv1`, `bn1`, `conv2`, `bn2`, `downsample.0` (1×1 conv), `downsample.1` (BN).
public final class BasicBlock: Module {
    public static let expansion = 1
    public let conv1: Conv2D, bn1: BatchNorm2D, conv2: Conv2D, bn2: BatchNorm2D
    /// The projection shortcut (nil: identity, or a parameter-free zero-padding shortcut).
    public let downsample: Sequential?
    let zeroPad: ZeroPadShortcut?

    public init(inputChannels: Int, outputChannels: Int, stride: Int = 1, shortcut: ResidualShortcut = .projection) {
        conv1 = Conv2D(
            inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3, stride: Size2D(stride, stride),
            padding: 1, useBias: false)
        bn1 = BatchNorm2D(features: outputChannels)
        conv2 = Conv2D(inputChannels: outputChannels, outputChannels: outputChannels, kernelSize: 3, padding: 1, useBias: false)
        bn2 = BatchNorm2D(features: outputChannels)
        let reshapes = stride != 1 || inputChannels != outputChannels
        downsample = reshapes && shortcut == .projection ? projectionShortcut(inputChannels, outputChannels, stride) : nil
        zeroPad = reshapes && shortcut == .zeroPadding ? ZeroPadShortcut(outputChannels: outputChannels, stride: stride) : nil
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        let y = bn2(conv2(bn1(conv1(input)).relu()))
        let skip = downsample.map { $0(input) } ?? zeroPad.map { $0(input) } ?? input
        return (y + skip).relu()
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        try residualOutputShape(
            main: ["conv1", "bn1", "conv2", "bn2"], shortcut: downsample != nil ? "downsample" : zeroPad != nil ? "shortcut" : nil, shape)
    }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
        if let downsample { c.append(("downsample", downsample)) }
        if let zeroPad { c.append(("shortcut", zeroPad)) }
        return c
    }
}

/// ResNet's bottleneck block (1×1 reduce, 3×3 with the stride, 1×1 expand by 4), torchvision's
/// v1.5 layout (stride on the 3×3) and names: `conv1`..`conv3`, `bn1`..`bn3`, `downsample`.
public final class Bottleneck: Module {
    public static let expansion = 4
    public let conv1: Conv2D, bn1: BatchNorm2D, conv2: Conv2D, bn2: BatchNorm2D, conv3: Conv2D, bn3: BatchNorm2D
    public let downsample: Sequential?

    /// `width` is the 3×3 convolution's channel count; the block outputs 4·width channels.
    public init(inputChannels: Int, width: Int, stride: Int = 1) {
        let out = width * Bottleneck.expansion
        conv1 = Conv2D(inputChannels: inputChannels, outputChannels: width, kernelSize: 1, useBias: false)
        bn1 = BatchNorm2D(features: width)
        conv2 = Conv2D(
            inputChannels: width, outputChannels: width, kernelSize: 3, stride: Size2D(stride, stride), padding: 1,
            useBias: false)
        bn2 = BatchNorm2D(features: width)
        conv3 = Conv2D(inputChannels: width, outputChannels: out, kernelSize: 1, useBias: false)
        bn3 = BatchNorm2D(features: out)
        downsample = stride != 1 || inputChannels != out ? projectionShortcut(inputChannels, out, stride) : nil
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        let y = bn3(conv3(bn2(conv2(bn1(conv1(input)).relu())).relu()))
        return (y + (downsample.map { $0(input) } ?? input)).relu()
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        try residualOutputShape(
            main: ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3"], shortcut: downsample != nil ? "downsample" : nil, shape)
    }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2), ("conv3", conv3), ("bn3", bn3)]
        if let downsample { c.append(("downsample", downsample)) }
        return c
    }
}

/// Option B's shortcut: 1×1 convolution with the stride, then batch norm.
extension Module {
    /// The output shape of a residual block: the children named in `main` in turn, added to the
    /// `shortcut` child's output (or the input).
    func residualOutputShape(main: [String], shortcut: String?, _ shape: [Int]) throws -> [Int] {
        let byName = Dictionary(uniqueKeysWithValues: children.map { ($0.0, $0.1) })
        var y = shape
        for name in main { y = try outputShape(of: byName[name]!, named: name, forInput: y) }
        let skip = try shortcut.map { try outputShape(of: byName[$0]!, named: $0, forInput: shape) } ?? shape
        guard y == skip else {
            throw shapeError("the block gives \(ShapeError.text(y)), its shortcut \(ShapeError.text(skip)); they must match to be added")
        }
        return y
    }
}

func projectionShortcut(_ input: Int, _ output: Int, _ stride: Int) -> Sequential {
    Sequential([
        Conv2D(inputChannels: input, outputChannels: output, kernelSize: 1, stride: Size2D(stride, stride), useBias: false),
        BatchNorm2D(features: output),
    ])
}
