// The program of the article "A custom loss" (Sources/Learner/Learner.docc/CustomLoss.md):
// every code block of the article appears here verbatim, so the article's code compiles and runs.
// Usage: CustomLoss [DATA_ROOT]   (DATA_ROOT holds train/ and val/; default Data/digits)
import Foundation
import Learner

let dataRoot = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Data/digits"

/// Poly-1 cross-entropy (Leng et al., 2022): cross-entropy plus ε(1 − p_y), p_y the softmax
/// probability of the true class. With ε = 0 it is cross-entropy.
struct PolyOneCrossEntropy: LossFunction {
    var epsilon: Float = 1

    var name: String { "poly1_cross_entropy" }
    var target: LossTarget { .classIndices() }

    func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
        let (n, classes) = (predictions.shape[0], predictions.shape[1])
        // One-hot rows [N, C], made where the predictions are: label i == class c.
        let classIndices = Tensor((0..<classes).map(Float.init)).to(predictions.device).reshaped(to: [1, classes])
        let oneHot = labels.reshaped(to: [n, 1]).equal(classIndices)
        let crossEntropy = -(oneHot * predictions.logSoftmax()).sum(alongAxis: 1)
        let trueClassProbability = (oneHot * predictions.softmax()).sum(alongAxis: 1)
        let perSample = crossEntropy + epsilon * (1 - trueClassProbability)
        guard let sampleWeights else { return perSample.mean() }
        return (perSample * sampleWeights).mean()
    }

    func problem(withOutputShape outputShape: [Int]) -> String? {
        outputShape.count == 1 && outputShape[0] >= 2
            ? nil : "takes one score per class ([classes], at least 2), the model gives \(outputShape)"
    }
}

// ε = 0 is cross-entropy: check the new loss against the built-in one on a small batch.
let scores = Tensor(shape: [3, 4], scalars: [0.5, -1, 2, 0, 1, 1, 1, 1, -2, 0, 0.5, 3])
let labels = Tensor([2, 0, 3])
let ours = PolyOneCrossEntropy(epsilon: 0)(scores, labels, sampleWeights: nil).scalar
let builtIn = Loss.softmaxCrossEntropy()(scores, labels).scalar
print("poly-1 with ε = 0: \(ours), cross-entropy: \(builtIn)")

// Its gradient comes from the autodiff, like any loss written from tensor ops.
let (value, gradient) = valueAndGradient(at: [scores]) { inputs in
    PolyOneCrossEntropy(epsilon: 1)(inputs[0], labels, sampleWeights: nil)
}
print("loss \(value.scalar), gradient of the scores \(gradient[0].shape)")

let model = Sequential([
    Dense(inputSize: 64, units: 64, activation: .relu, seed: 1),
    Dense(inputSize: 64, units: 10, seed: 2),
])
let learner = SupervisedLearner(
    model: model,
    loss: Loss(PolyOneCrossEntropy(epsilon: 1)),
    optimizer: Adam(learningRate: 2e-3),
    seed: 7
)
let history = try learner.fit(
    dataDir: dataRoot + "/train",
    featureKeys: FeatureKeys(input: "image", label: "label"),
    validationDir: dataRoot + "/val",
    epochs: 8,
    batchSize: 32
)

// A loss from a closure: log-cosh for regression, log(cosh(d)) = d + softplus(−2d) − log 2.
let logCosh = Loss(name: "log_cosh", target: .values) { predictions, targets, _ in
    let d = predictions - targets.reshaped(to: predictions.shape)
    return (d + (-2 * d).softplus() - Float(log(2.0))).mean()
}
var generator = RandomGenerator(seed: 3)
let xs = (0..<256).map { _ in generator.nextUniform() * 4 - 2 }
let line = InMemoryDataset(inputs: xs, labels: xs.map { 3 * $0 + 1 }, featureSize: 1)
let regression = SupervisedLearner(
    model: Dense(inputSize: 1, units: 1, seed: 4), loss: logCosh, optimizer: Adam(learningRate: 0.1), seed: 7)
regression.metrics = [MeanAbsoluteError()]
regression.options.verbose = 0
try regression.fit(training: line, epochs: 30, batchSize: 32)
print("mean absolute error of the line: \(try regression.evaluateMetrics(line).metrics["mae"] ?? .nan)")

// The checks of this program (not in the article).
let mae = try regression.evaluateMetrics(line).metrics["mae"] ?? .infinity
guard abs(ours - builtIn) < 1e-5, gradient[0].shape == [3, 4], (history.lastValidationAccuracy ?? 0) >= 0.85, mae < 0.3
else {
    FileHandle.standardError.write(
        Data("CustomLoss: \(ours) vs \(builtIn), accuracy \(history.lastValidationAccuracy ?? 0), mae \(mae)\n".utf8))
    exit(1)
}
print("CustomLoss: ok")
