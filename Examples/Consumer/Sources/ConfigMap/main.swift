// The program of the article "From a config file to Swift" (Sources/Learner/Learner.docc/ConfigMap.md):
// every code block of the article appears here verbatim, so the article's code compiles and runs.
// It does in Swift what `tefla-train` does for the config the article shows, section by section.
// Usage: ConfigMap [DATA_ROOT]   (DATA_ROOT holds train/ and val/; default Data/digits)
import Foundation
import Learner

let dataRoot = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Data/digits"
let runDir = FileManager.default.temporaryDirectory.appendingPathComponent("tefla-config-map-\(UUID().uuidString)").path
try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)

// model:
let model = Sequential([
    Dense(inputSize: 64, units: 128, activation: .relu, seed: 7),
    Dropout(rate: 0.1),
    Dense(inputSize: 128, units: 10, seed: 7 &+ 2 &* 7919),
])
let zooModel = Zoo.mlp(inputSize: 64, hiddenSizes: [128], classes: 10, dropout: 0.1, seed: 7)

// data:
let keys = FeatureKeys(input: "image", label: "label", sampleWeight: nil)
let data = try RecordData(training: dataRoot + "/train", validation: dataRoot + "/val", keys: keys)

// optimizer:
let optimizer = SGD(learningRate: 0.01, momentum: 0.9, weightDecay: 0, nesterov: false)

// schedule: and training:
var options = TrainingOptions()
options.schedule = OneCycleLR(maxLR: 0.2, pctStart: 0.3, momentumRange: (base: 0.85, max: 0.95))
options.verbose = 2
options.clipNorm = 5
options.emaDecay = 0.99
options.accumulationSteps = 1
options.checksInputsAreFinite = false

// loss: and training.mode:
let learner = SupervisedLearner(
    model: model,
    loss: .softmaxCrossEntropy(labelSmoothing: 0.05),
    optimizer: optimizer,
    seed: 7,
    options: options
)

// training.metrics:
learner.metrics = [Accuracy(), TopKAccuracy(k: 3), QuadraticWeightedKappa()]
let sameMetrics = ["accuracy", "top_3_accuracy", "kappa"].compactMap { Metrics.make($0, threshold: 0.5, beta: 2) }

// training.early_stopping, csv_log and plot; summary:
learner.callbacks = [
    EarlyStopping(monitor: "val_loss", patience: 3, mode: .min, minDelta: 0, restoreBestWeights: true),
    CSVLogger(path: runDir + "/history.csv"),
    HistoryPlot(path: runDir + "/weights/history.svg"),
    TensorBoardLogger(directory: runDir + "/summaries", summaryEvery: 20),
]

// checkpoint:
learner.checkpoint = ModelCheckpoint(
    directory: WeightsDirectory(path: runDir + "/weights", maxToKeep: 5),
    monitor: "val_accuracy",
    saveBest: true,
    everySteps: nil
)

// lr_finder: (tefla-train lr-find, or --find-lr)
let sweep = try learner.findLearningRate(training: data.training, startLR: 1e-7, endLR: 10, iterations: 50, batchSize: 32)
try sweep.writeSVG(to: runDir + "/lr_finder.svg")
print("suggested range: \(sweep.suggestedRange.lower) … \(sweep.suggestedRange.upper)")

// training.epochs and start_epoch, data.batch_size, drop_last_batch and n_iters_per_epoch:
let history = try learner.fit(
    data.training,
    validation: data.validation,
    startEpoch: 1,
    epochs: 2,
    batchSize: 32,
    dropLastBatch: false,
    iterationsPerEpoch: nil
)

// --resume (or checkpoint.resume: true): a later run builds the same learner, then starts
// after the newest checkpoint.
let later = SupervisedLearner(
    model: zooModel,
    loss: .softmaxCrossEntropy(labelSmoothing: 0.05),
    optimizer: SGD(learningRate: 0.01, momentum: 0.9),
    seed: 7,
    options: options
)
later.checkpoint = ModelCheckpoint(
    directory: WeightsDirectory(path: runDir + "/weights", maxToKeep: 5), monitor: "val_accuracy", saveBest: true)
let startEpoch = try later.resumeEpoch()

// checkpoint.weights_from and strict (--weights-from):
let report = try zooModel.loadWeights(from: runDir + "/weights/best/model.safetensors", strict: false)
print(report)

// data: for records of encoded images (JPEG or PNG)
var images = ImageDataOptions()
images.size = ImageSize(height: 32, width: 32)
images.channels = 3
images.augmentation = { size in
    Compose([RandomCrop(height: size.height, width: size.width, padding: 4), RandomHorizontalFlip()])
}
images.normalize = Normalize(mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26])
images.evaluationResize = .centerCrop(fraction: 1)
images.workers = 2
images.maxQueueSize = 10
images.shuffleBufferSize = 10_000
images.skipCorrupt = false
var imageTraining = TrainingOptions()
imageTraining.images = images

// data.balancing and data.class_weights:
let inMemory = try InMemoryDataset.load(directory: dataRoot + "/train", keys: keys)
let balanced = try BalancedDataset(inMemory, classCount: 10, epochs: 8, initProbabilities: nil)
let classes = try ClassBalancer(labels: inMemory.labels.map { Int($0) }, classCount: 10, epochs: 1)
var weighted = TrainingOptions()
weighted.classWeights = classes.balancedClassWeights()

// The checks of this program (not in the article).
let files = (try? FileManager.default.contentsOfDirectory(atPath: runDir + "/weights")) ?? []
let accuracy = history.lastValidationAccuracy ?? 0
try? FileManager.default.removeItem(atPath: runDir)
guard accuracy >= 0.8, files.contains("best"), files.contains("epoch-0002"), startEpoch == 3, report.loaded.count == 4,
    sameMetrics.map(\.name) == learner.metrics.map(\.name), balanced.sampleCount == inMemory.count,
    weighted.classWeights?.count == 10
else {
    FileHandle.standardError.write(Data("ConfigMap: accuracy \(accuracy), files \(files), start \(startEpoch), \(report)\n".utf8))
    exit(1)
}
print("ConfigMap: ok")
