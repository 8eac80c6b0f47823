import XCTest

@testable import Learner

/// The tape itself: accumulation, recording control, unused and intermediate tensors, deep graphs.
final class AutodiffTests: XCTestCase {
    func testGradientAccumulatesWhenATensorIsUsedTwice() {
        let x = Tensor([1, -2, 3]).trainable()
        XCTAssertEqual(gradients(of: (x * x).sum(), wrt: [x])[0].scalars, [2, -4, 6])
        XCTAssertEqual(gradients(of: (x + x).sum(), wrt: [x])[0].scalars, [2, 2, 2])
        XCTAssertEqual(gradients(of: (x - x).sum(), wrt: [x])[0].scalars, [0, 0, 0])
        // a·b + a: ∂/∂a = b + 1, ∂/∂b = a.
        let a = Tensor([2, 3]).trainable(), b = Tensor([5, -1]).trainable()
        let g = gradients(of: (a * b + a).sum(), wrt: [a, b])
        XCTAssertEqual(g[0].scalars, [6, 0])
        XCTAssertEqual(g[1].scalars, [2, 3])
        // A diamond: y = eˣ used by two branches, z = y² + y: dz/dx = (2y + 1)·y.
        let v = Tensor([0.5, -1]).trainable()
        let y = v.exp()
        let dz = gradients(of: (y * y + y).sum(), wrt: [v])[0].scalars
        let e = [Foundation.exp(0.5), Foundation.exp(-1.0)]
        XCTAssertEqual(Double(dz[0]), (2 * e[0] + 1) * e[0], accuracy: 1e-5)
        XCTAssertEqual(Double(dz[1]), (2 * e[1] + 1) * e[1], accuracy: 1e-5)
        // The same tensor three times in one op's inputs.
        let c = Tensor([1, 2]).trainable()
        XCTAssertEqual(gradients(of: Tensor.concatenate([c, c, c]).sum(), wrt: [c])[0].scalars, [3, 3])
    }

    func testGradientsAreFreshEachCall() {
        // No state leaks from one backward pass into the next.
        let x = Tensor([1, 2]).trainable()
        let loss = (x * x).sum()
        let first = gradients(of: loss, wrt: [x])[0].scalars
        let second = gradients(of: loss, wrt: [x])[0].scalars
        XCTAssertEqual(first, [2, 4])
        XCTAssertEqual(second, [2, 4])
    }

    func testWithoutGradientsRecordsNothing() throws {
        let x = Tensor([1, 2, 3]).trainable()
        XCTAssertTrue(Tape.isRecording)
        let y = withoutGradients { () -> Tensor in
            XCTAssertFalse(Tape.isRecording)
            let nested = withoutGradients { x * 2 }
            XCTAssertFalse(Tape.isRecording, "still off after a nested block ends")
            XCTAssertFalse(nested.requiresGradient)
            return (x * x).exp().sum()
        }
        XCTAssertTrue(Tape.isRecording)
        XCTAssertFalse(y.requiresGradient)
        XCTAssertNil(y.node)
        XCTAssertEqual(gradients(of: y, wrt: [x])[0].scalars, [0, 0, 0])
        // Recording comes back after a throw.
        struct Failure: Error {}
        XCTAssertThrowsError(try withoutGradients { () throws -> Void in throw Failure() })
        XCTAssertTrue(Tape.isRecording)
        // A result of trainable inputs outside the block does record.
        XCTAssertTrue((x * x).requiresGradient)
        // Ops on constants record nothing either.
        XCTAssertFalse((Tensor([1, 2]) * Tensor([3, 4])).requiresGradient)
    }

    func testGradientWithRespectToAnUnusedTensorIsZeros() {
        let x = Tensor([1, 2]).trainable()
        let unused = Tensor.ones([2, 3]).trainable()
        let g = gradients(of: (x * 3).sum(), wrt: [x, unused])
        XCTAssertEqual(g[0].scalars, [3, 3])
        XCTAssertEqual(g[1].shape, [2, 3])
        XCTAssertEqual(g[1].scalars, [0, 0, 0, 0, 0, 0])
        // A constant loss: zeros for everything.
        let constant = gradients(of: Tensor(5), wrt: [x])
        XCTAssertEqual(constant[0].shape, [2])
        XCTAssertEqual(constant[0].scalars, [0, 0])
        // A detached path carries no gradient.
        XCTAssertEqual(gradients(of: (x.detached() * x).sum(), wrt: [x])[0].scalars, [1, 2])
    }

    func testGradientWithRespectToAnIntermediateTensor() {
        let x = Tensor([1, 2, 3]).trainable()
        let h = x * 2
        let loss = (h * h).sum()
        let g = gradients(of: loss, wrt: [h, x])
        XCTAssertEqual(g[0].scalars, [4, 8, 12], "∂L/∂h = 2h")
        XCTAssertEqual(g[1].scalars, [8, 16, 24], "∂L/∂x = 4h")
        // The loss with respect to itself is 1.
        XCTAssertEqual(gradients(of: loss, wrt: [loss])[0].scalars, [1])
    }

