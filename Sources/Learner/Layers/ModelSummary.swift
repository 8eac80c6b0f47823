extension Module {
    /// A Keras-style table of the model for samples of `inputShape` (the batch axis left out):
    /// each top-level layer's name, type, output shape and parameter count, then the totals
    /// (parameters as torchvision counts them; buffers such as running statistics apart).
    ///
    /// Shapes come from shape inference, not a forward pass, so a ResNet-50 at 224×224 costs
    /// nothing to describe. A shape that cannot flow is a ``ShapeError`` naming the layer. A
    /// ``LayerGraph`` lists its nodes with the layers each takes its inputs from; another model
    /// whose children are not a chain is one row. Layers declared by their outputs alone are
    /// built for `inputShape` first.
    public func summary(inputShape: [Int]) throws -> String {
        var rows: [(name: String, type: String, shape: [Int], parameters: Int)] = []
        var shape = inputShape
        let output = try outputShape(forInput: inputShape)
        var chained = !children.isEmpty
        if let graph = self as? LayerGraph {
            let shapes = try graph.nodeShapes(forInput: inputShape)
            for (node, shape) in zip(graph.nodes, shapes) {
                let from = node.inputs.isEmpty ? "" : " ← " + node.inputs.joined(separator: ", ")
                switch node.operation {
                case .layer(let layer): rows.append((node.name, String(describing: type(of: layer)) + from, shape, layer.parameterCount))
                case .concat(let axis): rows.append((node.name, "concat(axis \(axis))" + from, shape, 0))
                case .add: rows.append((node.name, "add" + from, shape, 0))
                }
            }
            chained = false
        }
        for (name, layer) in children where !(self is LayerGraph) {
            do {
                shape = try outputShape(of: layer, named: name, forInput: shape)
            } catch is ShapeError where !(self is Sequential) {
                chained = false  // the children are not applied in order
                break
            }
            rows.append((name, String(describing: type(of: layer)), shape, layer.parameterCount))
        }
        if !(self is LayerGraph) && (!chained || rows.last?.shape != output) {
            // Not a chain of its children (or no children): the model is one row.
            rows = [("model", String(describing: type(of: self)), output, parameterCount)]
        }
        func text(_ shape: [Int]) -> String { "[None" + shape.map { ", \($0)" }.joined() + "]" }
        let header = ("Layer", "Type", "Output shape", "Params")
        let widths = [
            max(5, rows.map(\.name.count).max() ?? 0), max(4, rows.map(\.type.count).max() ?? 0),
            max(12, rows.map { text($0.shape).count }.max() ?? 0),
        ]
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        var lines = [pad(header.0, widths[0]) + "  " + pad(header.1, widths[1]) + "  " + pad(header.2, widths[2]) + "  " + header.3]
        lines.append(String(repeating: "-", count: lines[0].count + 6))
        for r in rows {
            lines.append(
                pad(r.name, widths[0]) + "  " + pad(r.type, widths[1]) + "  " + pad(text(r.shape), widths[2]) + "  " + String(r.parameters))
        }
        let trainable = parameterCount
        let buffers = namedBuffers.reduce(0) { $0 + $1.parameter.value.scalarCount }
        lines.append(String(repeating: "-", count: lines[0].count + 6))
        lines.append("Total params: \(trainable + buffers)")
        lines.append("Trainable params: \(trainable)")
        lines.append("Non-trainable params: \(buffers)")
        return lines.joined(separator: "\n")
    }
}
