import CLearner

/// Every differentiable operation of the engine. Each case has a backward rule, and the test
/// suite holds a finite-difference check for each: a case added here without one fails it.
public enum OpKind: String, CaseIterable, Sendable {
    case add, subtract, multiply, divide, negate
    case exp, log, sqrt, pow, abs
    case relu, gelu, sigmoid, tanh, softplus
    case softmax, logSoftmax
    case sum, mean, max
    case reshape, transpose, concat, slice, gatherRows
    case matmul, batchedMatmul, linear, dropout
    case conv2d, convTranspose2d, batchNorm, maxPool2d, avgPool2d
    case softmaxCrossEntropy, sigmoidCrossEntropy
}

/// A node of the reverse-mode tape: the op that produced a tensor, the nodes of its inputs,
/// and the rule mapping the output's gradient to the inputs' gradients. A leaf node (no op)
/// stands for a trainable tensor.
public final class TapeNode {
    let op: OpKind?
    let inputs: [TapeNode?]
    let backward: ((Tensor) -> [Tensor?])?
    let shape: [Int]

    init(op: OpKind?, inputs: [TapeNode?], shape: [Int], backward: ((Tensor) -> [Tensor?])?) {
        self.op = op
        self.inputs = inputs
        self.shape = shape
        self.backward = backward
    }

    static func leaf(shape: [Int]) -> TapeNode { TapeNode(op: nil, inputs: [], shape: shape, backward: nil) }
}

/// Controls recording. Recording is off inside ``withoutGradients(_:)`` (evaluation, metrics,
/// optimizer updates). The flag is per thread, so that replicas training on threads of one
/// process (``InProcessGroup``) record independently.
public enum Tape {
    static var recordingDisabled: Int { Int(tl_tape_disabled_depth()) }

    public static var isRecording: Bool { recordingDisabled == 0 }

    /// Wraps the result of an op: records a node when any input is on the tape.
    @inline(__always)
    static func record(
        _ op: OpKind, _ out: Tensor, inputs: [Tensor],
        _ backward: @escaping (Tensor) -> [Tensor?]
    ) -> Tensor {
        guard recordingDisabled == 0, inputs.contains(where: { $0.node != nil }) else { return out }
        var result = out
        result.node = TapeNode(op: op, inputs: inputs.map { $0.node }, shape: out.shape, backward: backward)
        return result
    }
}

/// Runs `body` without recording on the tape (PyTorch's `no_grad`).
public func withoutGradients<T>(_ body: () throws -> T) rethrows -> T {
    tl_tape_adjust_disabled(1)
    defer { tl_tape_adjust_disabled(-1) }
    return try body()
}

extension Tensor {
    /// This tensor as a trainable leaf: gradients with respect to it can be asked for.
    public func trainable() -> Tensor { Tensor(shape: shape, storage: storage, node: .leaf(shape: shape)) }
}

/// Reverse-mode differentiation: the gradient of the scalar `loss` with respect to each
/// tensor in `wrt` (zeros for a tensor the loss does not depend on).
///
/// `onGradientReady(i, g)`, when given, is called once for each index `i` of `wrt` as soon as
/// that gradient is final (no node left to run adds to it), in the order the backward pass
/// completes them: data-parallel training starts the all-reduce of the last layers' gradients
/// while the first layers' are still being computed.
public func gradients(of loss: Tensor, wrt: [Tensor], onGradientReady: ((Int, Tensor) -> Void)? = nil) -> [Tensor] {
    precondition(loss.scalarCount == 1, "gradients(of:) needs a scalar loss, got shape \(loss.shape)")
    guard let root = loss.node else {
        let zeros = wrt.map { Tensor.zeros($0.shape, on: $0.device) }
        if let onGradientReady { for (i, z) in zeros.enumerated() { onGradientReady(i, z) } }
        return zeros
    }

    // Topological order by an iterative depth-first walk (deep graphs must not overflow the stack).
    var order: [TapeNode] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(TapeNode, Int)] = [(root, 0)]
    visited.insert(ObjectIdentifier(root))
    while let (node, next) = stack.popLast() {
        if next < node.inputs.count {
            stack.append((node, next + 1))
            if let child = node.inputs[next], !visited.contains(ObjectIdentifier(child)) {
                visited.insert(ObjectIdentifier(child))
                stack.append((child, 0))
            }
        } else {
            order.append(node)
        }
    }

    var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): Tensor(repeating: 1, shape: loss.shape, on: loss.device)]
    // Gradients asked for are kept even when their tensor is an intermediate result.
    let requested = Set(wrt.compactMap { $0.node.map(ObjectIdentifier.init) })
    let reversed = Array(order.reversed())
    // For the hook: the last step (index into `reversed`) that adds to each requested gradient.
    var readyAfter: [Int: [Int]] = [:]
    var reported = [Bool](repeating: false, count: wrt.count)
    if onGradientReady != nil {
        var lastUse: [ObjectIdentifier: Int] = [:]
        for (k, node) in reversed.enumerated() where node.backward != nil {
            for input in node.inputs { if let input, requested.contains(ObjectIdentifier(input)) { lastUse[ObjectIdentifier(input)] = k } }
        }
        for (i, t) in wrt.enumerated() {
            guard let node = t.node, let k = lastUse[ObjectIdentifier(node)] else { continue }
            readyAfter[k, default: []].append(i)
        }
    }
    func report(_ i: Int) {
        guard let onGradientReady, !reported[i] else { return }
        reported[i] = true
        let t = wrt[i]
        onGradientReady(i, t.node.flatMap { grads[ObjectIdentifier($0)] } ?? Tensor.zeros(t.shape, on: t.device))
    }
    withoutGradients {
        for (k, node) in reversed.enumerated() {
            defer { if let ready = readyAfter[k] { for i in ready { report(i) } } }
            guard let backward = node.backward, let g = grads[ObjectIdentifier(node)] else { continue }
            let inputGrads = backward(g)
            for (input, ig) in zip(node.inputs, inputGrads) {
                guard let input, let ig else { continue }
                let key = ObjectIdentifier(input)
                if let existing = grads[key] { grads[key] = existing + ig } else { grads[key] = ig }
            }
            // Intermediate gradients are not needed once propagated; free them early.
            if node.op != nil, !requested.contains(ObjectIdentifier(node)) { grads[ObjectIdentifier(node)] = nil }
        }
    }
    for i in wrt.indices { report(i) }  // leaves the loss does not reach, and the loss itself
    return wrt.map { t in
        guard let node = t.node, let g = grads[ObjectIdentifier(node)] else { return Tensor.zeros(t.shape, on: t.device) }
        return g
    }
}

/// The value of `body` at `parameters` and its gradient with respect to each of them.
public func valueAndGradient(at parameters: [Tensor], _ body: ([Tensor]) -> Tensor) -> (value: Tensor, gradients: [Tensor]) {
    let leaves = parameters.map { $0.requiresGradient ? $0 : $0.trainable() }
    let value = body(leaves)
    return (value.detached(), gradients(of: value, wrt: leaves))
}
