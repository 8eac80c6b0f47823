// Trains a small MLP on the digits data set and checks that it learned.
// Usage: Consumer [DATA_ROOT]   (DATA_ROOT holds train/ and val/; default Data/digits)
import Foundation
import Learner

let dataRoot = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Data/digits"

let model = Sequential([
    Dense(inputSize: 64, units: 128, activation: .relu),
    Dropout(rate: 0.1),
    Dense(inputSize: 128, units: 10),
])
let learner = SupervisedLearner(
    model: model,
    loss: .softmaxCrossEntropy(),
    optimizer: Adam(learningRate: 1e-3),
    seed: 7
)

do {
    let history = try learner.fit(
        dataDir: dataRoot + "/train",
        featureKeys: FeatureKeys(input: "image", label: "label"),
        startEpoch: 1,
        validationDir: dataRoot + "/val",
        epochs: 20,
        batchSize: 32
    )
    guard let last = history.epochs.last, let accuracy = last.validationAccuracy else {
        FileHandle.standardError.write(Data("Consumer: no validation accuracy in the history\n".utf8))
        exit(1)
    }
    print("final validation accuracy: \(accuracy) (epoch \(last.epoch))")
    if accuracy < 0.9 {
        FileHandle.standardError.write(Data("Consumer: validation accuracy \(accuracy) is below 0.9\n".utf8))
        exit(1)
    }
} catch {
    FileHandle.standardError.write(Data("Consumer: training failed: \(error)\n".utf8))
    exit(1)
}
