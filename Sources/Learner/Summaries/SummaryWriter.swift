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
        // TensorFlow's own naming (time, host, process, a counter): two writers in the same
        // second, as a run and its resumption can be, never share a file.
        let number = SummaryWriter.nextNumber()
        path =
            URL(fileURLWithPath: directory)
            .appendingPathComponent("events.out.tfevents.\(Int(wallTime.timeIntervalSince1970)).\(host).\(getpid()).\(number)").path
        guard !FileManager.default.fileExists(atPath: path) else {
            throw DataError.io(path: path, operation: "create", message: "an event file of this name exists already")
        }
        writer = try TFRecordWriter(path: path, bufferSize: 1 << 16)
        try writer.write(EventProto.fileVersion(wallTime: wallTime.timeIntervalSince1970))
        try writer.flush()
    }

    private static let opened = Locked(0)
    private static func nextNumber() -> Int {
        opened.withLock { count in
            count += 1
            return count - 1
        }
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

    /// Marks a restart at `step`: TensorBoard discards this directory's earlier events at
    /// `step` and later, which a resumed run is about to write again.
    public func purge(fromStep step: Int, wallTime: Date = Date()) throws {
        try writer.write(EventProto.sessionStart(step: Int64(step), wallTime: wallTime.timeIntervalSince1970))
        try writer.flush()
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
/// ``EpochLog`` under its Keras name (`loss`, `accuracy`, `val_loss`, `lr`…) and `epoch`; every
/// `summaryEvery` optimizer steps, `batch/loss` and `batch/lr`.
///
/// Every event's step is the global step (the epoch's values at its last step), one axis as
/// PyTorch Lightning logs, so that a resumed run continues the same run: it starts by marking
/// its first step (``SummaryWriter/purge(fromStep:wallTime:)``), and TensorBoard drops what the stopped
/// run had logged after the checkpoint it resumed from, instead of showing it twice.
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
        if learner.globalStep > 0 { try writer?.purge(fromStep: Int(learner.globalStep) + 1) }
    }

    public func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws {
        guard summaryEvery > 0, learner.globalStep % UInt64(summaryEvery) == 0, let writer else { return }
        try writer.scalars(
            [("batch/loss", loss), ("batch/lr", learner.optimizer.learningRate)], step: Int(learner.globalStep))
    }

    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        guard let writer else { return }
        let values = log.valueNames.compactMap { name in log.value(named: name).map { (tag: name, value: $0) } }
        try writer.scalars(values + [("epoch", Float(log.epoch))], step: Int(learner.globalStep))
        try writer.flush()
    }

    public func onTrainEnd(_ learner: SupervisedLearner, history: History) throws {
        try writer?.close()
        writer = nil
    }
}
