// The program of the article "A custom data source" (Sources/Learner/Learner.docc/CustomDataSource.md):
// every code block of the article appears here verbatim, so the article's code compiles and runs.
// Usage: CustomDataSource
import Foundation
import Learner

/// Points on two rings, generated on demand: sample i is a pure function of (salt, i), so the
/// batches of an epoch depend on the request alone, as `fit` needs for reproducible and
/// resumable runs.
struct RingsSource: DataSource {
    let count: Int
    let salt: UInt64

    var sampleCount: Int? { count }
    var dataDescription: String { "\(count) points on two rings (salt \(salt))" }

    /// Sample `index`: a point on the inner ring (class 0, radius 0.5) or the outer one
    /// (class 1, radius 1.5), with a little noise.
    func sample(_ index: Int) -> (x: Float, y: Float, label: Float) {
        var generator = RandomGenerator(seed: salt &* 0x9E37_79B9 &+ UInt64(index))
        let label: Float = index % 2 == 0 ? 0 : 1
        let radius = (label == 0 ? 0.5 : 1.5) + 0.2 * generator.nextNormal()
        let angle = 2 * Float.pi * generator.nextUniform()
        return (radius * cos(angle), radius * sin(angle), label)
    }

    func batches(_ request: BatchRequest) throws -> any BatchStream {
        // Training passes are shuffled by (seed, epoch, pass); other passes keep the order.
        let order =
            request.training
            ? SupervisedLearner.shuffledOrder(count: count, seed: request.seed, epoch: request.epoch, pass: request.pass)
            : Array(0..<count)
        return RingsStream(
            source: self, order: order, batchSize: request.batchSize,
            batchCount: batchCount(samples: count, batchSize: request.batchSize, dropLastBatch: request.dropLastBatch),
            nextBatch: request.startBatch)
    }
}

/// The batches of one pass, cut from the pass's order of samples.
final class RingsStream: BatchStream {
    let source: RingsSource
    let order: [Int]
    let batchSize: Int
    let batchCount: Int
    private var nextBatch: Int

    init(source: RingsSource, order: [Int], batchSize: Int, batchCount: Int, nextBatch: Int) {
        self.source = source
        self.order = order
        self.batchSize = batchSize
        self.batchCount = batchCount
        self.nextBatch = nextBatch
    }

    func next() throws -> DataBatch? {
        guard nextBatch < batchCount else { return nil }
        let indices = order[(nextBatch * batchSize)..<min((nextBatch + 1) * batchSize, order.count)]
        nextBatch += 1
        var inputs: [Float] = []
        var labels: [Float] = []
        for index in indices {
            let (x, y, label) = source.sample(index)
            inputs += [x, y]
            labels.append(label)
        }
        return DataBatch(inputs: Tensor(shape: [indices.count, 2], scalars: inputs), labels: Tensor(labels))
    }
}

let training = RingsSource(count: 2048, salt: 1)
let validation = RingsSource(count: 512, salt: 2)

let model = Sequential([
    Dense(inputSize: 2, units: 32, activation: .relu, seed: 1),
    Dense(inputSize: 32, units: 32, activation: .relu, seed: 2),
    Dense(inputSize: 32, units: 2, seed: 3),
])
let learner = SupervisedLearner(model: model, mode: .classification, optimizer: Adam(learningRate: 1e-2), seed: 7)
let history = try learner.fit(training, validation: validation, epochs: 5, batchSize: 64)
print("validation accuracy: \(history.lastValidationAccuracy ?? 0)")

let (loss, accuracy) = try learner.evaluate(RingsSource(count: 1000, salt: 3))
print("on new points: loss \(loss), accuracy \(accuracy ?? 0)")

// The same batches for the same request: what a resumed run relies on.
let request = BatchRequest(epoch: 3, batchSize: 64, training: true, seed: 7, startBatch: 5)
let first = try training.batches(request).next()
let again = try training.batches(request).next()
print("batch 5 of epoch 3 is the same both times: \(first?.inputs.scalars == again?.inputs.scalars)")

// The checks of this program (not in the article).
guard (accuracy ?? 0) >= 0.95, let first, let again, first.inputs.scalars == again.inputs.scalars, first.count == 64 else {
    FileHandle.standardError.write(Data("CustomDataSource: accuracy \(accuracy ?? 0), or batches differ\n".utf8))
    exit(1)
}
print("CustomDataSource: ok")
