import Foundation
import XCTest

/// What a test does when something it checks against is missing here: a peer Python package,
/// `mpirun`, a tool built beside the tests.
public enum Prerequisite {
    /// True in continuous integration: the `CI` variable is set to anything but "", "0" or
    /// "false". There every check must run, so a missing prerequisite is a failure.
    public static var required: Bool {
        guard let value = ProcessInfo.processInfo.environment["CI"] else { return false }
        return !["", "0", "false"].contains(value.lowercased())
    }

    /// The one rule for a missing prerequisite: when `required` (CI), records a failure with
    /// `reason`; elsewhere prints that the test is skipped. Either way returns the `XCTSkip` to
    /// throw, so the test stops there.
    public static func missing(_ reason: String, file: StaticString = #filePath, line: UInt = #line) -> XCTSkip {
        if required { XCTFail(reason, file: file, line: line) } else { print("skipping: \(reason)") }
        return XCTSkip(reason)
    }
}
