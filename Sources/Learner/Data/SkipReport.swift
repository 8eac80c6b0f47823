import Foundation

/// The records an ``ImagePipeline`` skipped in one epoch under
/// ``ImagePipelineOptions/skipCorrupt``, each with the error that named its file, record and
/// byte offset; read it from ``ImageBatchIterator/skipped`` at the end of the epoch to log it.
public struct SkipReport: Sendable, Equatable, CustomStringConvertible {
    /// One error per skip, in the order the pipeline met them (the same on every run). A damaged
    /// length field, a truncated or undecompressible tail and an empty shard each end their
    /// file and count once.
    public internal(set) var errors: [DataError] = []

    public init() {}

    /// How many records (or unreadable file tails) were skipped.
    public var count: Int { errors.count }

    /// Skips per file, then per ``DataError/reason``.
    public var byFile: [String: [String: Int]] {
        var out: [String: [String: Int]] = [:]
        for error in errors { out[error.file ?? "?", default: [:]][error.reason, default: 0] += 1 }
        return out
    }

    /// One line per file and reason: `3 skipped: shard-0: 2 corrupt data; shard-1: 1 truncated record`.
    public var description: String {
        let parts = byFile.sorted { $0.key < $1.key }.map { file, reasons in
            "\(file): " + reasons.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        }
        return "\(count) skipped" + (parts.isEmpty ? "" : ": " + parts.joined(separator: "; "))
    }
}

/// The running report of one epoch, written by the producer thread and read by the consumer.
// @unchecked Sendable: `report` is only read and written with `lock` held.
final class SkipLog: @unchecked Sendable {
    private let lock = NSLock()
    private var report = SkipReport()

    func add(_ error: DataError) {
        lock.lock()
        report.errors.append(error)
        lock.unlock()
    }

    var snapshot: SkipReport {
        lock.lock()
        defer { lock.unlock() }
        return report
    }
}
