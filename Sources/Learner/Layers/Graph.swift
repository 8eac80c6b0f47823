/// Modules for graphs beyond a chain: identity, closures, sums and concatenations of branches,
/// residual connections. Each branch is a child named by position (`0`, `1`, ...) unless
/// stated, so parameter paths stay PyTorch-like.

/// Returns its input (PyTorch's `nn.Identity`): a branch that passes the input through.
public final class Identity: Module {
    public override init() { super.init() }
    public override func forward(_ input: Tensor) -> Tensor { input }
    public override func outputShape(forInput shape: [Int]) throws -> [Int] { shape }
}

/// A parameter-free function as a module (reshapes, custom activations, shortcuts). The
/// closure must only call differentiable Tensor ops.
public final class Lambda: Module {
    public let name: String
    private let body: (Tensor) -> Tensor

    public init(_ name: String, _ body: @escaping (Tensor) -> Tensor) {
        self.name = name
        self.body = body
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor { body(input) }
}

/// The element-wise sum of its branches applied to the same input: y = Σᵢ branchᵢ(x).
public final class Add: Module {
    public let branches: [Module]

    public init(_ branches: [Module]) {
        precondition(!branches.isEmpty, "Add needs at least one branch")
        self.branches = branches
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        let outputs = branches.map { $0(input) }
        for (i, o) in outputs.enumerated() where o.shape != outputs[0].shape {
            preconditionFailure("Add: branch \(i) gives shape \(o.shape), branch 0 gives \(outputs[0].shape) (input \(input.shape))")
        }
        return outputs.dropFirst().reduce(outputs[0], +)
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        let shapes = try children.map { try outputShape(of: $0.1, named: $0.0, forInput: shape) }
        for (i, s) in shapes.enumerated() where s != shapes[0] {
            throw shapeError("branch \(i) gives \(ShapeError.text(s)), branch 0 gives \(ShapeError.text(shapes[0]))")
        }
        return shapes[0]
    }

    public override var children: [(String, Module)] { branches.enumerated().map { ("\($0.offset)", $0.element) } }
}

/// The concatenation of its branches' outputs along `axis` (channels by default): a DenseNet
/// layer is `Concat([Identity(), f])`, y = [x, f(x)].
public final class Concat: Module {
    public let branches: [Module]
    public let axis: Int

    public init(_ branches: [Module], axis: Int = 1) {
        precondition(!branches.isEmpty, "Concat needs at least one branch")
        self.branches = branches
        self.axis = axis
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        let outputs = branches.map { $0(input) }
        let a = axis < 0 ? axis + input.rank : axis
        for (i, o) in outputs.enumerated() {
            let fits = o.rank == outputs[0].rank && (0..<o.rank).allSatisfy { $0 == a || o.shape[$0] == outputs[0].shape[$0] }
            precondition(fits, "Concat(axis \(axis)): branch \(i) gives shape \(o.shape), branch 0 gives \(outputs[0].shape)")
        }
        return Tensor.concatenate(outputs, alongAxis: axis)
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        let shapes = try children.map { try outputShape(of: $0.1, named: $0.0, forInput: shape) }
        // `axis` counts the batch axis; the shapes here leave it out.
        let a = (axis < 0 ? axis + shape.count + 1 : axis) - 1
        guard a >= 0, a < shapes[0].count else {
            throw shapeError("axis \(axis) is not a sample axis of \(ShapeError.text(shapes[0]))", layer: "Concat(axis \(axis))")
        }
        var result = shapes[0]
        for (i, s) in shapes.enumerated().dropFirst() {
            let fits = s.count == shapes[0].count && s.indices.allSatisfy { $0 == a || s[$0] == shapes[0][$0] }
            guard fits else {
                throw shapeError(
                    "branch \(i) gives \(ShapeError.text(s)), branch 0 gives \(ShapeError.text(shapes[0])); only axis \(axis) may differ",
                    layer: "Concat(axis \(axis))")
            }
            result[a] += s[a]
        }
        return result
    }

    public override var children: [(String, Module)] { branches.enumerated().map { ("\($0.offset)", $0.element) } }
}

/// A residual connection (He et al. 2016): y = activation(body(x) + shortcut(x)), the shortcut
/// being the identity when nil. Children `body` and `shortcut`.
public final class Residual: Module {
    public let body: Module
    public let shortcut: Module?
    public let activation: Activation

    public init(_ body: Module, shortcut: Module? = nil, activation: Activation = .identity) {
        self.body = body
        self.shortcut = shortcut
        self.activation = activation
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        let main = body(input)
        let skip = shortcut.map { $0(input) } ?? input
        precondition(
            main.shape == skip.shape,
            "Residual: body gives shape \(main.shape), shortcut gives \(skip.shape) (input \(input.shape))")
        return activation(main + skip)
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        let main = try outputShape(of: body, named: "body", forInput: shape)
        let skip = try shortcut.map { try outputShape(of: $0, named: "shortcut", forInput: shape) } ?? shape
        guard main == skip else {
            throw shapeError("the body gives \(ShapeError.text(main)), the shortcut \(ShapeError.text(skip)); they must match to be added")
        }
        return main
    }

    public override var children: [(String, Module)] {
        var c: [(String, Module)] = [("body", body)]
        if let shortcut { c.append(("shortcut", shortcut)) }
        return c
    }
}
