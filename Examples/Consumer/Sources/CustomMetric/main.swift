// The program of the article "A custom metric and a callback"
// (Sources/Learner/Learner.docc/CustomMetric.md): every code block of the article appears here
// verbatim, so the article's code compiles and runs.
// Usage: CustomMetric [DATA_ROOT]   (DATA_ROOT holds train/ and val/; default Data/digits)
import Foundation
import Learner

let dataRoot = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Data/digits"

/// Balanced accuracy: the mean over classes of the recall (the fraction of each class's samples
/// predicted as that class), so rare classes count as much as common ones.
struct BalancedAccuracy: Metric {
    let classes: Int
    private var correct: [Double]
    private var total: [Double]

    init(classes: Int) {
        self.classes = classes
        correct = Array(repeating: 0, count: classes)
        total = Array(repeating: 0, count: classes)
    }

    var name: String { "balanced_accuracy" }

    mutating func update(outputs: Tensor, labels: Tensor) {
        let predicted = outputs.argmax(alongAxis: 1).scalars
        for (prediction, label) in zip(predicted, labels.scalars) {
            let c = Int(label)
            total[c] += 1
            if Int(prediction) == c { correct[c] += 1 }
        }
    }

    func values() -> [String: Float] {
        let recalls = (0..<classes).filter { total[$0] > 0 }.map { correct[$0] / total[$0] }
        return [name: recalls.isEmpty ? 0 : Float(recalls.reduce(0, +) / Double(recalls.count))]
    }

    mutating func reset() {
        correct = Array(repeating: 0, count: classes)
        total = Array(repeating: 0, count: classes)
    }

    /// Counts add up across data-parallel replicas: the metric of the whole global batch.
    var statistics: [Double]? {
        get { correct + total }
        set {
            guard let newValue, newValue.count == 2 * classes else { return }
            correct = Array(newValue[..<classes])
            total = Array(newValue[classes...])
        }
    }
}

/// Halves the learning rate when a monitored value has not improved for `patience` epochs
/// (Keras' `ReduceLROnPlateau`, without its cooldown).
final class HalveLearningRateOnPlateau: Callback {
    let monitor: String
    let patience: Int
    let minimumRate: Float
    private var best: Float?
    private var epochsWithoutImprovement = 0
    private(set) var reductions: [(epoch: Int, rate: Float)] = []

    init(monitor: String = "val_loss", patience: Int = 2, minimumRate: Float = 1e-5) {
        self.monitor = monitor
        self.patience = patience
        self.minimumRate = minimumRate
    }

    /// Works at epoch ends: `fit` need not read every batch's loss back from the device.
    var readsBatchLoss: Bool { false }

    func onTrainBegin(_ learner: SupervisedLearner) throws {
        best = nil
        epochsWithoutImprovement = 0
    }

    func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        guard let value = log.value(named: monitor) else {
            throw LearnerError.invalidArgument("no '\(monitor)' in the epoch log; it has \(log.valueNames)")
        }
        if best.map({ value < $0 }) ?? true {
            best = value
            epochsWithoutImprovement = 0
            return
        }
        epochsWithoutImprovement += 1
        if epochsWithoutImprovement >= patience {
            let rate = max(learner.optimizer.learningRate / 2, minimumRate)
            learner.optimizer.learningRate = rate
            reductions.append((log.epoch, rate))
            epochsWithoutImprovement = 0
        }
    }
}

let model = Sequential([
    Dense(inputSize: 64, units: 64, activation: .relu, seed: 1),
    Dense(inputSize: 64, units: 10, seed: 2),
])
let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 5e-3), seed: 7)
learner.metrics = [Accuracy(), BalancedAccuracy(classes: 10)]

let plateau = HalveLearningRateOnPlateau(monitor: "val_loss", patience: 1)
var batchesSeen = 0
let counter = LambdaCallback(batchEnd: { _, _, _ in batchesSeen += 1 })
learner.callbacks = [plateau, counter, EarlyStopping(monitor: "val_balanced_accuracy", patience: 4)]

let history = try learner.fit(
    dataDir: dataRoot + "/train",
    featureKeys: FeatureKeys(input: "image", label: "label"),
    validationDir: dataRoot + "/val",
    epochs: 12,
    batchSize: 32
)
print("balanced accuracy per epoch: \(history["val_balanced_accuracy"].map { $0 ?? .nan })")
print("learning rate halved at epochs \(plateau.reductions.map(\.epoch)); \(batchesSeen) batches")

// The checks of this program (not in the article).
let balanced = history.epochs.last?.validationMetrics["balanced_accuracy"] ?? 0
var check = BalancedAccuracy(classes: 3)
check.update(outputs: Tensor(shape: [4, 3], scalars: [1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1]), labels: Tensor([0, 1, 2, 2]))
guard balanced >= 0.85, batchesSeen >= 45 * history.epochs.count, abs((check.values()["balanced_accuracy"] ?? 0) - 2.5 / 3) < 1e-6
else {
    FileHandle.standardError.write(Data("CustomMetric: balanced accuracy \(balanced), \(batchesSeen) batches, \(check.values())\n".utf8))
    exit(1)
}
print("CustomMetric: ok")
