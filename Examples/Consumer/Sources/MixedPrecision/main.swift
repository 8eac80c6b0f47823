// The program of the article "Mixed precision" (Sources/Learner/Learner.docc/MixedPrecision.md):
// every code block of the article appears here verbatim, so the article's code compiles and runs.
// Usage: MixedPrecision [DATA_ROOT]   (DATA_ROOT holds train/ and val/; default Data/digits)
import Foundation
import Learner

let dataRoot = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Data/digits"
let keys = FeatureKeys(input: "image", label: "label")
let training = try InMemoryDataset.load(directory: dataRoot + "/train", keys: keys)
let validation = try InMemoryDataset.load(directory: dataRoot + "/val", keys: keys)

/// The digits MLP, the same weights each time, computing in `precision`.
func makeLearner(_ precision: Precision) -> SupervisedLearner {
    let model = Sequential([
        Dense(inputSize: 64, units: 64, activation: .relu, seed: 1),
        Dense(inputSize: 64, units: 10, seed: 2),
    ])
    let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 7)
    learner.options.verbose = 0
    learner.options.precision = precision
    return learner
}

var accuracies: [Precision: Float] = [:]
for precision in Precision.allCases {
    let learner = makeLearner(precision)
    let history = try learner.fit(training, validation: validation, epochs: 6, batchSize: 32)
    accuracies[precision] = history.lastValidationAccuracy ?? 0
    print("\(precision): validation accuracy \(history.lastValidationAccuracy ?? 0)")
}

// What the 16-bit formats hold: bf16 keeps fp32's range with 8 significant bits, fp16 has 11
// bits but overflows above 65504 and loses values below 2^-24.
let x = Tensor([3.14159265, 70000, 1e-8])
print("bf16: \(x.rounded(to: .bf16).scalars)")  // [3.140625, 70144.0, 1.0011718e-08]
print("fp16: \(x.rounded(to: .fp16).scalars)")  // [3.140625, inf, 0.0]

// A product under a precision, outside training: operands and result rounded, fp32 sums.
let a = Tensor(shape: [2, 2], scalars: [1.001, 2, 3, 4])  // 1.001 is 1.0 in bf16
let product = withComputePrecision(.bf16) { a.matmul(a) }
print("bf16 product: \(product.scalars)")

// fp16 with a loss scale of one's own choosing: it backs off on overflow and grows after
// `growthInterval` clean steps.
let fp16 = makeLearner(.fp16)
fp16.options.lossScaling = LossScaling(initialScale: 1_048_576, growthInterval: 50)
try fp16.fit(training, epochs: 2, batchSize: 32)
if let scaler = fp16.lossScaler {
    print("loss scale \(scaler.scale) after \(fp16.globalStep) steps, \(scaler.skippedSteps) skipped")
}

// What this program shows must hold.
guard let fp32Accuracy = accuracies[.fp32], fp32Accuracy > 0.9,
    Precision.allCases.allSatisfy({ abs((accuracies[$0] ?? 0) - fp32Accuracy) <= 0.02 })
else {
    fatalError("the precisions should reach the fp32 accuracy within 2 points: \(accuracies)")
}
guard x.rounded(to: .bf16).scalars == [3.140625, 70144, 1.0011718e-08], x.rounded(to: .fp16).scalars == [3.140625, .infinity, 0],
    product.scalars == [7, 10, 15, 22],
    let scaler = fp16.lossScaler, scaler.skippedSteps > 0
else {
    fatalError("the rounding, the product or the loss scaler did not behave as the article says")
}
