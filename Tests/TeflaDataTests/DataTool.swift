import Foundation
import TestSupport
import XCTest

/// Runs the built `tefla-data` (found beside the test bundle) and locates the committed fixtures.
enum DataTool {
    /// `Tests/LearnerTests/Fixtures/data-tools` in this checkout.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("LearnerTests/Fixtures/data-tools")

    static var executable: URL { Subprocess.builtProduct("tefla-data") }

    /// Exit status, standard output and standard error of `tefla-data arguments`.
    static func run(_ arguments: [String]) throws -> ProcessResult {
        try Subprocess.run(executable, arguments)
    }
}
