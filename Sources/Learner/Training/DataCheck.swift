import Foundation

/// Checks that data fits the model and the loss, so that a mismatch the user can cause (a last
/// layer narrower than the classes, an input shape the layers cannot take, a label outside the
/// classes, a NaN in the inputs) is a thrown ``LearnerError`` naming the data, the record and
/// the layer, never a trap inside an op. `fit` checks each data set before any step (data held
/// in memory whole, other sources by their first batch), then each batch it was not sure of as
/// it trains.
extension SupervisedLearner {
    /// Checks `source` against the model and the loss before training or evaluating on it:
    /// its sample shape through every layer (``Module/outputShape(forInput:)``) and its labels
    /// against the loss. Data held in memory has every sample checked (its labels, and its inputs
    /// with ``TrainingOptions/checksInputsAreFinite``); the package's other sources have their
    /// first batch read and checked; a user's own source is not asked for an extra pass: its
    /// batches are checked as they arrive. Returns whether every sample was checked (then its
    /// batches need no check of their own).
    @discardableResult
    public func checkData(_ source: any DataSource, batchSize: Int = 32) throws -> Bool {
        try checkData(source, batchSize: batchSize, replica: nil)
    }

    /// ``checkData(_:batchSize:)`` of a data-parallel replica's share of the first batch.
    func checkData(_ source: any DataSource, batchSize: Int, replica: ReplicaShare?) throws -> Bool {
        if let data = source as? InMemoryDataset ?? (source as? BalancedDataset)?.data {
            try checkEverySample(data, description: source.dataDescription)
            return true
        }
        guard source is ImageDataSource || source is TensorDataSource || source is RecordStreamDataset else { return false }
        let stream = try source.batches(
            BatchRequest(
                epoch: 1, batchSize: Swift.max(batchSize, 1), training: false, seed: seed,
                replica: source.readsReplicaShares ? replica : nil, batchLimit: 1))
        if let batch = try stream.next() {
            try checkBatch(batch, data: source.dataDescription) { "sample \($0) of the first batch of \(source.dataDescription)" }
        }
        return false
    }

    /// Every label of `data` against the loss, and with ``TrainingOptions/checksInputsAreFinite``
    /// every input value, each sample named by its record and shard.
    private func checkEverySample(_ data: InMemoryDataset, description: String) throws {
        guard data.count > 0 else { return }
        let shape = try outputShape(forSample: [data.featureSize], data: description)
        try data.labels.withUnsafeBufferPointer { labels in
            try loss.checkLabels(labels, perSample: data.labelSize, outputShape: shape) { data.location(ofSample: $0) }
        }
        try checkMetrics(outputShape: shape, labelsPerSample: data.labelSize, data: description)
        if model.checksSamples {
            // In chunks, so the check never holds a second copy of the data.
            let chunk = 4096
            for start in stride(from: 0, to: data.count, by: chunk) {
                let end = Swift.min(data.count, start + chunk)
                let inputs = Tensor(
                    shape: [end - start, data.featureSize],
                    scalars: Array(data.inputs[(start * data.featureSize)..<(end * data.featureSize)]))
                if let (i, reason) = model.firstInvalidSample(inputs) {
                    throw LearnerError.invalidArgument("\(data.location(ofSample: start + i)): \(reason)")
                }
            }
        }
        if options.checksInputsAreFinite, let i = data.inputs.firstIndex(where: { !$0.isFinite }) {
            throw LearnerError.nonFiniteInput(
                value: data.inputs[i], location: "\(data.location(ofSample: i / data.featureSize)) (value \(i % data.featureSize))")
        }
    }

    /// The samples a caller hands a training entry point (`trainStep`, `trainOnBatch`,
    /// `train(data:target:)`, `trainFromHost`) as a checked batch: as many labels and weights as
    /// inputs, then ``checkBatch(_:data:locate:)``. `caller` names the entry point in errors.
    func checkedBatch(inputs: Tensor, labels: Tensor, sampleWeights: Tensor? = nil, caller: String) throws -> DataBatch {
        let count = inputs.shape.first ?? 0
        guard labels.shape.first == count, sampleWeights.map({ $0.scalarCount == count }) ?? true else {
            throw LearnerError.invalidArgument(
                "\(caller): inputs \(inputs.shape), labels \(labels.shape) and sample weights \(sampleWeights?.shape ?? []) "
                    + "must count the same samples")
        }
        let batch = DataBatch(inputs: inputs, labels: labels, sampleWeights: sampleWeights)
        try checkBatch(batch, data: "the batch given to \(caller)") { "sample \($0) of the batch given to \(caller)" }
        return batch
    }

