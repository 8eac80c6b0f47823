/// A copy of everything a model computes with: its parameters and its buffers (batch-norm
/// running statistics), PyTorch's `state_dict`. Early stopping keeps the best epoch's, the LR
/// finder the state before its sweep; restoring one puts the model back exactly.
public struct ModuleState {
    /// Copies of every entry of ``Module/namedParametersAndBuffers``, in that order.
    public let values: [Tensor]

    /// Snapshots `module` (copies, so later training leaves them alone).
    public init(of module: Module) {
        values = withoutGradients { module.namedParametersAndBuffers.map { $0.parameter.value.copy() } }
    }

    /// Writes the snapshot back into `module`, which must be the model it was taken of.
    public func restore(into module: Module) {
        let targets = module.namedParametersAndBuffers
        precondition(targets.count == values.count, "ModuleState: \(values.count) tensors for a model with \(targets.count)")
        for (target, value) in zip(targets, values) { target.parameter.assign(value) }
    }
}
