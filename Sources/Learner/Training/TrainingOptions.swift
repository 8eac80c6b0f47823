import CLearner
import Foundation
import Logging

/// How a ``SupervisedLearner`` trains and reports: the settings the CLI fills from a config's
/// `training`, `optimizer.schedule` and `data` sections and a library user sets in Swift.
///
/// ```swift
/// var options = TrainingOptions()
/// options.schedule = OneCycleLR(maxLR: 0.01)   // learns the run's length from fit
/// options.clipNorm = 1
/// options.emaDecay = 0.999
/// let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.01),
///                                 options: options)
/// ```
public struct TrainingOptions {
    /// 0: silent, 1: a live progress bar per epoch (Keras), 2: one line per epoch.
    public var verbose = 2
    /// Where the epoch lines go (standard output by default): the run's report.
    public var log: (String) -> Void = TrainingOptions.standardOutput
    /// Where the library's messages go (swift-log): notes and warnings such as a checkpoint
    /// saved by a run with another seed, or a run stopped on a non-finite loss. Route them with
    /// `LoggingSystem.bootstrap` or by setting a logger here.
    public var logger = Logger(label: "tefla.learner")
    /// Where the live progress bar of `verbose` 1 is drawn (text without newlines); nil sends
    /// plain progress lines to ``log`` instead. Standard output when it is a terminal.
    public var progressOutput: ((String) -> Void)? = TrainingOptions.terminalOutput()
    /// Sets `optimizer.learningRate` (and momentum/β₁ where it cycles it) before every step.
    /// A schedule that needs the run's length (``OneCycleLR``, ``CosineWarmupLR`` without
    /// `totalSteps`) is given it by `fit`.
    public var schedule: (any LearningRateSchedule)?
    /// Scales gradients so their global L2 norm is at most this (nil: off).
    public var clipNorm: Float?
    /// Clamps each gradient element to ±this (nil: off).
    public var clipValue: Float?
    /// Gradient accumulation: each batch runs as this many slices, summed before one optimizer
    /// step (the update of the whole batch with the memory of a slice).
    public var accumulationSteps = 1
    /// Multiplies each sample's loss by the weight of its class (Keras' `class_weight`;
    /// classification with index labels). Classes beyond the array weigh 1.
    public var classWeights: [Float]?
    /// Keeps an exponential moving average of the weights (and batch-norm statistics) with this
    /// decay, used by evaluation and prediction (nil: off). See ``WeightEMA``.
    public var emaDecay: Float?
    /// Test-time augmentation: evaluation and prediction average the predictions for each image
    /// and its mirror image.
    public var testTimeFlip = false
    /// Whether `fit` leaves each batch's loss and outputs on the device and reads them back only
    /// when they are shown (the progress bar, at most about ten times a second), at checkpoints
    /// and at the epoch's end, so a GPU is not made to wait for the host every step. nil: on for
    /// GPUs, off on the CPU (where reading costs nothing). Batches are read at once whatever
    /// this says while a callback reads every batch's loss (``Callback/readsBatchLoss``) or in a
    /// replica group.
    public var defersHostReads: Bool?
    /// Whether every batch's inputs are checked for NaN and infinity before the step (a thrown
    /// ``LearnerError/nonFiniteInput(value:location:)`` naming the sample); off by default, as
    /// it reads every input value once more.
    public var checksInputsAreFinite = false
    /// The number format of matrix products and convolutions in training, evaluation and
    /// prediction (mixed precision; see ``Precision``). Weights, optimizer state and checkpoints
    /// stay fp32.
    public var precision = Precision.fp32
    /// How fp16 training scales its loss (used when ``precision`` is `.fp16`).
    public var lossScaling = LossScaling()
    /// How ``SupervisedLearner/fit(dataDir:featureKeys:startEpoch:validationDir:epochs:batchSize:dropLastBatch:imageSize:)``
    /// decodes shards of encoded images: size, channels, augmentation, normalisation, threads.
    public var images = ImageDataOptions()
    /// Feature-vector shards whose samples would take more bytes than this in memory are read
    /// from disk every epoch (``RecordStreamDataset``) instead of into memory; 1 GiB by default.
    public var dataMemoryBudget = 1 << 30

    public init() {}

    /// Writes a line to standard output and flushes it.
    public static let standardOutput: @Sendable (String) -> Void = { line in
        print(line)
        fflush(tl_stdout())
    }

    /// Standard output as a progress stream when it is a terminal, else nil.
    public static func terminalOutput() -> ((String) -> Void)? {
        guard isatty(STDOUT_FILENO) != 0 else { return nil }
        return { text in
            fputs(text, tl_stdout())
            fflush(tl_stdout())
        }
    }
}
