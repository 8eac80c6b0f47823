// Trains a small MLP on the digits data set with a layer, a loss and a metric written here, from
// the library's public API alone, and checks that it learned.
// Usage: Consumer [DATA_ROOT]   (DATA_ROOT holds train/ and val/; default Data/digits)
import Foundation
import Learner

let dataRoot = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Data/digits"

/// A layer of our own: a learned scale per feature (starting at 1), saved as `gain`.
final class FeatureGain: Module {
    let gain: Parameter

    init(features: Int) {
        gain = Parameter(Tensor.ones([features]))
        super.init()
    }

    override func forward(_ input: Tensor) -> Tensor { input * gain.value }
    override func outputShape(forInput shape: [Int]) throws -> [Int] { shape }
    override var localParameters: [(String, Parameter)] { [("gain", gain)] }
}

/// A loss of our own: cross-entropy plus a squared-hinge margin term, from public tensor ops.
struct MarginCrossEntropy: LossFunction {
    var name: String { "margin_cross_entropy" }
    var target: LossTarget { .classIndices() }

    func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
        let (n, c) = (predictions.shape[0], predictions.shape[1])
        var onehot = [Float](repeating: 0, count: n * c)
        for (i, label) in labels.scalars.enumerated() { onehot[i * c + Int(label)] = 1 }
        let mask = Tensor(shape: [n, c], scalars: onehot)
        let crossEntropy = (mask * predictions.logSoftmax()).sum() * (-1 / Float(n))
        let margins = (predictions - (predictions * mask).sum(alongAxis: 1, keepingDimensions: true) + 1) * (1 - mask)
        let hinge = (margins * margins.greater(Tensor(repeating: 0, shape: []))).squared().sum() * (1 / Float(n))
        return crossEntropy + hinge * 0.1
    }
}

/// A metric of our own: the mean probability the model gives the true class.
struct TrueClassProbability: Metric {
    var name: String { "true_class_probability" }
    private var sum = 0.0
    private var count = 0

    mutating func update(outputs: Tensor, labels: Tensor) {
        let probabilities = outputs.softmax().scalars, classes = outputs.shape[1]
        for (i, label) in labels.scalars.enumerated() { sum += Double(probabilities[i * classes + Int(label)]) }
        count += labels.scalarCount
    }

    func values() -> [String: Float] { [name: count == 0 ? 0 : Float(sum / Double(count))] }

    mutating func reset() {
        sum = 0
        count = 0
    }
}

let model = Sequential([
    FeatureGain(features: 64),
    Dense(inputSize: 64, units: 128, activation: .relu),
    Dropout(rate: 0.1),
    Dense(inputSize: 128, units: 10),
])
let learner = SupervisedLearner(
    model: model,
    loss: Loss(MarginCrossEntropy()),
    optimizer: Adam(learningRate: 1e-3),
    seed: 7
)
learner.metrics = [Accuracy(), TrueClassProbability()]

do {
    let history = try learner.fit(
        dataDir: dataRoot + "/train",
        featureKeys: FeatureKeys(input: "image", label: "label"),
        startEpoch: 1,
        validationDir: dataRoot + "/val",
        epochs: 20,
        batchSize: 32
    )
    guard let last = history.epochs.last, let accuracy = last.validationAccuracy,
        let probability = last.validationMetrics["true_class_probability"]
    else {
        FileHandle.standardError.write(Data("Consumer: no validation accuracy or custom metric in the history\n".utf8))
        exit(1)
    }
    print("final validation accuracy: \(accuracy), true-class probability: \(probability) (epoch \(last.epoch))")
    if accuracy < 0.9 || probability < 0.5 {
        FileHandle.standardError.write(Data("Consumer: validation accuracy \(accuracy) is below 0.9 or \(probability) below 0.5\n".utf8))
        exit(1)
    }
} catch {
    FileHandle.standardError.write(Data("Consumer: training failed: \(error)\n".utf8))
    exit(1)
}
