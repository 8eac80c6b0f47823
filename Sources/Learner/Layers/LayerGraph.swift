/// A model as a graph of named layers, each applied to the outputs of layers before it (Keras'
/// functional models): U-Net skips, DenseNet concatenations, residual sums, several heads of one
/// trunk. Nodes run in the order given; a node's inputs name earlier nodes or ``inputName``.
///
/// A layer node takes one input; a merge node (``Operation/concat(axis:)``, ``Operation/add``)
/// takes two or more. Layer nodes are children named by their node names, so parameter paths
/// read `enc1.weight`, `up3.bias`: the names a PyTorch module with those attributes uses.
///
/// ```swift
/// let model = try LayerGraph([
///     .init("stem", .layer(Conv2D(inputChannels: 3, outputChannels: 8, kernelSize: 3, padding: .same))),
///     .init("branch", .layer(Conv2D(inputChannels: 8, outputChannels: 8, kernelSize: 3, padding: .same))),
///     .init("joined", .concat(), inputs: ["stem", "branch"]),
/// ])
/// ```
public final class LayerGraph: Module {
    /// What a node computes.
    public enum Operation {
        /// A module applied to the node's one input.
        case layer(Module)
        /// The inputs joined along `axis` of the batch tensor (1: channels of [N, C, H, W] or
        /// features of [N, F]); all other sizes must agree.
        case concat(axis: Int = 1)
        /// The element-wise sum of the inputs, all of one shape (a residual connection).
        case add
    }

    public struct Node {
        public let name: String
        public let operation: Operation
        /// The nodes whose outputs this one takes; empty: the node before it (the graph's input
        /// for the first node).
        public let inputs: [String]

        public init(_ name: String, _ operation: Operation, inputs: [String] = []) {
            self.name = name
            self.operation = operation
            self.inputs = inputs
        }
    }

    /// A graph that cannot be wired: a name used twice, an input that names no earlier node, a
    /// merge with one input.
    public struct WiringError: Error, CustomStringConvertible, Equatable {
        /// The index of the node at fault in the list given.
        public let node: Int
        public let message: String
        public var description: String { message }
    }

    /// The name by which nodes refer to the graph's own input.
    public static let inputName = "input"

    public let nodes: [Node]
    /// Each node's inputs as positions in ``nodes`` (-1: the graph's input).
    private let sources: [[Int]]
    /// The node whose output is the graph's.
    public let outputIndex: Int

    /// - Parameters:
    ///   - nodes: the graph's nodes, in the order they run.
    ///   - output: the node whose output the graph returns; nil: the last.
    public init(_ nodes: [Node], output: String? = nil) throws {
        var index: [String: Int] = [:]
        var sources: [[Int]] = []
        for (i, node) in nodes.enumerated() {
            guard !node.name.isEmpty, node.name != Self.inputName, !node.name.contains("."), index[node.name] == nil else {
                let why =
                    node.name.isEmpty
                    ? "has no name" : node.name.contains(".") ? "has a dot in its name" : "reuses the name '\(node.name)'"
                throw WiringError(node: i, message: "layer \(i) \(why)")
            }
            let names = node.inputs.isEmpty ? [i == 0 ? Self.inputName : nodes[i - 1].name] : node.inputs
            var resolved: [Int] = []
            for name in names {
                if name == Self.inputName {
                    resolved.append(-1)
                } else if let j = index[name] {
                    resolved.append(j)
                } else {
                    let later = nodes.indices.contains { $0 > i && nodes[$0].name == name }
                    throw WiringError(
                        node: i,
                        message: "layer '\(node.name)' takes input '\(name)', "
                            + (later
                                ? "a layer that comes after it (inputs must come before)"
                                : "but no layer has that name (known: \(([Self.inputName] + nodes[..<i].map(\.name)).joined(separator: ", ")))")
                    )
                }
            }
            switch node.operation {
            case .layer:
                guard resolved.count == 1 else {
                    throw WiringError(node: i, message: "layer '\(node.name)' takes one input, given \(resolved.count)")
                }
            case .concat, .add:
                guard resolved.count >= 2 else {
                    throw WiringError(node: i, message: "'\(node.name)' merges two or more inputs, given \(resolved.count)")
                }
            }
            index[node.name] = i
            sources.append(resolved)
        }
        guard !nodes.isEmpty else { throw WiringError(node: 0, message: "a graph needs at least one layer") }
        if let output {
            guard let o = index[output] else { throw WiringError(node: nodes.count - 1, message: "no layer named '\(output)' to output") }
            outputIndex = o
        } else {
            outputIndex = nodes.count - 1
        }
        self.nodes = nodes
        self.sources = sources
        super.init()
    }

