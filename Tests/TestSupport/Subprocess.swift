import Foundation

/// What a finished (or stopped) child process left behind.
public struct ProcessResult: Sendable {
    /// The exit status, or the signal number when `signaled`.
    public let status: Int32
    /// The process ended on a signal rather than by exiting.
    public let signaled: Bool
    /// Standard output as bytes; with `mergingErrors`, standard output and error interleaved.
    public let outputData: Data
    /// Standard error as bytes; empty with `mergingErrors`.
    public let errorData: Data
    /// Wall-clock seconds from start to end.
    public let seconds: Double
    /// The process outlived its timeout and was terminated.
    public let timedOut: Bool

    /// `outputData` as UTF-8 text.
    public var output: String { String(decoding: outputData, as: UTF8.self) }
    /// `errorData` as UTF-8 text.
    public var error: String { String(decoding: errorData, as: UTF8.self) }
}

/// Runs executables for the tests: the command-line tools, Python, `mpirun`, shell helpers.
public enum Subprocess {
    /// Runs `executable arguments` with `environment` (by default this process's) in `directory`
    /// (by default the current one) and waits for it to end, or terminates it after `timeout`
    /// seconds. Output goes to files, not pipes, so neither a full pipe nor a grandchild that
    /// outlives the child can block the wait. `holdingInputOpen` gives the child a standard input
    /// that stays open until it ends (tools such as `script` stop at end of input).
    public static func run(
        _ executable: URL, _ arguments: [String] = [],
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: URL? = nil, mergingErrors: Bool = false, holdingInputOpen: Bool = false,
        timeout: TimeInterval? = nil
    ) throws -> ProcessResult {
        try Scratch.withDirectory("tefla-process") { dir in
            let outFile = dir.appendingPathComponent("stdout"), errFile = dir.appendingPathComponent("stderr")
            _ = FileManager.default.createFile(atPath: outFile.path, contents: nil)
            _ = FileManager.default.createFile(atPath: errFile.path, contents: nil)
            let out = try FileHandle(forWritingTo: outFile), err = try FileHandle(forWritingTo: errFile)
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            process.environment = environment
            if let directory { process.currentDirectoryURL = directory }
            process.standardOutput = out
            process.standardError = mergingErrors ? out : err
            let input = holdingInputOpen ? Pipe() : nil
            if let input { process.standardInput = input }
            let started = Date()
            try process.run()
            var timedOut = false
            if let timeout {
                while process.isRunning && Date().timeIntervalSince(started) < timeout { usleep(20_000) }
                if process.isRunning {
                    timedOut = true
                    process.terminate()
                }
            }
            process.waitUntilExit()
            let seconds = Date().timeIntervalSince(started)
            try? input?.fileHandleForWriting.close()
            try out.close()
            try err.close()
            return ProcessResult(
                status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
                outputData: try Data(contentsOf: outFile), errorData: try Data(contentsOf: errFile),
                seconds: seconds, timedOut: timedOut)
        }
    }

    /// The built executable `name` of this package (`tefla-train`, `tefla-data`, `tefla-bench`):
    /// the test bundle sits in the build products folder beside them, so the nearest folder above
    /// the bundle that holds `name`.
    public static func builtProduct(_ name: String) -> URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path) && dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent(name)
    }
}
