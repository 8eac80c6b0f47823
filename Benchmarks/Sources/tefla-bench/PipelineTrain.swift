// tefla-bench pipeline-train DIR [--batch B] [--steps N] [--warmup N] [--workers W] [--rounds R]
//
// ResNet-18 training on the CPU fed by the image pipeline (decode, random resized crop 224, flip,
// normalise on W worker threads) against the same steps fed from tensors already in memory: the
// end-to-end images/s, and how much of each step was spent waiting for the next batch.
import Foundation
import Learner

/// Wraps a source: adds up the time its batches' `next()` calls take, and folds the labels
/// into `classes` classes so any data set fits the 10-class head.
private final class TimedSource: DataSource {
    let inner: any DataSource
    let classes: Int
    private(set) var waits: [Double] = []

    init(_ inner: any DataSource, classes: Int) {
        self.inner = inner
        self.classes = classes
    }

    var sampleCount: Int? { inner.sampleCount }
    var dataDescription: String { inner.dataDescription }

    func batches(_ request: BatchRequest) throws -> any BatchStream {
        Stream(try inner.batches(request), owner: self)
    }

    final class Stream: BatchStream {
        let inner: any BatchStream
        let owner: TimedSource

        init(_ inner: any BatchStream, owner: TimedSource) {
            self.inner = inner
            self.owner = owner
        }

        func next() throws -> DataBatch? {
            let start = now()
            defer { owner.waits.append(now() - start) }
            guard let batch = try inner.next() else { return nil }
            let folded = batch.labels.scalars.map { Float(Int($0) % owner.classes) }
            return DataBatch(inputs: batch.inputs, labels: Tensor(shape: batch.labels.shape, scalars: folded))
        }
    }
}

/// Records when each step ends.
private final class StepClock: Callback {
    var ends: [Double] = []
    func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws { ends.append(now()) }
}

func runPipelineTrain(_ o: Options) {
    guard let dir = o.positional.first else { fail("pipeline-train needs a directory of JPEG shards") }
    let size = 224, batch = o.batch == 128 ? 32 : o.batch, steps = o.steps == 50 ? 8 : o.steps
    let warmup = o.warmup == 20 ? 2 : o.warmup, rounds = o.rounds == 5 ? 2 : o.rounds
    var options = ImagePipelineOptions(
        batchSize: batch, height: size, width: size, channels: 3, shuffle: true, workers: o.workers, maxQueueSize: 4,
        keys: FeatureKeys(input: "image/encoded", label: "image/class/label"),
        transform: Compose([
            RandomResizedCrop(height: size, width: size), RandomHorizontalFlip(),
            Normalize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]),
        ]))
    options.jpegDCT = .integerFast
    do {
        let images = try ImageDataSource(files: try Shards.resolve(dir), options: options)
        let classes = 10
        func train(_ source: any DataSource) throws -> (perStep: [Double], waits: [Double]) {
            let timed = TimedSource(source, classes: classes)
            let learner = SupervisedLearner(
                model: Zoo.resnet18(classes: classes), loss: .softmaxCrossEntropy(),
                optimizer: SGD(learningRate: 0.01, momentum: 0.9), seed: 1)
            learner.options.verbose = 0
            let clock = StepClock()
            learner.callbacks = [clock]
            let start = now()
            try learner.fit(timed, epochs: 1, batchSize: batch, iterationsPerEpoch: warmup + steps)
            let ends = [start] + clock.ends
            let perStep = (warmup + 1..<ends.count).map { ends[$0] - ends[$0 - 1] }
            // The waits of the timed steps: one next() per step; fit's first-batch check comes first.
            return (perStep, Array(timed.waits.suffix(steps)))
        }
        // The same images, decoded ahead into memory: as many distinct batches as the run takes,
        // so both sides train on the same images.
        let ahead = try decodedBatches(images, count: warmup + steps)
        let repeated = TensorDataSource(
            inputs: Tensor.concatenate(ahead.map(\.inputs), alongAxis: 0),
            labels: Tensor.concatenate(ahead.map(\.labels), alongAxis: 0))
        // Rounds alternate which side runs first, so neither always gets the colder process.
        var memory: (perStep: [Double], waits: [Double]) = ([], []), fed = memory
        for round in 0..<rounds {
            for side in round % 2 == 0 ? [0, 1] : [1, 0] {
                let r = try train(side == 0 ? repeated : images)
                if side == 0 { memory.perStep += r.perStep } else { fed.perStep += r.perStep; fed.waits += r.waits }
            }
        }
        let rate = { (r: (perStep: [Double], waits: [Double])) in Double(batch) / median(r.perStep) }
        let waitShare = fed.waits.reduce(0, +) / fed.perStep.reduce(0, +)
        let line = jsonLine([
            ("bench", "pipeline_train"), ("model", "resnet18"), ("size", size), ("batch", batch), ("steps", steps), ("rounds", rounds),
            ("workers", o.workers), ("threads", o.threads), ("fed_images_per_s", rate(fed)),
            ("memory_images_per_s", rate(memory)), ("ratio", rate(fed) / rate(memory)), ("data_wait_share", waitShare),
            ("median_wait_ms", 1000 * median(fed.waits)),
        ])
        if o.json {
            print(line)
        } else {
            print(
                String(
                    format:
                        "ResNet-18 224, batch %d, %d timed steps × %d rounds, %d pipeline workers, %d compute threads:\n"
                        + "  fed by the pipeline: %.2f images/s (median step %.2f s); waiting for data: %.1f%% of the steps (median wait %.1f ms)\n"
                        + "  from tensors in memory: %.2f images/s (median step %.2f s)\n  ratio: %.3f",
                    batch, steps, rounds, o.workers, o.threads, rate(fed), median(fed.perStep), 100 * waitShare,
                    1000 * median(fed.waits), rate(memory), median(memory.perStep), rate(fed) / rate(memory)))
        }
    } catch {
        fail("pipeline-train: \(error)")
    }
}

/// The first `count` training batches of `source`, decoded and augmented.
private func decodedBatches(_ source: ImageDataSource, count: Int) throws -> [DataBatch] {
    let stream = try source.batches(
        BatchRequest(epoch: 1, batchSize: source.options.batchSize, training: true, seed: 1, batchLimit: count))
    var batches: [DataBatch] = []
    while let batch = try stream.next() { batches.append(batch) }
    guard batches.count == count else { fail("pipeline-train: the data set holds fewer than \(count) batches") }
    return batches
}
