import ArgumentParser
import Foundation
import Learner

/// `tefla-data`: look into, check and make TFRecord data sets.
@main
struct TeflaData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tefla-data",
        abstract: "Inspect, verify, convert and time TFRecord data sets.",
        discussion: """
            Examples:
              tefla-data inspect data/train --label-key image/class/label
              tefla-data verify data/train --all
              tefla-data convert images photos/ data/train --shards 4 --compression gzip
              tefla-data convert csv table.csv data/table --label-column label
              tefla-data index data/train data/val
              tefla-data bench-read data/train/train-00000-of-00004.tfrecord
            """,
        subcommands: [Inspect.self, Verify.self, Convert.self, Index.self, BenchRead.self, BenchDecode.self, BenchPipeline.self])
}

/// The TFRecord files `source` names: the file itself, the shards of a directory, or a glob.
func recordFiles(_ source: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), !isDirectory.boolValue {
        return [source]
    }
    return try Shards.resolve(source)
}

/// Prints `message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Runs `body`, turning a data or conversion error into `tefla-data: error: ...` and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as DataError {
        printError("tefla-data: error: \(error)")
        throw ExitCode.failure
    } catch let error as ConversionError {
        printError("tefla-data: error: \(error)")
        throw ExitCode.failure
    }
}

extension TFRecordCompression: ExpressibleByArgument {}
