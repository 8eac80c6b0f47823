/// Max pooling over each plane of [N, C, H, W] (PyTorch's `nn.MaxPool2d`); `stride` defaults
/// to the kernel size. Output [N, C, OH, OW], OH = ⌊(H + 2·padding − kH) / s⌋ + 1.
public final class MaxPool2D: Module {
    public let kernelSize: Size2D, stride: Size2D, padding: Padding2D

    public init(kernelSize: Size2D, stride: Size2D? = nil, padding: Padding2D = 0) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank == 4, "MaxPool2D(kernel \(kernelSize), stride \(stride)): input shape \(input.shape) should be [N, C, H, W]")
        return input.maxPool2d(kernel: kernelSize, stride: stride, padding: padding)
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        let label = "MaxPool2D(kernel \(kernelSize), stride \(stride))"
        try requireImage(shape, layer: label)
        return try windowOutput(shape, outputChannels: shape[0], kernel: kernelSize, stride: stride, padding: padding, layer: label)
    }
}

/// Average pooling over each plane of [N, C, H, W] (PyTorch's `nn.AvgPool2d`, padding counted
/// in the divisor unless `countIncludePad` is false).
public final class AvgPool2D: Module {
    public let kernelSize: Size2D, stride: Size2D, padding: Padding2D, countIncludePad: Bool

    public init(kernelSize: Size2D, stride: Size2D? = nil, padding: Padding2D = 0, countIncludePad: Bool = true) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.countIncludePad = countIncludePad
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank == 4, "AvgPool2D(kernel \(kernelSize), stride \(stride)): input shape \(input.shape) should be [N, C, H, W]")
        return input.avgPool2d(kernel: kernelSize, stride: stride, padding: padding, countIncludePad: countIncludePad)
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        let label = "AvgPool2D(kernel \(kernelSize), stride \(stride))"
        try requireImage(shape, layer: label)
        return try windowOutput(shape, outputChannels: shape[0], kernel: kernelSize, stride: stride, padding: padding, layer: label)
    }
}

/// The mean of each channel: [N, C, H, W] → [N, C] (PyTorch's `AdaptiveAvgPool2d(1)` then
/// `flatten(1)`; Keras' `GlobalAveragePooling2D`).
public final class GlobalAvgPool2D: Module {
    public override init() { super.init() }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4, "GlobalAvgPool2D: input shape \(input.shape) should be [N, C, H, W]")
        return input.globalAvgPool2d()
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        try requireImage(shape, layer: "GlobalAvgPool2D")
        return [shape[0]]
    }
}
