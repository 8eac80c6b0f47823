/// Layers applied in order. Children are named by position (`0`, `1`, ...) as in PyTorch's
/// `nn.Sequential`, so parameter paths read `0.weight`, `2.bias`.
public final class Sequential: Module {
    public let layers: [Module]

    public init(_ layers: [Module]) {
        self.layers = layers
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        layers.reduce(input) { x, layer in layer(x) }
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        var shape = shape
        for (name, layer) in children { shape = try outputShape(of: layer, named: name, forInput: shape) }
        return shape
    }

    public override var checksSamples: Bool { layers.first?.checksSamples ?? false }

    public override func firstInvalidSample(_ input: Tensor) -> (sample: Int, reason: String)? {
        layers.first?.firstInvalidSample(input)
    }

    public override var children: [(String, Module)] { layers.enumerated().map { ("\($0.offset)", $0.element) } }
}
