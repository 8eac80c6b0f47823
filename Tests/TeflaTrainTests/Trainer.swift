import Foundation
import TestSupport

/// Runs the built `tefla-train` (found beside the test bundle) from the repository root.
enum Trainer {
    static var executable: URL { Subprocess.builtProduct("tefla-train") }

    /// Exit status, standard output and standard error of `tefla-train arguments`; with
    /// `mergingErrors` both streams come back interleaved in `output`.
    static func run(
        _ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
        mergingErrors: Bool = false
    ) throws -> ProcessResult {
        try Subprocess.run(
            executable, arguments, environment: environment, directory: ConfigTests.root,
            mergingErrors: mergingErrors)
    }
}
