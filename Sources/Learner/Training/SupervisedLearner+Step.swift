/// One optimizer step: what every training path (``SupervisedLearner/fit(_:validation:startEpoch:epochs:batchSize:dropLastBatch:iterationsPerEpoch:)``,
/// ``SupervisedLearner/trainStep(inputs:labels:sampleWeights:)``, the host-tensor passes and
/// the LR finder) runs per batch. The schedule, clipping and the weight average belong to the
/// step, not to `fit`'s callbacks, so that every path applies them alike.
extension SupervisedLearner {
    /// One optimizer step on a batch; returns the batch loss and the model's outputs.
    ///
    /// Applies the schedule (for step index `globalStep`), clips the gradients and updates the
    /// weight average when those are configured. With a ``gradientSynchronizer`` every rank must
    /// call it with its own share of the global batch (`fit` does that). Throws what the
    /// replicas' gradient exchange throws.
    @discardableResult
    public func trainStep(inputs: Tensor, labels: Tensor, sampleWeights: Tensor? = nil) throws -> (loss: Float, outputs: Tensor) {
        let batch = try checkedBatch(inputs: inputs, labels: labels, sampleWeights: sampleWeights, caller: "trainStep")
        let (loss, outputs) = try optimizerStep(batch.to(device), share: 1, sampleOffset: 0)
        return (loss.scalar, outputs)
    }

    /// The schedule steps follow: the one `fit` fitted to its run while it runs, else the options'.
    public var activeSchedule: (any LearningRateSchedule)? { run?.schedule ?? options.schedule }

    /// Sets the optimizer's learning rate (and cycled momentum) to the schedule's values at `step`.
    public func applySchedule(step: Int) {
        guard let schedule = activeSchedule else { return }
        optimizer.learningRate = schedule.learningRate(at: step)
        if let m = schedule.momentum(at: step) { optimizer.scheduledMomentum = m }
    }

    /// The momentum the schedule sets for the next step, nil without a schedule that cycles it.
    public var scheduledMomentum: Float? {
        activeSchedule?.momentum(at: Int(globalStep)) == nil ? nil : optimizer.scheduledMomentum
    }

    /// One optimizer step on a global batch: this rank's share goes to the device (with its class
    /// weights), and its loss and outputs wait in `progress` to be read back.
    func trainGlobalBatch(_ batch: DataBatch, into progress: inout EpochProgress) throws {
        var n = batch.count
        var local = batch, share: Float = 1, offset = 0
        if let part = batch.share, let sync = gradientSynchronizer, sync.worldSize > 1 {
            // The source read this rank's share alone.
            n = part.globalCount
            if n < sync.worldSize && synchronizesBatchNorm { return }
            share = Float(batch.count) / Float(max(n, 1))
            offset = part.offset
        } else if let sync = gradientSynchronizer, sync.worldSize > 1 {
            // Synchronized batch norm needs samples on every replica (each one's layers reduce
            // together); a last batch smaller than the replica count is left out by all of them.
            if n < sync.worldSize && synchronizesBatchNorm { return }
            // Contiguous shares, floor-split: rank r takes samples r·n/N ..< (r+1)·n/N.
            let range = (sync.rank * n / sync.worldSize)..<((sync.rank + 1) * n / sync.worldSize)
            local = batch.slice(range)
            share = Float(range.count) / Float(max(n, 1))
            offset = range.lowerBound
        }
        local = withClassWeights(local).to(device)
        var (value, outputs) = try optimizerStep(local, share: share, sampleOffset: offset)
        if let sync = gradientSynchronizer, sync.worldSize > 1 {
            value = Tensor(shape: [], scalars: [Float(try sync.allReduceSum([Double(value.scalar)])[0])])
        }
        progress.add(loss: value, samples: n, outputs: local.count > 0 ? outputs : nil, labels: local.labels)
    }

    /// `batch` with each sample's loss weighted by its class's ``TrainingOptions/classWeights``
    /// entry (times any weight it already has).
    func withClassWeights(_ batch: DataBatch) -> DataBatch {
        guard let classWeights = options.classWeights, batch.labels.rank == 1, batch.count > 0 else { return batch }
        let labels = batch.labels.scalars
        var weights = labels.map { label -> Float in
            let c = Int(label)
            return c >= 0 && c < classWeights.count ? classWeights[c] : 1
        }
        if let existing = batch.sampleWeights?.scalars { for i in weights.indices { weights[i] *= existing[i] } }
        return DataBatch(
            inputs: batch.inputs, labels: batch.labels,
            sampleWeights: Tensor(shape: [batch.count], scalars: weights).to(batch.labels.device))
    }

