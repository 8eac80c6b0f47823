import Foundation
import XCTest

/// Runs the built `tefla-data` (found beside the test bundle) and locates the committed fixtures.
enum DataTool {
    /// `Tests/LearnerTests/Fixtures/data-tools` in this checkout.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("LearnerTests/Fixtures/data-tools")

    static var executable: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("tefla-data").path) && dir.path != "/"
        {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("tefla-data")
    }

    /// Exit status, standard output and standard error of `tefla-data arguments`.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        try runProcess(executable, arguments)
    }

    static func runProcess(_ executable: URL, _ arguments: [String]) throws -> (
        status: Int32, output: String, error: String
    ) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read stderr on another thread so neither pipe can fill up and block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: outData, as: UTF8.self),
            String(decoding: errBox.data, as: UTF8.self)
        )
    }

    /// A fresh temporary directory, removed at the end of the test.
    static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tefla-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }
}

/// A Python with TensorFlow for the read-back checks.
///
/// Tried: `TEFLA_PEERS_PYTHON`, then `/usr/bin/python3`. Missing, the test is skipped with the reason (a failure when CI=true).
enum TensorFlowPython {
    static func interpreter() throws -> String {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["TEFLA_PEERS_PYTHON"] { candidates.append(env) }
        candidates.append("/usr/bin/python3")
        for python in candidates where FileManager.default.isExecutableFile(atPath: python) {
            let probe = try DataTool.runProcess(URL(fileURLWithPath: python), ["-c", "import tensorflow"])
            if probe.status == 0 { return python }
        }
        let reason = "no Python with tensorflow (set TEFLA_PEERS_PYTHON to one)"
        if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(reason) }
        print("skipping: \(reason)")
        throw XCTSkip(reason)
    }
}