    func testValueAndGradient() {
        let x = Tensor([1, 2, 3]), y = Tensor([4, 5, 6])
        let (value, grads) = valueAndGradient(at: [x, y]) { p in (p[0] * p[1]).sum() + p[0].sum() }
        XCTAssertEqual(value.scalar, 4 + 10 + 18 + 6)
        XCTAssertFalse(value.requiresGradient, "the value comes back detached")
        XCTAssertEqual(grads.count, 2)
        XCTAssertEqual(grads[0].scalars, [5, 6, 7])
        XCTAssertEqual(grads[1].scalars, [1, 2, 3])
        // Already-trainable parameters are used as they are.
        let w = Tensor([2]).trainable()
        let (v2, g2) = valueAndGradient(at: [w]) { p in (p[0] * p[0] * p[0]).sum() }
        XCTAssertEqual(v2.scalar, 8)
        XCTAssertEqual(g2[0].scalars, [12])
    }

    func testDeepChainDoesNotOverflowTheStack() {
        // 10 000 recorded ops in one chain: the backward walk is iterative, and releasing the
        // graph must not recurse 10 000 deep either.
        let depth = 10_000
        let x = Tensor([0.5, -0.25]).trainable()
        do {
            var y = x
            for i in 0..<depth {
                y = i % 2 == 0 ? y + x : y * 1
            }
            let g = gradients(of: y.sum(), wrt: [x])[0].scalars
            XCTAssertEqual(g, [Float(depth / 2 + 1), Float(depth / 2 + 1)])
            XCTAssertEqual(y.scalars, [0.5 * Float(depth / 2 + 1), -0.25 * Float(depth / 2 + 1)])
        }
        // A chain through unary ops, each depending on the previous result only.
        do {
            var y = x
            for _ in 0..<depth { y = y.tanh() * 1.0001 }
            let g = gradients(of: y.sum(), wrt: [x])[0]
            XCTAssertTrue(g.scalars.allSatisfy(\.isFinite))
        }
    }

    func testWideGraphWithSharedNodes() {
        // Each step uses the two previous results (Fibonacci-like): many paths into every node,
        // so a wrong topological order would use a gradient before it is complete.
        let x = Tensor([1]).trainable()
        var previous = x, current = x * 1
        for _ in 0..<30 {
            (previous, current) = (current, current + previous)
        }
        // current = F(31)·x with F the Fibonacci numbers (x counted as F(1) = F(2) = 1).
        let g = gradients(of: current.sum(), wrt: [x])[0].scalar
        XCTAssertEqual(g, current.scalar)
        XCTAssertEqual(g, 2_178_309)
    }

    func testLossBackwardDoesNotNeedTheCallerToKeepLabelsAlive() {
        // The caller's label and weight tensors may be gone by the time the backward pass runs,
        // and their blocks reused by the caching allocator.
        let logits = Tensor(shape: [4, 3], scalars: [1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 0, 1]).trainable()
        let reference = logits.softmaxCrossEntropy(labels: Tensor([2, 0, 1, 1]), sampleWeights: Tensor([1, 2, 1, 0.5]))
        let expected = gradients(of: reference, wrt: [logits])[0].scalars

        func makeLoss() -> Tensor {
            logits.softmaxCrossEntropy(labels: Tensor([2, 0, 1, 1]), sampleWeights: Tensor([1, 2, 1, 0.5]))
        }
        let loss = makeLoss()
        // Reuse freed blocks of 4 floats with other values.
        let filler = (0..<8).map { _ in Tensor([9, 9, 9, 9]) }
        XCTAssertEqual(gradients(of: loss, wrt: [logits])[0].scalars, expected)
        _ = filler

        let targets = Tensor(shape: [4, 3], scalars: [0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0])
        let referenceBCE = logits.sigmoidCrossEntropy(targets: targets, sampleWeights: Tensor([1, 2, 3, 4]))
        let expectedBCE = gradients(of: referenceBCE, wrt: [logits])[0].scalars
        func makeBCE() -> Tensor {
            logits.sigmoidCrossEntropy(
                targets: Tensor(shape: [4, 3], scalars: [0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0]),
                sampleWeights: Tensor([1, 2, 3, 4]))
        }
        let bce = makeBCE()
        let filler2 = (0..<8).map { _ in (Tensor([7, 7, 7, 7]), Tensor(repeating: 5, shape: [12])) }
        XCTAssertEqual(gradients(of: bce, wrt: [logits])[0].scalars, expectedBCE)
        _ = filler2
    }

    func testParametersAreLeavesThatGetGradients() {
        let layer = Dense(inputSize: 3, units: 2, seed: 1)
        XCTAssertTrue(layer.weight.value.requiresGradient)
        XCTAssertNil(layer.weight.value.node?.op, "a parameter is a leaf")
        let x = Tensor(shape: [4, 3], scalars: (0..<12).map { Float($0) * 0.1 })
        let loss = layer(x).sum()
        let g = gradients(of: loss, wrt: [layer.weight.value, layer.bias!.value])
        // ∂Σ(xWᵀ + b)/∂W[o, i] = Σₙ x[n, i]; ∂/∂b = N.
        let columnSums = (0..<3).map { i in (0..<4).map { Float($0 * 3 + i) * 0.1 }.reduce(0, +) }
        assertClose(g[0].scalars, (columnSums + columnSums).map(Double.init), rtol: 1e-6, "weight gradient")
        XCTAssertEqual(g[1].scalars, [4, 4])
        // assign keeps the leaf: gradients still reach the same parameter after an update.
        layer.weight.assign(Tensor.zeros([2, 3]))
        let g2 = gradients(of: layer(x).sum(), wrt: [layer.weight.value])[0]
        assertClose(g2.scalars, (columnSums + columnSums).map(Double.init), rtol: 1e-6, "after assign")
    }
}