    /// The step behind ``trainStep(inputs:labels:sampleWeights:)`` and ``fit``: `batch` (on the
    /// device) is this rank's part of the global batch, `share` its fraction of the global
    /// batch's samples (the loss is scaled by it so gradients sum over ranks to the global
    /// mean's), `sampleOffset` the global position of its first sample (the key of per-sample
    /// random draws). Returns the scaled loss (whose sum over ranks is the global batch's loss),
    /// still on the device, and the outputs.
    func optimizerStep(_ batch: DataBatch, share: Float, sampleOffset: Int) throws -> (loss: Tensor, outputs: Tensor) {
        try withComputePrecision(options.precision) { try precisionStep(batch, share: share, sampleOffset: sampleOffset) }
    }

    /// The loss scaler of fp16 training (``TrainingOptions/lossScaling``), made at the first fp16
    /// step or restore; nil in other precisions.
    func lossScalerForStep() -> LossScaler? {
        guard options.precision == .fp16 else { return nil }
        if lossScaler?.configuration != options.lossScaling { lossScaler = LossScaler(options.lossScaling) }
        return lossScaler
    }

    private func precisionStep(_ batch: DataBatch, share: Float, sampleOffset: Int) throws -> (loss: Tensor, outputs: Tensor) {
        // A device failure in the work queued so far ends training here (CUDAContext says why).
        try CUDAContext.throwIfFailed()
        if let schedule = activeSchedule, schedule.needsRunLength {
            throw LearnerError.invalidArgument(
                "\(type(of: schedule)) has no totalSteps: give it one to step outside fit, or let fit set it from the run's length")
        }
        applySchedule(step: Int(globalStep))
        globalStep += 1
        model.train()
        model.setRandomKey(seed: seed, step: globalStep, sampleOffset: sampleOffset)
        let parameters = model.parameters.filter { !$0.isFrozen }
        // fp16: gradients are of the loss times the scale, divided by it in finishStep.
        let scaler = lossScalerForStep()
        let gradientScale = scaler?.scale ?? 1
        if synchronizesBatchNorm, let sync = gradientSynchronizer, sync.worldSize > 1 {
            // The layers' own reductions run inside the passes, between the gradient all-reduce's:
            // the plain path keeps every replica's collectives in one order.
            let (value, outputs, grads) = try ReplicaContext.run(sync) {
                try accumulatedGradients(
                    inputs: batch.inputs, labels: batch.labels, sampleWeights: batch.sampleWeights, parameters: parameters,
                    scale: share, gradientScale: gradientScale)
            }
            for (p, g) in zip(parameters, grads) { p.gradient = g }
            try sync.allReduceGradients(parameters)
            return finishStep(parameters, loss: value, outputs: outputs, scaler: scaler)
        }
        if let overlapped = gradientSynchronizer as? any OverlappedGradientSynchronizer, options.accumulationSteps <= 1, batch.count > 0 {
            // Each gradient bucket's all-reduce starts while the backward pass goes on.
            let outputs = model(batch.inputs)
            var value = try lossValue(outputs, batch.labels, sampleWeights: batch.sampleWeights)
            if share != 1 { value = value * share }
            try overlapped.backward(gradientScale != 1 ? value * gradientScale : value, parameters: parameters)
            return finishStep(parameters, loss: value.detached(), outputs: outputs, scaler: scaler)
        }
        let (value, outputs, grads): (Tensor, Tensor, [Tensor])
        if batch.count == 0 {
            // A rank whose share of a short last batch is empty contributes nothing.
            (value, outputs, grads) = (Tensor.zeros([], on: device), batch.inputs, parameters.map { Tensor.zeros($0.shape, on: device) })
        } else {
            (value, outputs, grads) = try accumulatedGradients(
                inputs: batch.inputs, labels: batch.labels,
                sampleWeights: batch.sampleWeights, parameters: parameters,
                scale: share, gradientScale: gradientScale)
        }
        for (p, g) in zip(parameters, grads) { p.gradient = g }
        try gradientSynchronizer?.allReduceGradients(parameters)
        return finishStep(parameters, loss: value, outputs: outputs, scaler: scaler)
    }

