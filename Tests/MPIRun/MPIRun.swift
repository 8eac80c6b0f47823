// `mpirun` for the test targets that start several ranks (LearnerTests, TeflaTrainTests): one
// launcher, so both run ranks the same way.
import Foundation

public enum MPIRun {
    /// The first `mpirun` on PATH (then /usr/bin), nil when there is none.
    public static var launcher: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map { "\($0)/mpirun" } + ["/usr/bin/mpirun"])
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
    }

    public struct Result {
        public let status: Int32
        /// Every rank's standard output and error, interleaved.
        public let output: String
        public let seconds: Double
        /// The run outlived its limit and was terminated.
        public let timedOut: Bool
    }

    /// Runs `executable arguments` as `ranks` MPI ranks, with this process's environment plus
    /// `extra`, in `directory`; terminates the run after `limit` seconds.
    public static func run(_ launcher: String, executable: String, ranks: Int, arguments: [String],
                           environment extra: [String: String] = [:], directory: URL? = nil,
                           limit: TimeInterval = 120) throws -> Result {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("tefla-mpirun-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher)
        // As root, Open MPI refuses to start without --allow-run-as-root; in containers its
        // shared-memory transport cannot use cross-memory attach.
        process.arguments = (getuid() == 0 ? ["--allow-run-as-root"] : []) + ["--oversubscribe", "-np", "\(ranks)", executable]
            + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        environment.merge(extra) { _, new in new }
        process.environment = environment
        if let directory { process.currentDirectoryURL = directory }
        // A file, not a pipe: a rank outliving mpirun would hold a pipe open forever.
        process.standardOutput = handle
        process.standardError = handle
        let started = Date()
        try process.run()
        while process.isRunning && Date().timeIntervalSince(started) < limit { usleep(20_000) }
        let timedOut = process.isRunning
        if timedOut {
            process.terminate()
            process.waitUntilExit()
        }
        try handle.close()
        return Result(status: process.terminationStatus, output: (try? String(contentsOf: log, encoding: .utf8)) ?? "",
                      seconds: Date().timeIntervalSince(started), timedOut: timedOut)
    }
}