    public override func forward(_ input: Tensor) -> Tensor {
        var outputs: [Tensor?] = Array(repeating: nil, count: outputIndex + 1)
        // How many later nodes still read each output, so each is released after its last use.
        var readers = [Int](repeating: 0, count: outputIndex + 1)
        for s in sources[...outputIndex] { for j in s where j >= 0 { readers[j] += 1 } }
        for i in 0...outputIndex {
            let inputs = sources[i].map { j -> Tensor in
                guard j >= 0 else { return input }
                defer {
                    readers[j] -= 1
                    if readers[j] == 0 && j != outputIndex { outputs[j] = nil }
                }
                return outputs[j]!
            }
            outputs[i] = apply(nodes[i], inputs)
        }
        return outputs[outputIndex]!
    }

    private func apply(_ node: Node, _ inputs: [Tensor]) -> Tensor {
        switch node.operation {
        case .layer(let module): return module(inputs[0])
        case .concat(let axis):
            let a = axis < 0 ? axis + inputs[0].rank : axis
            for (k, t) in inputs.enumerated() {
                let fits = t.rank == inputs[0].rank && (0..<t.rank).allSatisfy { $0 == a || t.shape[$0] == inputs[0].shape[$0] }
                precondition(fits, "'\(node.name)' (concat axis \(axis)): input \(k) has shape \(t.shape), input 0 \(inputs[0].shape)")
            }
            return Tensor.concatenate(inputs, alongAxis: axis)
        case .add:
            for (k, t) in inputs.enumerated() {
                precondition(
                    t.shape == inputs[0].shape, "'\(node.name)' (add): input \(k) has shape \(t.shape), input 0 \(inputs[0].shape)")
            }
            return inputs.dropFirst().reduce(inputs[0], +)
        }
    }

    /// The per-sample output shape of every node up to the output, in order; the first that
    /// cannot flow throws a ``ShapeError`` whose path is that node's name.
    public func nodeShapes(forInput shape: [Int]) throws -> [[Int]] {
        var shapes: [[Int]] = []
        for i in 0...outputIndex {
            let inputs = sources[i].map { $0 < 0 ? shape : shapes[$0] }
            shapes.append(try Self.outputShape(of: nodes[i], inputs: inputs))
        }
        return shapes
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        try nodeShapes(forInput: shape)[outputIndex]
    }

    /// A node's per-sample output shape for per-sample inputs of `inputs`, or a ``ShapeError``
    /// whose path starts with the node's name.
    public static func outputShape(of node: Node, inputs: [[Int]]) throws -> [Int] {
        func fail(_ message: String, _ layer: String) -> ShapeError { ShapeError(path: node.name, layer: layer, message: message) }
        switch node.operation {
        case .layer(let module):
            return try module.outputShape(of: module, named: node.name, forInput: inputs[0])
        case .add:
            for (k, s) in inputs.enumerated() where s != inputs[0] {
                throw fail(
                    "input \(k) (\(node.inputs[safe: k] ?? "")) gives \(ShapeError.text(s)), input 0 (\(node.inputs[safe: 0] ?? "")) "
                        + "\(ShapeError.text(inputs[0])); they must match to be added", "add")
            }
            return inputs[0]
        case .concat(let axis):
            // `axis` counts the batch axis; the shapes here leave it out.
            let a = (axis < 0 ? axis + inputs[0].count + 1 : axis) - 1
            guard a >= 0, a < inputs[0].count else {
                throw fail("axis \(axis) is not a sample axis of \(ShapeError.text(inputs[0]))", "concat(axis \(axis))")
            }
            var result = inputs[0]
            for (k, s) in inputs.enumerated().dropFirst() {
                guard s.count == inputs[0].count, s.indices.allSatisfy({ $0 == a || s[$0] == inputs[0][$0] }) else {
                    throw fail(
                        "input \(k) (\(node.inputs[safe: k] ?? "")) gives \(ShapeError.text(s)), input 0 (\(node.inputs[safe: 0] ?? "")) "
                            + "\(ShapeError.text(inputs[0])); only axis \(axis) may differ", "concat(axis \(axis))")
                }
                result[a] += s[a]
            }
            return result
        }
    }

    public override var children: [(String, Module)] {
        nodes.compactMap { node in
            if case .layer(let module) = node.operation { return (node.name, module) }
            return nil
        }
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