    /// Unscaling (fp16), clipping, the optimizer's update and the weight average, once every
    /// gradient is set (and summed over the replicas, so every replica skips the same steps).
    private func finishStep(_ parameters: [Parameter], loss value: Tensor, outputs: Tensor, scaler: LossScaler?) -> (
        loss: Tensor, outputs: Tensor
    ) {
        if let scaler {
            let finite = scaler.unscale(parameters)
            scaler.update(gradientsFinite: finite)
            guard finite else {
                // GradScaler's rule: no update from gradients that overflowed; the scale backed off.
                for p in parameters { p.gradient = nil }
                note("step \(globalStep): non-finite gradients, step skipped; loss scale now \(scaler.scale)", level: .debug)
                return (value, outputs.detached())
            }
        }
        if let clipValue = options.clipValue { GradientClipping.clipValue(parameters, limit: clipValue) }
        if let clipNorm = options.clipNorm { lastGradientNorm = GradientClipping.clipGlobalNorm(parameters, maxNorm: clipNorm) }
        optimizer.step(parameters)
        for p in parameters { p.gradient = nil }
        ema?.update(model)
        return (value, outputs.detached())
    }

    /// Loss, outputs and gradients of one batch, the loss multiplied by `scale`; with
    /// ``TrainingOptions/accumulationSteps`` k > 1 the batch runs
    /// as k slices whose gradients are summed, each slice's mean loss weighted by its share of
    /// the batch, so the update equals that of the whole batch in one piece (up to rounding and
    /// batch statistics) while activations are held for one slice at a time.
    private func accumulatedGradients(
        inputs: Tensor, labels: Tensor, sampleWeights: Tensor?,
        parameters: [Parameter], scale: Float, gradientScale: Float
    ) throws -> (Tensor, Tensor, [Tensor]) {
        let n = inputs.shape.first ?? 1
        let k = Swift.min(Swift.max(options.accumulationSteps, 1), n)
        if k == 1 {
            let outputs = model(inputs)
            var value = try lossValue(outputs, labels, sampleWeights: sampleWeights)
            if scale != 1 { value = value * scale }
            return (
                value.detached(), outputs, gradients(of: gradientScale != 1 ? value * gradientScale : value, wrt: parameters.map(\.value))
            )
        }
        var total: Tensor?
        var outputs: [Tensor] = []
        var summed: [Tensor] = []
        for part in 0..<k {
            let range = (part * n / k)..<((part + 1) * n / k)
            let out = model(inputs.slice(alongAxis: 0, range).detached())
            let value =
                try lossValue(
                    out, labels.slice(alongAxis: 0, range).detached(),
                    sampleWeights: sampleWeights?.slice(alongAxis: 0, range).detached()) * (scale * Float(range.count) / Float(n))
            let grads = gradients(of: gradientScale != 1 ? value * gradientScale : value, wrt: parameters.map(\.value))
            summed = summed.isEmpty ? grads : withoutGradients { zip(summed, grads).map { $0 + $1 } }
            total = withoutGradients { total.map { $0 + value.detached() } ?? value.detached() }
            outputs.append(out.detached())
        }
        return (total ?? Tensor.zeros([], on: device), Tensor.concatenate(outputs, alongAxis: 0), summed)
    }

    /// The loss of a batch, checked to be one scalar: a user's loss that forgot its reduction
    /// is named, not trained on.
    func lossValue(_ outputs: Tensor, _ labels: Tensor, sampleWeights: Tensor?) throws -> Tensor {
        let value = loss(outputs, labels, sampleWeights: sampleWeights)
        guard value.scalarCount == 1 else {
            throw LearnerError.invalidArgument(
                "the loss '\(loss.name)' gave a tensor of shape \(ShapeError.text(value.shape)) for a batch of \(outputs.shape.first ?? 0): "
                    + "a loss reduces the batch to one scalar (end it with .mean() or .sum())")
        }
        return value.rank == 0 ? value : value.reshaped(to: [])
    }

    /// Whether a layer of the model reduces across replicas (``BatchNorm2D/synchronized``).
    var synchronizesBatchNorm: Bool {
        func any(_ module: Module) -> Bool {
            if let norm = module as? BatchNorm2D, norm.synchronized { return true }
            return module.children.contains { any($0.1) }
        }
        return any(model)
    }
}
