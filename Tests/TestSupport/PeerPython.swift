import Foundation
import XCTest

/// A Python interpreter with the peer packages (safetensors, numpy, tensorboard, tensorflow) for
/// tests that check our files with the reference readers. `Scripts/test` makes one in a venv
/// outside the repository and passes it as TEFLA_PEERS_PYTHON; `/usr/bin/python3` is tried next.
/// Without one, `Prerequisite.missing` decides: a failure in CI, a skip elsewhere.
public enum PeerPython {
    /// The first candidate interpreter that imports every one of `modules`.
    public static func interpreter(with modules: [String], file: StaticString = #filePath, line: UInt = #line) throws
        -> String
    {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["TEFLA_PEERS_PYTHON"] { candidates.append(env) }
        candidates.append("/usr/bin/python3")
        for python in candidates where FileManager.default.isExecutableFile(atPath: python) {
            let probe = try run(python, ["-c", modules.map { "import \($0)" }.joined(separator: "; ")])
            if probe.status == 0 { return python }
        }
        throw Prerequisite.missing(
            "no Python with \(modules.joined(separator: ", ")) (set TEFLA_PEERS_PYTHON; Scripts/test makes one)",
            file: file, line: line)
    }

    /// Runs `python arguments`; standard output and error come back interleaved in `output`.
    public static func run(_ python: String, _ arguments: [String]) throws -> ProcessResult {
        try Subprocess.run(URL(fileURLWithPath: python), arguments, mergingErrors: true)
    }
}
