/// The 2-D U-Net (Ronneberger et al. 2015) as micro_dl builds it, for segmentation and
/// image-to-image work: `depth` encoder blocks, each followed by a 2×2 max-pool, a bottom block,
/// then `depth` decoder steps that upsample, join the encoder block of the same size
/// (channels concatenated, skip first) and convolve; a 1×1 convolution gives `outputChannels`
/// per pixel. Block i has `baseFilters`·2ⁱ channels.
///
/// Parameter names, as a PyTorch module with these attributes would have them: `down0` …
/// `down{depth−1}`, `bottom`, `up0` … (the upsampling, deepest first), `dec0` … (the blocks after
/// each join), `head`. A block holds `conv1`, `bn1`, `conv2`, `bn2` and, when residual with a
/// change of channels, `shortcut` (a 1×1 convolution). Convolutions before batch norm have no bias.
///
/// The input's height and width must be multiples of 2^depth.
public final class UNet: Module {
    /// How a decoder step doubles the resolution.
    public enum Upsampling: String, Sendable, CaseIterable {
        /// A 2×2 transposed convolution with stride 2 that also halves the channels (`up{i}` is a
        /// ConvTranspose2D).
        case transposed
        /// Nearest or bilinear upsampling (align_corners false), then a 3×3 convolution that halves
        /// the channels (`up{i}.1` is that convolution).
        case nearest, bilinear
    }

    /// Two 3×3 convolutions, each with batch norm (optional) and ReLU, then dropout; residual:
    /// the block's input (through a 1×1 convolution when the channels change) is added before
    /// the second ReLU.
    public final class Block: Module {
        public let conv1: Conv2D, conv2: Conv2D
        public let bn1: BatchNorm2D?, bn2: BatchNorm2D?
        public let shortcut: Conv2D?
        public let dropout: Dropout?
        public let residual: Bool

        public init(inputChannels: Int, outputChannels: Int, batchNorm: Bool, dropout: Float, residual: Bool, seed: UInt64) {
            conv1 = Conv2D(
                inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3, padding: .same, useBias: !batchNorm,
                seed: seed)
            conv2 = Conv2D(
                inputChannels: outputChannels, outputChannels: outputChannels, kernelSize: 3, padding: .same, useBias: !batchNorm,
                seed: seed &+ 1)
            bn1 = batchNorm ? BatchNorm2D(features: outputChannels) : nil
            bn2 = batchNorm ? BatchNorm2D(features: outputChannels) : nil
            shortcut =
                residual && inputChannels != outputChannels
                ? Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 1, seed: seed &+ 2) : nil
            self.dropout = dropout > 0 ? Dropout(rate: dropout) : nil
            self.residual = residual
            super.init()
        }

        public override func forward(_ input: Tensor) -> Tensor {
            var x = conv1(input)
            if let bn1 { x = bn1(x) }
            x = conv2(x.relu())
            if let bn2 { x = bn2(x) }
            if residual { x = x + (shortcut.map { $0(input) } ?? input) }
            x = x.relu()
            return dropout.map { $0(x) } ?? x
        }

        public override func outputShape(forInput shape: [Int]) throws -> [Int] {
            var s = try outputShape(of: conv1, named: "conv1", forInput: shape)
            s = try outputShape(of: conv2, named: "conv2", forInput: s)
            return s
        }

