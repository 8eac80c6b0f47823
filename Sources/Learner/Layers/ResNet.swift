/// A residual network (He et al. 2016): stem conv1 → bn1 → relu (→ max pool), the stages
/// `layer1`, `layer2`, ... of residual blocks, global average pooling and the classifier `fc`.
/// Parameter paths are torchvision's (`conv1.weight`, `bn1.running_mean`,
/// `layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`, `fc.bias`), so a torchvision
/// `state_dict` maps 1:1. Build one with ``Zoo``.
public final class ResNet: Module {
    public let conv1: Conv2D
    public let bn1: BatchNorm2D
    public let maxpool: MaxPool2D?
    public let stages: [Sequential]
    public let fc: Dense

    public init(conv1: Conv2D, bn1: BatchNorm2D, maxpool: MaxPool2D?, stages: [Sequential], fc: Dense) {
        self.conv1 = conv1
        self.bn1 = bn1
        self.maxpool = maxpool
        self.stages = stages
        self.fc = fc
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        var x = bn1(conv1(input)).relu()
        if let maxpool { x = maxpool(x) }
        for stage in stages { x = stage(x) }
        return fc(x.globalAvgPool2d())
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        var x = shape
        for (name, child) in children where name != "fc" { x = try outputShape(of: child, named: name, forInput: x) }
        try requireImage(x, layer: "ResNet")
        return try outputShape(of: fc, named: "fc", forInput: [x[0]])
    }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("conv1", conv1), ("bn1", bn1)]
        if let maxpool { c.append(("maxpool", maxpool)) }
        for (i, s) in stages.enumerated() { c.append(("layer\(i + 1)", s)) }
        c.append(("fc", fc))
        return c
    }
}