    /// Checks one batch (held on the host) before it is trained on or evaluated: its sample
    /// shape, its labels and, with ``TrainingOptions/checksInputsAreFinite``, its inputs.
    /// `locate` names sample `i` of the batch in errors.
    func checkBatch(_ batch: DataBatch, data: String, locate: (Int) -> String) throws {
        guard batch.count > 0 else { return }
        let shape = try outputShape(forSample: Array(batch.inputs.shape.dropFirst()), data: data)
        // Labels already on a device come back for the check (a copy of one value per sample),
        // so that a bad one is named before the step, as for labels on the host.
        let labels = batch.labels.device == .cpu ? batch.labels : batch.labels.to(.cpu)
        let perSample = labels.scalarCount / batch.count
        try withExtendedLifetime(labels.storage) {
            try loss.checkLabels(UnsafeBufferPointer(labels.storage.buffer), perSample: perSample, outputShape: shape, locate: locate)
        }
        try checkMetrics(outputShape: shape, labelsPerSample: perSample, data: data)
        if model.checksSamples, let (i, reason) = model.firstInvalidSample(batch.inputs) {
            throw LearnerError.invalidArgument("\(locate(i)): \(reason)")
        }
        if options.checksInputsAreFinite && batch.inputs.device == .cpu {
            let perSample = batch.inputs.scalarCount / batch.count
            try withExtendedLifetime(batch.inputs.storage) {
                let values = UnsafeBufferPointer(batch.inputs.storage.buffer)
                if let i = values.firstIndex(where: { !$0.isFinite }) {
                    throw LearnerError.nonFiniteInput(value: values[i], location: "\(locate(i / perSample)) (value \(i % perSample))")
                }
            }
        }
    }

    /// Throws the first of the learner's metrics that cannot measure these outputs and labels
    /// (``Metric/problem(outputShape:labelsPerSample:)``), naming it and the data.
    func checkMetrics(outputShape: [Int], labelsPerSample: Int, data: String) throws {
        for metric in metrics {
            if let problem = metric.problem(outputShape: outputShape, labelsPerSample: labelsPerSample) {
                throw LearnerError.invalidArgument("metric '\(metric.name)' cannot measure \(data): \(problem)")
            }
        }
    }

    /// The model's per-sample output shape for per-sample inputs of `sample`, inferred once per
    /// input shape.
    func outputShape(forSample sample: [Int], data: String) throws -> [Int] {
        if let known = inferredShapes[sample] { return known }
        do {
            let shape = try model.outputShape(forInput: sample)
            inferredShapes[sample] = shape
            return shape
        } catch let error as ShapeError {
            throw LearnerError.shapeMismatch(data: data, sampleShape: sample, error: error)
        }
    }
}

extension Loss {
    /// Throws unless `labels` (`perSample` values per sample) fit this loss for model outputs of
    /// `outputShape` per sample: one class index in 0..<classes (or the ignored label) per
    /// sample, or per pixel for `[C, H, W]` outputs, for class-index losses; as many targets
    /// as outputs otherwise. `locate` names sample `i` in errors.
    func checkLabels(
        _ labels: UnsafeBufferPointer<Float>, perSample: Int, outputShape: [Int], locate: (Int) -> String
    ) throws {
        let outputs = outputShape.reduce(1, *)
        if let problem = function.problem(withOutputShape: outputShape) { throw LearnerError.labelMismatch(problem) }
        switch target {
        case .classIndices(let ignored):
            let pixels = outputShape.count == 3 ? outputShape[1] * outputShape[2] : 1
            guard outputShape.count == 1 || outputShape.count == 3 else {
                throw LearnerError.labelMismatch(
                    "\(name) needs [classes] (or [classes, height, width]) outputs per sample; the model gives "
                        + ShapeError.text(outputShape))
            }
            guard perSample == pixels else {
                throw LearnerError.labelMismatch(
                    pixels == 1
                        ? "\(name) takes one class index per sample, but \(locate(0)) has \(perSample) label values "
                            + "(multi-hot labels need mode multi_label, a sigmoid cross-entropy)"
                        : "\(name) takes one class index per pixel (\(outputShape[1])×\(outputShape[2]) = \(pixels)), but "
                            + "\(locate(0)) has \(perSample) label values")
            }
            let classes = outputShape[0]
            for (i, label) in labels.enumerated() where !(label >= 0 && label < Float(classes) && label.rounded() == label) {
                if let ignored, label == Float(ignored) { continue }
                throw LearnerError.labelOutOfRange(label: label, classes: classes, location: locate(i / perSample))
            }
        case .binary, .values:
            guard perSample == outputs else {
                throw LearnerError.labelMismatch(
                    "\(locate(0)) has \(perSample) label value\(perSample == 1 ? "" : "s"), but the model gives \(outputs) "
                        + "output\(outputs == 1 ? "" : "s") per sample \(ShapeError.text(outputShape)): the loss compares them one to one")
            }
            if let i = labels.firstIndex(where: { !$0.isFinite }) {
                throw LearnerError.labelMismatch("\(locate(i / perSample)) has the label value \(labels[i])")
            }
        }
    }
}