        public override var children: [(String, Module)] {
            var c: [(String, Module)] = [("conv1", conv1)]
            if let bn1 { c.append(("bn1", bn1)) }
            c.append(("conv2", conv2))
            if let bn2 { c.append(("bn2", bn2)) }
            if let shortcut { c.append(("shortcut", shortcut)) }
            if let dropout { c.append(("dropout", dropout)) }
            return c
        }
    }

    public let depth: Int
    public let down: [Block]
    public let bottom: Block
    public let up: [Module]
    public let decoder: [Block]
    public let head: Conv2D
    private let pool = MaxPool2D(kernelSize: 2)

    /// - Parameters:
    ///   - inputChannels: channels of the input images.
    ///   - outputChannels: channels of the output: the classes of a segmentation (logits per
    ///     pixel, for the per-pixel cross-entropy), or the target image's channels.
    ///   - depth: the number of 2×2 poolings (micro_dl's `num_down_blocks`).
    ///   - baseFilters: channels of the first block, doubled at each depth.
    ///   - batchNorm: batch norm after each convolution of the blocks.
    ///   - dropout: dropout at the end of each block, in training.
    ///   - residual: residual blocks (micro_dl's `residual`).
    ///   - upsampling: transposed convolutions or an interpolation followed by a convolution.
    ///   - seed: draws every layer's starting weights.
    public init(
        inputChannels: Int, outputChannels: Int, depth: Int = 4, baseFilters: Int = 32, batchNorm: Bool = true,
        dropout: Float = 0, residual: Bool = false, upsampling: Upsampling = .transposed, seed: UInt64 = 0
    ) {
        precondition(depth >= 1 && baseFilters >= 1, "UNet: depth \(depth), baseFilters \(baseFilters)")
        self.depth = depth
        var seeds = RandomGenerator(seed: seed)
        func block(_ i: Int, _ o: Int) -> Block {
            Block(inputChannels: i, outputChannels: o, batchNorm: batchNorm, dropout: dropout, residual: residual, seed: seeds.next())
        }
        let widths = (0...depth).map { baseFilters << $0 }
        down = (0..<depth).map { block($0 == 0 ? inputChannels : widths[$0 - 1], widths[$0]) }
        bottom = block(widths[depth - 1], widths[depth])
        var up: [Module] = []
        var decoder: [Block] = []
        for level in stride(from: depth - 1, through: 0, by: -1) {
            let wide = widths[level + 1], narrow = widths[level]
            switch upsampling {
            case .transposed:
                up.append(
                    ConvTranspose2D(inputChannels: wide, outputChannels: narrow, kernelSize: 2, stride: 2, seed: seeds.next()))
            case .nearest, .bilinear:
                up.append(
                    Sequential([
                        Upsample(scale: 2, mode: upsampling == .nearest ? .nearest : .bilinear(alignCorners: false)),
                        Conv2D(inputChannels: wide, outputChannels: narrow, kernelSize: 3, padding: .same, seed: seeds.next()),
                    ]))
            }
            decoder.append(block(2 * narrow, narrow))
        }
        self.up = up
        self.decoder = decoder
        head = Conv2D(
            inputChannels: baseFilters, outputChannels: outputChannels, kernelSize: 1, initializer: .glorotUniform, seed: seeds.next())
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank == 4 && input.shape[2] % (1 << depth) == 0 && input.shape[3] % (1 << depth) == 0,
            "UNet(depth \(depth)): input \(input.shape) should be [N, C, H, W] with H and W multiples of \(1 << depth)")
        var skips: [Tensor] = []
        var x = input
        for block in down {
            x = block(x)
            skips.append(x)
            x = pool(x)
        }
        x = bottom(x)
        for (k, (upsample, block)) in zip(up, decoder).enumerated() {
            x = block(Tensor.concatenate([skips[depth - 1 - k], upsample(x)], alongAxis: 1))
        }
        return head(x)
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        try requireImage(shape, channels: down[0].conv1.inputChannels, layer: "UNet(depth \(depth))")
        guard shape[1] % (1 << depth) == 0, shape[2] % (1 << depth) == 0 else {
            throw shapeError(
                "needs a height and width that are multiples of \(1 << depth) (2^depth), gets \(shape[1])×\(shape[2])",
                layer: "UNet(depth \(depth))")
        }
        return [head.outputChannels, shape[1], shape[2]]
    }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = down.enumerated().map { ("down\($0.offset)", $0.element) }
        c.append(("bottom", bottom))
        c += up.enumerated().map { ("up\($0.offset)", $0.element) }
        c += decoder.enumerated().map { ("dec\($0.offset)", $0.element) }
        c.append(("head", head))
        return c
    }
}
