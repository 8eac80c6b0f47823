/// Ready-made architectures. Parameter names follow PyTorch/torchvision so weights move 1:1.
public enum Zoo {
    /// A multi-layer perceptron: Dense(+activation, +dropout) per hidden size, then a linear
    /// output layer. Children `0`, `1`, ... as `nn.Sequential`.
    public static func mlp(
        inputSize: Int, hiddenSizes: [Int], classes: Int, activation: Activation = .relu,
        dropout: Float = 0, seed: UInt64? = nil
    ) -> Sequential {
        var layers: [Module] = []
        var width = inputSize
        for (i, h) in hiddenSizes.enumerated() {
            layers.append(Dense(inputSize: width, units: h, activation: activation, seed: seed.map { $0 &+ UInt64(i) }))
            if dropout > 0 { layers.append(Dropout(rate: dropout)) }
            width = h
        }
        layers.append(Dense(inputSize: width, units: classes, seed: seed.map { $0 &+ UInt64(hiddenSizes.count) }))
        return Sequential(layers)
    }

    /// A small CNN for 28×28 to 64×64 images: two conv(3×3)–BN–ReLU–maxpool(2) stages of 32
    /// and 64 channels, a 128-channel conv–BN–ReLU, global average pooling and a linear
    /// classifier. Any input size ≥ 4×4 works (the pooling is global).
    public static func smallCNN(inputChannels: Int, classes: Int) -> Sequential {
        func stage(_ i: Int, _ o: Int) -> [Module] {
            [
                Conv2D(inputChannels: i, outputChannels: o, kernelSize: 3, padding: 1, useBias: false),
                BatchNorm2D(features: o), ActivationLayer(.relu),
            ]
        }
        return Sequential(
            stage(inputChannels, 32) + [MaxPool2D(kernelSize: 2)] + stage(32, 64) + [MaxPool2D(kernelSize: 2)]
                + stage(64, 128) + [GlobalAvgPool2D(), Dense(inputSize: 128, units: classes)])
    }

    /// ResNet-18 (He et al. 2016, torchvision layout): 11,689,512 parameters at 1000 classes.
    public static func resnet18(classes: Int = 1000, inputChannels: Int = 3) -> ResNet {
        imageNetResNet(blocks: [2, 2, 2, 2], classes: classes, inputChannels: inputChannels)
    }

    /// ResNet-34: 21,797,672 parameters at 1000 classes.
    public static func resnet34(classes: Int = 1000, inputChannels: Int = 3) -> ResNet {
        imageNetResNet(blocks: [3, 4, 6, 3], classes: classes, inputChannels: inputChannels)
    }

    /// ResNet-50 (bottleneck blocks, torchvision's v1.5): 25,557,032 parameters at 1000 classes.
    public static func resnet50(classes: Int = 1000, inputChannels: Int = 3) -> ResNet {
        imageNetResNet(blocks: [3, 4, 6, 3], bottleneck: true, classes: classes, inputChannels: inputChannels)
    }

    /// The ImageNet ResNets: conv1 7×7/2 (64), max pool 3×3/2, four stages of 64·2ⁱ channels
    /// (stride 2 from the second), global average pooling, fc.
    static func imageNetResNet(blocks: [Int], bottleneck: Bool = false, classes: Int, inputChannels: Int) -> ResNet {
        var channels = 64
        var stages: [Sequential] = []
        for (i, count) in blocks.enumerated() {
            let width = 64 << i
            var layers: [Module] = []
            for b in 0..<count {
                let stride = b == 0 && i > 0 ? 2 : 1
                if bottleneck {
                    layers.append(Bottleneck(inputChannels: channels, width: width, stride: stride))
                    channels = width * Bottleneck.expansion
                } else {
                    layers.append(BasicBlock(inputChannels: channels, outputChannels: width, stride: stride))
                    channels = width
                }
            }
            stages.append(Sequential(layers))
        }
        return ResNet(
            conv1: Conv2D(inputChannels: inputChannels, outputChannels: 64, kernelSize: 7, stride: 2, padding: 3, useBias: false),
            bn1: BatchNorm2D(features: 64), maxpool: MaxPool2D(kernelSize: 3, stride: 2, padding: 1),
            stages: stages, fc: Dense(inputSize: channels, units: classes, initializer: .glorotUniform))
    }

    /// The CIFAR ResNets of He et al. 2016 §4.2: conv 3×3 (16), three stages of n = (depth − 2)/6
    /// basic blocks with 16, 32, 64 channels (stride 2 from the second), global average pooling, fc.
    /// Shortcuts default to option A (zero padding, parameter-free): ResNet-20 has 269,722
    /// parameters and ResNet-56 853,018 at 10 classes. Option B (`.projection`) adds two 1×1
    /// projections: 272,474 and 855,770, the figures usually quoted as "0.27M" and "0.85M".
    public static func cifarResNet(
        depth: Int, classes: Int = 10, shortcut: ResidualShortcut = .zeroPadding,
        inputChannels: Int = 3
    ) -> ResNet {
        precondition(depth >= 8 && (depth - 2) % 6 == 0, "cifarResNet: depth \(depth) must be 6n + 2 (20, 32, 44, 56, 110)")
        let n = (depth - 2) / 6
        var channels = 16
        var stages: [Sequential] = []
        for i in 0..<3 {
            let width = 16 << i
            var layers: [Module] = []
            for b in 0..<n {
                layers.append(
                    BasicBlock(
                        inputChannels: channels, outputChannels: width, stride: b == 0 && i > 0 ? 2 : 1,
                        shortcut: shortcut))
                channels = width
            }
            stages.append(Sequential(layers))
        }
        return ResNet(
            conv1: Conv2D(inputChannels: inputChannels, outputChannels: 16, kernelSize: 3, padding: 1, useBias: false),
            bn1: BatchNorm2D(features: 16), maxpool: nil, stages: stages,
            fc: Dense(inputSize: channels, units: classes, initializer: .glorotUniform))
    }
}
