import Foundation
import Logging

/// Appends one row per epoch to a CSV file (Keras' `CSVLogger`): `epoch`, then every value of
/// the first epoch's log in a fixed order.
///
/// A run that resumes (starts after epoch 1) continues the file: the rows of the epochs before
/// its start are kept, those from its start on (written by the run it replaces) are dropped, and
/// its rows follow in the file's columns. A fresh run starts the file anew unless `append`.
public final class CSVLogger: Callback {
    /// Writes files: rank 0 alone runs it in data-parallel training.
    public var runsOnEveryRank: Bool { false }
    /// Works at epoch ends: batch losses need not be read back from the device.
    public var readsBatchLoss: Bool { false }

    public let path: String
    public let append: Bool
    private var columns: [String]?
    /// The open file (appending), -1 while closed.
    private var descriptor: Int32 = -1
    private var written = 0

    public init(path: String, append: Bool = false) {
        self.path = path
        self.append = append
    }

    public func onTrainBegin(_ learner: SupervisedLearner) throws {
        columns = nil
        let startEpoch = learner.run?.startEpoch ?? 1
        var kept = ""
        if let existing = try? String(contentsOfFile: path, encoding: .utf8), append || startEpoch > 1 {
            var lines = existing.split(separator: "\n", omittingEmptySubsequences: true)
            if let header = lines.first, header.hasPrefix("epoch,") {
                columns = header.split(separator: ",", omittingEmptySubsequences: false).dropFirst().map(String.init)
                lines =
                    [header]
                    + lines.dropFirst().filter { row in
                        startEpoch == 1 || (Int(row.prefix { $0 != "," }) ?? Int.max) < startEpoch
                    }
                kept = lines.joined(separator: "\n") + "\n"
            } else if append {
                kept = existing  // not a file of this logger's: appended to as it is
            }
        }
        try AtomicFile.write(Data(kept.utf8), to: path)
        // O_NOFOLLOW: the file just written, never a link put in its place since.
        descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { throw AtomicFile.WriteError(path: path, operation: "open", code: errno) }
        written = kept.utf8.count
    }

    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        guard descriptor >= 0 else { return }
        var text = ""
        if columns == nil {
            let names = log.valueNames
            columns = names
            if written == 0 { text += (["epoch"] + names).joined(separator: ",") + "\n" }
        }
        let row = [String(log.epoch)] + (columns ?? []).map { name in log.value(named: name).map { "\($0)" } ?? "" }
        text += row.joined(separator: ",") + "\n"
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                // A full disk: the error names the file; the rows before stay whole.
                throw AtomicFile.WriteError(path: path, operation: "write", code: errno)
            }
            offset += n
        }
        written += bytes.count
    }

    public func onTrainEnd(_ learner: SupervisedLearner, history: History) {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }
}

/// Stops training at the first batch whose loss is NaN or infinite (Keras' `TerminateOnNaN`), and
/// says where: the epoch, the batch within it (0-based, as the hooks count) and the global step.
public final class TerminateOnNaN: Callback {
    /// The global step whose loss was not finite, nil while none was.
    public private(set) var badStep: UInt64?
    /// The epoch (1-based) and batch index (0-based) of that step.
    public private(set) var badEpoch: Int?
    public private(set) var badBatch: Int?
    /// The line logged when training was stopped.
    public private(set) var message: String?
    private var epoch = 0

    public init() {}

    public func onTrainBegin(_ learner: SupervisedLearner) {
        badStep = nil
        badEpoch = nil
        badBatch = nil
        message = nil
    }

    public func onEpochBegin(_ learner: SupervisedLearner, epoch: Int) { self.epoch = epoch }

    public func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) {
        guard !loss.isFinite, badStep == nil else { return }
        badStep = learner.globalStep
        badEpoch = epoch
        badBatch = batch
        learner.stopTraining = true
        let text = "TerminateOnNaN: epoch \(epoch), batch \(batch) (global step \(learner.globalStep)): loss is \(loss); training stopped"
        message = text
        learner.note(text, level: .warning)
    }
}

/// Records the learning rate (and scheduled momentum) of every step (for plots and checks).
public final class LearningRateLogger: Callback {
    /// Reads no loss: batch losses need not be read back from the device.
    public var readsBatchLoss: Bool { false }

    public private(set) var learningRates: [Float] = []
    public private(set) var momenta: [Float] = []
    public init() {}

    public func onBatchBegin(_ learner: SupervisedLearner, batch: Int) {
        learningRates.append(learner.optimizer.learningRate)
        if let m = learner.scheduledMomentum { momenta.append(m) }
    }
}

/// A callback made of closures (Keras' `LambdaCallback`, PuzzleLib's `onBatchFinish`).
public final class LambdaCallback: Callback {
    public var trainBegin: ((SupervisedLearner) throws -> Void)?
    public var trainEnd: ((SupervisedLearner, History) throws -> Void)?
    public var epochBegin: ((SupervisedLearner, Int) throws -> Void)?
    public var epochEnd: ((SupervisedLearner, EpochLog) throws -> Void)?
    public var batchBegin: ((SupervisedLearner, Int) throws -> Void)?
    /// PuzzleLib's `onBatchFinish`.
    public var batchEnd: ((SupervisedLearner, Int, Float) throws -> Void)?

    public init(
        trainBegin: ((SupervisedLearner) throws -> Void)? = nil,
        trainEnd: ((SupervisedLearner, History) throws -> Void)? = nil,
        epochBegin: ((SupervisedLearner, Int) throws -> Void)? = nil,
        epochEnd: ((SupervisedLearner, EpochLog) throws -> Void)? = nil,
        batchBegin: ((SupervisedLearner, Int) throws -> Void)? = nil,
        batchEnd: ((SupervisedLearner, Int, Float) throws -> Void)? = nil
    ) {
        self.trainBegin = trainBegin
        self.trainEnd = trainEnd
        self.epochBegin = epochBegin
        self.epochEnd = epochEnd
        self.batchBegin = batchBegin
        self.batchEnd = batchEnd
    }

    public func onTrainBegin(_ learner: SupervisedLearner) throws { try trainBegin?(learner) }
    public func onTrainEnd(_ learner: SupervisedLearner, history: History) throws { try trainEnd?(learner, history) }
    public func onEpochBegin(_ learner: SupervisedLearner, epoch: Int) throws { try epochBegin?(learner, epoch) }
    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws { try epochEnd?(learner, log) }
    public func onBatchBegin(_ learner: SupervisedLearner, batch: Int) throws { try batchBegin?(learner, batch) }
    public func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws {
        try batchEnd?(learner, batch, loss)
    }
}
