extension Tensor {
    /// NCHW images mirrored left–right (the last axis reversed), on the tensor's own device.
    public func flippedHorizontally() -> Tensor {
        precondition(rank >= 2, "flippedHorizontally needs rows to mirror, got shape \(shape)")
        let width = shape[rank - 1]
        let rows = reshaped(to: [scalarCount / Swift.max(width, 1), width]).transposed()
        return rows.gatherRows(Array((0..<width).reversed())).transposed().reshaped(to: shape)
    }
}

extension SupervisedLearner {
    /// The model's outputs for `inputs` in evaluation mode, averaged with those of the mirrored
    /// images when ``TrainingOptions/testTimeFlip`` is on (fastai's TTA with flips): probabilities are averaged
    /// for classification and multi-label (returned as logits of the average, so the losses and
    /// metrics read them as before), values for regression. The model computes in
    /// ``TrainingOptions/precision``, as in training.
    func evaluationOutputs(_ inputs: Tensor) -> Tensor {
        withComputePrecision(options.precision) { flipAveragedOutputs(inputs) }
    }

    private func flipAveragedOutputs(_ inputs: Tensor) -> Tensor {
        let plain = model(inputs)
        guard options.testTimeFlip, inputs.rank == 4 else { return plain }
        let mirrored = model(inputs.flippedHorizontally())
        switch loss.target {
        case .classIndices where plain.rank == 2:
            return ((plain.softmax() + mirrored.softmax()) * 0.5).log()
        case .binary:
            let p = (plain.sigmoid() + mirrored.sigmoid()) * 0.5
            return (p / (1 - p)).log()
        case .classIndices, .values:
            return (plain + mirrored) * 0.5
        }
    }
}
