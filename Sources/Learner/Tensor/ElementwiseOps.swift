import CLearner

extension Tensor {
    /// An element-wise binary op with NumPy broadcasting.
    static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.device == b.device, "operands on different devices: \(a.device) and \(b.device)")
        guard let shape = ShapeMath.broadcast(a.shape, b.shape) else {
            preconditionFailure("shapes \(a.shape) and \(b.shape) cannot be broadcast together")
        }
        return Tensor(shape: shape, storage: a.backend.binary(op, a.storage, shape: a.shape, b.storage, shape: b.shape, outShape: shape))
    }

    /// Sums a gradient over the axes that broadcasting expanded, giving it `shape`.
    func unbroadcast(to target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = rank - target.count
        var axes: [Int] = Array(0..<offset)
        for i in 0..<target.count where target[i] == 1 && shape[i + offset] != 1 { axes.append(i + offset) }
        return sum(alongAxes: axes, keepingDimensions: true).reshaped(to: target)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = binary(.add, a, b)
        return Tape.record(.add, out, inputs: [a, b]) { g in [g.unbroadcast(to: a.shape), g.unbroadcast(to: b.shape)] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = binary(.subtract, a, b)
        return Tape.record(.subtract, out, inputs: [a, b]) { g in [g.unbroadcast(to: a.shape), (-g).unbroadcast(to: b.shape)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = binary(.multiply, a, b)
        return Tape.record(.multiply, out, inputs: [a, b]) { g in
            [
                a.requiresGradient ? (g * b.detached()).unbroadcast(to: a.shape) : nil,
                b.requiresGradient ? (g * a.detached()).unbroadcast(to: b.shape) : nil,
            ]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = binary(.divide, a, b)
        return Tape.record(.divide, out, inputs: [a, b]) { g in
            let bd = b.detached()
            return [
                a.requiresGradient ? (g / bd).unbroadcast(to: a.shape) : nil,
                b.requiresGradient ? (-(g * out.detached() / bd)).unbroadcast(to: b.shape) : nil,
            ]
        }
    }

    public static prefix func - (x: Tensor) -> Tensor {
        let out = Tensor(shape: x.shape, storage: x.backend.unary(.negate, x.storage))
        return Tape.record(.negate, out, inputs: [x]) { g in [-g] }
    }

    /// x * scale + shift, recorded as the ops it stands for.
    func affine(scale: Float, shift: Float) -> Tensor {
        Tensor(shape: shape, storage: backend.affine(storage, scale: scale, shift: shift))
    }

    /// x·scale + shift as one kernel (no scalar tensor to fill, no broadcast: on a GPU each of
    /// those is a launch), recorded as `kind` with the gradient g·scale. The results are the
    /// binary op's exactly: x·s + 0, x·1 + t and x·(−1) + t round as x·s, x + t and t − x.
    private func scalarOp(_ kind: OpKind, scale: Float, shift: Float) -> Tensor {
        let out = affine(scale: scale, shift: shift)
        return Tape.record(kind, out, inputs: [self]) { g in [scale == 1 ? g : g * scale] }
    }

    public static func + (a: Tensor, b: Float) -> Tensor { a.scalarOp(.add, scale: 1, shift: b) }
    public static func + (a: Float, b: Tensor) -> Tensor { b.scalarOp(.add, scale: 1, shift: a) }
    public static func - (a: Tensor, b: Float) -> Tensor { a.scalarOp(.subtract, scale: 1, shift: -b) }
    public static func - (a: Float, b: Tensor) -> Tensor { b.scalarOp(.subtract, scale: -1, shift: a) }
    public static func * (a: Tensor, b: Float) -> Tensor { a.scalarOp(.multiply, scale: b, shift: 0) }
    public static func * (a: Float, b: Tensor) -> Tensor { b.scalarOp(.multiply, scale: a, shift: 0) }
    public static func / (a: Tensor, b: Float) -> Tensor { a * (1 / b) }
    public static func / (a: Float, b: Tensor) -> Tensor { Tensor(repeating: a, shape: [], on: b.device) / b }

    /// An activation or math function whose derivative is a function of input and output.
    private func unaryOp(_ op: UnaryOp, _ kind: OpKind, derivative: @escaping (Tensor, Tensor, Tensor) -> Tensor) -> Tensor {
        let out = Tensor(shape: shape, storage: backend.unary(op, storage))
        let x = self.detached()
        return Tape.record(kind, out, inputs: [self]) { g in [derivative(x, out.detached(), g)] }
    }

    private func activation(_ op: UnaryOp, _ kind: OpKind) -> Tensor {
        let out = Tensor(shape: shape, storage: backend.unary(op, storage))
        // The backward keeps only what its formula reads. ReLU's reads its output, which the next
        // layer keeps anyway, so its input (a batch norm's output, a residual sum) is freed after
        // the forward pass, as PyTorch's in-place ReLU frees it.
        let reads = tl_unary_reads(op.rawValue)
        let x = reads & TL_READS_X != 0 ? storage : nil, y = reads & TL_READS_Y != 0 ? out.storage : nil
        let backend = self.backend, shape = self.shape
        return Tape.record(kind, out, inputs: [self]) { g in
            [Tensor(shape: shape, storage: backend.unaryBackward(op, x: x, y: y, gradient: g.storage))]
        }
    }

    public func exp() -> Tensor { unaryOp(.exp, .exp) { _, y, g in g * y } }
    public func log() -> Tensor { unaryOp(.log, .log) { x, _, g in g / x } }
    public func sqrt() -> Tensor { unaryOp(.sqrt, .sqrt) { _, y, g in g / (y * 2) } }
    public func abs() -> Tensor {
        unaryOp(.abs, .abs) { x, _, g in g * Tensor(shape: x.shape, storage: x.backend.unary(.sign, x.storage)) }
    }
    public func relu() -> Tensor { activation(.relu, .relu) }
    /// GELU, tanh approximation (as PyTorch's `approximate="tanh"`).
    public func gelu() -> Tensor { activation(.gelu, .gelu) }
    public func sigmoid() -> Tensor { activation(.sigmoid, .sigmoid) }
    public func tanh() -> Tensor { activation(.tanh, .tanh) }
    /// log(1 + eˣ), and x itself above 20 (PyTorch's `F.softplus` with beta 1, threshold 20); its
    /// derivative is sigmoid(x).
    public func softplus() -> Tensor { activation(.softplus, .softplus) }
    public func squared() -> Tensor { self * self }

    /// Element-wise power with a constant exponent.
    public func pow(_ exponent: Float) -> Tensor {
        let out = Tensor(shape: shape, storage: backend.pow(storage, exponent))
        let x = self.detached()
        return Tape.record(.pow, out, inputs: [self]) { g in
            [g * Tensor(shape: x.shape, storage: x.backend.pow(x.storage, exponent - 1)) * exponent]
        }
    }

    // Comparisons give 0/1 tensors and carry no gradient.
    public func equal(_ other: Tensor) -> Tensor { Tensor.binary(.equal, self.detached(), other.detached()) }
    public func greater(_ other: Tensor) -> Tensor { Tensor.binary(.greater, self.detached(), other.detached()) }
    public func less(_ other: Tensor) -> Tensor { Tensor.binary(.less, self.detached(), other.detached()) }
    public func greaterEqual(_ other: Tensor) -> Tensor { Tensor.binary(.greaterEqual, self.detached(), other.detached()) }
    public func lessEqual(_ other: Tensor) -> Tensor { Tensor.binary(.lessEqual, self.detached(), other.detached()) }
    public func maximum(_ other: Tensor) -> Tensor { Tensor.binary(.maximum, self.detached(), other.detached()) }
    public func minimum(_ other: Tensor) -> Tensor { Tensor.binary(.minimum, self.detached(), other.detached()) }
}
