import Foundation

/// Writes TensorBoard scalar logs: `events.out.tfevents.<unix time>.<host>` in `directory`, a
/// TFRecord stream of `Event` protos whose first record is `file_version: "brain.Event:2"`
/// (TensorFlow's `tf.summary.create_file_writer`, PyTorch's `SummaryWriter.add_scalar`).
public final class SummaryWriter {
    /// The event file being written.
    public let path: String
    private let writer: TFRecordWriter

    /// Creates `directory` when missing and opens a new event file in it.
    public init(directory: String, wallTime: Date = Date()) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let host = SummaryWriter.hostName()
        path =
            URL(fileURLWithPath: directory)
            .appendingPathComponent("events.out.tfevents.\(Int(wallTime.timeIntervalSince1970)).\(host)").path
        writer = try TFRecordWriter(path: path, bufferSize: 1 << 16)
        try writer.write(EventProto.fileVersion(wallTime: wallTime.timeIntervalSince1970))
        try writer.flush()
    }

    /// This machine's name from `gethostname` (no DNS lookup, unlike `ProcessInfo.hostName`).
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name.replacingOccurrences(of: "/", with: "_")
    }

    /// Logs scalars that share a step (one event).
    public func scalars(_ values: [(tag: String, value: Float)], step: Int, wallTime: Date = Date()) throws {
        guard !values.isEmpty else { return }
        try writer.write(EventProto.scalars(values, step: Int64(step), wallTime: wallTime.timeIntervalSince1970))
    }

    /// Logs one scalar.
    public func scalar(_ tag: String, _ value: Float, step: Int, wallTime: Date = Date()) throws {
        try scalars([(tag, value)], step: step, wallTime: wallTime)
    }

    /// Writes buffered events to the file (TensorBoard sees them after this).
    public func flush() throws { try writer.flush() }

    public func close() throws { try writer.close() }
}

/// Logs training to TensorBoard (Keras' `TensorBoard` callback): per epoch, every value of the
/// ``EpochLog`` under its Keras name (`loss`, `accuracy`, `val_loss`, `lr`…) at step = epoch;
/// every `summaryEvery` optimizer steps, `batch/loss` and `batch/lr` at step = global step.
public final class TensorBoardLogger: Callback {
    /// Writes files: rank 0 alone runs it in data-parallel training.
    public var runsOnEveryRank: Bool { false }
    /// Batch losses are logged (and read back from the device) only every `summaryEvery` steps.
    public var readsBatchLoss: Bool { summaryEvery > 0 }

    public let directory: String
    /// Steps between batch-level summaries; 0 logs per epoch only.
    public let summaryEvery: Int
    public private(set) var writer: SummaryWriter?

    public init(directory: String, summaryEvery: Int = 0) {
        self.directory = directory
        self.summaryEvery = Swift.max(summaryEvery, 0)
    }

    public func onTrainBegin(_ learner: SupervisedLearner) throws {
        if writer == nil { writer = try SummaryWriter(directory: directory) }
    }

    public func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws {
        guard summaryEvery > 0, learner.globalStep % UInt64(summaryEvery) == 0, let writer else { return }
        try writer.scalars(
            [("batch/loss", loss), ("batch/lr", learner.optimizer.learningRate)], step: Int(learner.globalStep))
    }

    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        guard let writer else { return }
        let values = log.valueNames.compactMap { name in log.value(named: name).map { (tag: name, value: $0) } }
        try writer.scalars(values, step: log.epoch)
        try writer.flush()
    }

    public func onTrainEnd(_ learner: SupervisedLearner, history: History) throws {
        try writer?.close()
        writer = nil
    }
}
