import ArgumentParser
import Learner

/// `tefla-data verify`: checks the CRCs of every record; exit status 1 on the first bad one.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check both CRC32Cs of every record; exit 1 naming the first bad record.")

    @Argument(help: "A TFRecord file, a directory of shards or a glob pattern.")
    var source: String

    @Flag(name: .long, help: "List every bad record instead of stopping at the first.")
    var all = false

    func run() throws {
        try reportingErrors {
            let files = try recordFiles(source)
            let report = RecordVerifier.verify(files: files, stopAtFirst: !all)
            for problem in report.problems { printError("tefla-data: bad record: \(problem)") }
            if report.ok {
                print("ok: \(report.goodRecords) records in \(report.files) files")
            } else {
                print(
                    "FAILED: \(report.problems.count) bad, \(report.goodRecords) good records in \(report.files) of \(files.count) files"
                )
                throw ExitCode.failure
            }
        }
    }
}
