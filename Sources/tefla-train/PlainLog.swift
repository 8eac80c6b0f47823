import Foundation
import Learner
import Logging

/// The library's messages as the trainer's plain lines on standard output
/// (`tefla-train: <message>`, `tefla-train: warning: <message>`), notices and above.
struct PlainLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .notice

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let prefix = event.level >= .warning ? "tefla-train: \(event.level): " : "tefla-train: "
        TrainingOptions.standardOutput(prefix + event.message.description)
    }

    /// Routes every logger of the process through this handler, once.
    static let bootstrap: Void = LoggingSystem.bootstrap { _ in PlainLogHandler() }
}
