// The program of the article "Checkpoints and resuming" (Sources/Learner/Learner.docc/Checkpoints.md):
// every code block of the article appears here verbatim, so the article's code compiles and runs.
// Usage: Checkpoints [DATA_ROOT]   (DATA_ROOT holds train/ and val/; default Data/digits)
import Foundation
import Learner

let dataRoot = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Data/digits"
let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tefla-checkpoints-\(UUID().uuidString)").path

let keys = FeatureKeys(input: "image", label: "label")
let training = try InMemoryDataset.load(directory: dataRoot + "/train", keys: keys)
let validation = try InMemoryDataset.load(directory: dataRoot + "/val", keys: keys)

/// The same model, optimizer and seed each time: a run and its resumption must agree on them.
func makeLearner() -> SupervisedLearner {
    let model = Sequential([
        Dense(inputSize: 64, units: 64, activation: .relu, seed: 1),
        Dropout(rate: 0.1),
        Dense(inputSize: 64, units: 10, seed: 2),
    ])
    let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 2e-3), seed: 7)
    learner.options.verbose = 0
    return learner
}

// The first run: epochs 1 and 2, a checkpoint after each, and the best epoch kept as best/.
let weights = WeightsDirectory(path: scratch + "/run", maxToKeep: 3)
let first = makeLearner()
first.checkpoint = ModelCheckpoint(directory: weights, monitor: "val_accuracy", saveBest: true)
try first.fit(training, validation: validation, epochs: 2, batchSize: 32)
print("saved epochs \(weights.savedEpochs()), latest \(try weights.latest() ?? "none")")

// A later run (another process, after a crash or a kill) continues at epoch 3.
let resumed = makeLearner()
resumed.checkpoint = ModelCheckpoint(directory: weights, monitor: "val_accuracy", saveBest: true)
let startEpoch = try resumed.resumeEpoch()
let history = try resumed.fit(training, validation: validation, startEpoch: startEpoch, epochs: 4, batchSize: 32)
print("resumed at epoch \(startEpoch); epochs run: \(history.epochs.map(\.epoch))")

// What a checkpoint holds beside the weights.
let state = try WeightsDirectory.readState(weights.folder(epoch: 4))
print("epoch \(state.epoch), step \(state.globalStep), seed \(state.seed), values \(state.values)")

// Loading a checkpoint for evaluation: the best epoch's weights.
let evaluator = makeLearner()
let bestState = try evaluator.restoreCheckpoint(from: weights.path + "/best")
let (loss, accuracy) = try evaluator.evaluate(validation)
print("best epoch \(bestState.epoch): loss \(loss), accuracy \(accuracy ?? 0)")

// Checkpointing within epochs as well: every 20 optimizer steps.
let stepWeights = WeightsDirectory(path: scratch + "/steps")
let stepped = makeLearner()
stepped.checkpoint = ModelCheckpoint(directory: stepWeights, everySteps: 20)
var midEpoch: String?
stepped.callbacks = [LambdaCallback(batchEnd: { _, batch, _ in if batch == 30 { midEpoch = try stepWeights.latest() } })]
try stepped.fit(training, epochs: 1, batchSize: 32)
print("latest during the epoch: \(midEpoch ?? "none"), after it: \(try stepWeights.latest() ?? "none")")

// Weights alone, to share or to fine-tune from (a torch.nn model of the same layout loads them too).
try resumed.model.saveWeights(to: scratch + "/digits-mlp.safetensors")
let fineTuned = makeLearner()
let report = try fineTuned.model.loadWeights(from: scratch + "/digits-mlp.safetensors")
print(report)
fineTuned.model.freeze(["0"])

// The checks of this program (not in the article): the resumed run equals an uninterrupted one.
let straight = makeLearner()
straight.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: scratch + "/straight"))
let straightHistory = try straight.fit(training, validation: validation, epochs: 4, batchSize: 32)
let resumedLoss = history.epochs.last?.trainLoss ?? .nan
let straightLoss = straightHistory.epochs.last?.trainLoss ?? .infinity
let frozen = fineTuned.model.namedParameters.filter { $0.parameter.isFrozen }.map(\.name)
guard startEpoch == 3, weights.savedEpochs() == [2, 3, 4], resumedLoss == straightLoss, report.isComplete,
    frozen == ["0.weight", "0.bias"], (accuracy ?? 0) >= 0.8, midEpoch?.hasSuffix("/step-0000000020") == true
else {
    FileHandle.standardError.write(
        Data(
            ("Checkpoints: start \(startEpoch), saved \(weights.savedEpochs()), losses \(resumedLoss) vs \(straightLoss), "
                + "frozen \(frozen), accuracy \(accuracy ?? 0)\n").utf8))
    try? FileManager.default.removeItem(atPath: scratch)
    exit(1)
}
try? FileManager.default.removeItem(atPath: scratch)
print("Checkpoints: ok")
