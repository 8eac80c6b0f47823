// The program of the article "Your first model" (Sources/Learner/Learner.docc/FirstModel.md):
// every code block of the article appears here verbatim, so the article's code compiles and runs.
// Usage: FirstModel [DATA_ROOT]   (DATA_ROOT holds train/ and val/; default Data/digits)
import Foundation
import Learner

let dataRoot = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Data/digits"

// A model: 64 pixel values in, 10 class scores out.
let model = Sequential([
    Dense(inputSize: 64, units: 64, activation: .relu, seed: 1),
    Dropout(rate: 0.1),
    Dense(inputSize: 64, units: 10, seed: 2),
])
print(try model.summary(inputShape: [64]))

// The learner: the model, what it minimises and how it steps.
let learner = SupervisedLearner(
    model: model,
    loss: .softmaxCrossEntropy(),
    optimizer: Adam(learningRate: 2e-3),
    seed: 7
)

// Training on the TFRecord shards of the embedded data set.
let history = try learner.fit(
    dataDir: dataRoot + "/train",
    featureKeys: FeatureKeys(input: "image", label: "label"),
    validationDir: dataRoot + "/val",
    epochs: 10,
    batchSize: 32
)
if let last = history.epochs.last {
    print("epoch \(last.epoch): loss \(last.trainLoss), validation accuracy \(last.validationAccuracy ?? 0)")
}

// Evaluating on data read into memory.
let validation = try InMemoryDataset.load(
    directory: dataRoot + "/val",
    keys: FeatureKeys(input: "image", label: "label")
)
let (loss, accuracy) = try learner.evaluate(validation)
print("validation loss \(loss), accuracy \(accuracy ?? 0)")

// Predicting the classes of the first eight validation samples.
let batch = validation.collate(Array(0..<8))
let scores = learner.predict(batch.inputs)
let predicted = scores.argmax(alongAxis: 1).scalars.map { Int($0) }
let probabilities = scores.softmax()
print("predicted \(predicted), labels \(batch.labels.scalars.map { Int($0) })")
print("confidence of the first: \(probabilities.scalars[predicted[0]])")

// Training on arrays already in memory: which side of the line x = y a point lies on.
var generator = RandomGenerator(seed: 3)
var points: [Float] = []
var sides: [Float] = []
for _ in 0..<512 {
    let (x, y) = (generator.nextUniform(), generator.nextUniform())
    points += [x, y]
    sides.append(x > y ? 1 : 0)
}
let arrays = InMemoryDataset(inputs: points, labels: sides, featureSize: 2)
let pointModel = Sequential([
    Dense(inputSize: 2, units: 16, activation: .relu, seed: 4),
    Dense(inputSize: 16, units: 2, seed: 5),
])
let pointLearner = SupervisedLearner(model: pointModel, mode: .classification, optimizer: Adam(learningRate: 1e-2), seed: 7)
pointLearner.options.verbose = 0
try pointLearner.fit(training: arrays, epochs: 20, batchSize: 32)
let pointAccuracy = try pointLearner.evaluate(arrays).accuracy ?? 0
print("accuracy on the points: \(pointAccuracy)")

// The checks of this program (not in the article): both models learned.
guard let digitsAccuracy = accuracy, digitsAccuracy >= 0.85, pointAccuracy >= 0.9 else {
    FileHandle.standardError.write(Data("FirstModel: accuracy \(accuracy ?? 0) on digits, \(pointAccuracy) on points is too low\n".utf8))
    exit(1)
}
print("FirstModel: ok")
