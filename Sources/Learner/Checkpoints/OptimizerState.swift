/// An optimizer's state by parameter name, for checkpoints: the buffers as tensors named
/// `<parameter>.<buffer>` (`0.weight.exp_avg`) and each parameter's update count.
public struct OptimizerState: Equatable {
    public var tensors: [String: SafeTensors.Entry] = [:]
    public var steps: [String: Int] = [:]
    public var stepCount = 0
}

extension Optimizer {
    /// The state of every named parameter that has any.
    public func exportState(_ parameters: [(name: String, parameter: Parameter)]) -> OptimizerState {
        var result = OptimizerState(stepCount: stepCount)
        let names = stateBufferNames
        for (name, p) in parameters {
            let key = ObjectIdentifier(p)
            if let buffers = state[key] {
                for (b, buffer) in buffers.enumerated() {
                    let host = Tensor(shape: p.shape, storage: buffer).to(.cpu)
                    result.tensors["\(name).\(names[b])"] = SafeTensors.Entry(host)
                }
            }
            if let steps = parameterSteps[key] { result.steps[name] = steps }
        }
        return result
    }

    /// Restores state saved by ``exportState(_:)`` onto the parameters with the same names,
    /// on their devices. A buffer whose shape differs from its parameter is refused.
    public func importState(_ saved: OptimizerState, into parameters: [(name: String, parameter: Parameter)], path: String) throws {
        let names = stateBufferNames
        var restored: [ObjectIdentifier: [Storage]] = [:]
        for (name, p) in parameters where saved.steps[name] != nil {
            var buffers: [Storage] = []
            for b in 0..<stateBufferCount {
                let key = "\(name).\(names[b])"
                guard let entry = saved.tensors[key] else { throw CheckpointError.missingTensors(names: [key], path: path) }
                guard entry.shape == p.shape else {
                    throw CheckpointError.shapeMismatch(tensor: key, expected: p.shape, found: entry.shape, path: path)
                }
                buffers.append(entry.tensor.to(p.device).storage)
            }
            restored[ObjectIdentifier(p)] = buffers
        }
        state = restored
        parameterSteps = [:]
        for (name, p) in parameters { if let s = saved.steps[name] { parameterSteps[ObjectIdentifier(p)] = s } }
        stepCount = saved.stepCount
    }
}
