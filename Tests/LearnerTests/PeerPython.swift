import Foundation
import XCTest

/// A Python interpreter with the peer packages (safetensors, numpy, tensorboard) for tests that
/// check our files with the reference readers. `Scripts/test` makes one in a venv outside the
/// repository and passes it as TEFLA_PEERS_PYTHON. Outside CI a missing package skips the test
/// with the reason; in CI (CI=true) it fails, so such a check can never silently not run.
enum PeerPython {
    static func interpreter(with modules: [String]) throws -> String {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["TEFLA_PEERS_PYTHON"] { candidates.append(env) }
        candidates.append("/usr/bin/python3")
        for python in candidates where FileManager.default.isExecutableFile(atPath: python) {
            let probe = try run(python, ["-c", modules.map { "import \($0)" }.joined(separator: "; ")])
            if probe.status == 0 { return python }
        }
        let reason = "no Python with \(modules.joined(separator: ", ")) (set TEFLA_PEERS_PYTHON; Scripts/test makes one)"
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail(reason)
            throw XCTSkip(reason)
        }
        print("skipping: \(reason)")
        throw XCTSkip(reason)
    }

    static func run(_ python: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
