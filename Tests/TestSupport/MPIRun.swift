import Foundation
import XCTest

/// `mpirun` for the tests that start several ranks (LearnerTests, TeflaTrainTests): one
/// launcher, so all of them run ranks the same way.
public enum MPIRun {
    /// The first `mpirun` on PATH (then /usr/bin), nil when there is none.
    public static var launcher: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map { "\($0)/mpirun" } + ["/usr/bin/mpirun"])
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
    }

    /// `launcher`, or the `XCTSkip` of `Prerequisite.missing` (a failure in CI) when there is none.
    public static func requireLauncher(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        guard let launcher else {
            throw Prerequisite.missing("mpirun not found (install openmpi-bin: Scripts/setup does)", file: file, line: line)
        }
        return launcher
    }

    /// Runs `executable arguments` as `ranks` MPI ranks, with this process's environment plus
    /// `extra`, in `directory`; terminates the run after `limit` seconds. Every rank's standard
    /// output and error come back interleaved in `output`.
    public static func run(
        _ launcher: String, executable: String, ranks: Int, arguments: [String],
        environment extra: [String: String] = [:], directory: URL? = nil,
        limit: TimeInterval = 120
    ) throws -> ProcessResult {
        try Subprocess.run(
            URL(fileURLWithPath: launcher), launchArguments(ranks: ranks, executable: executable) + arguments,
            environment: environment(extra), directory: directory, mergingErrors: true, timeout: limit)
    }

    /// The launcher's own arguments before the program's: as root, Open MPI refuses to start
    /// without --allow-run-as-root.
    public static func launchArguments(ranks: Int, executable: String) -> [String] {
        (getuid() == 0 ? ["--allow-run-as-root"] : []) + ["--oversubscribe", "-np", "\(ranks)", executable]
    }

    /// This process's environment plus `extra`; in containers Open MPI's shared-memory
    /// transport cannot use cross-memory attach.
    public static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        environment.merge(extra) { _, new in new }
        return environment
    }
}
