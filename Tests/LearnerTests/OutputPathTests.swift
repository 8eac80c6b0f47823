import Foundation
import TestSupport
import XCTest

@testable import Learner

/// Output files never go through a symbolic link to somewhere else, and checkpoint folders
/// are named only as the library names them.
final class OutputPathTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = try Scratch.directory("tefla-output-paths", for: self).path
    }

    /// A folder outside the outputs holding `victim`, whose content must survive.
    func outside() throws -> String {
        let dir = root + "/outside"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "precious".write(toFile: dir + "/victim", atomically: true, encoding: .utf8)
        return dir
    }

    func assertUntouched(_ dir: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try String(contentsOfFile: dir + "/victim", encoding: .utf8), "precious", file: file, line: line)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["victim"], file: file, line: line)
    }

    func testCheckpointsReplaceLinksInTheirFolderInsteadOfWritingThrough() throws {
        let target = try outside()
        let weights = root + "/weights"
        try FileManager.default.createDirectory(atPath: weights, withIntermediateDirectories: true)
        for name in ["epoch-0001", "epoch-0002"] {
            try FileManager.default.createSymbolicLink(atPath: weights + "/" + name, withDestinationPath: target)
        }
        let data = InMemoryDataset(inputs: (0..<32).map { Float($0 % 3) }, labels: (0..<16).map { Float($0 % 2) }, featureSize: 2)
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 2, seed: 1)]), loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1))
        learner.options.verbose = 0
        learner.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: weights, maxToKeep: 1))
        try learner.fit(training: data, epochs: 3, batchSize: 4)
        try assertUntouched(target)
        for name in ["epoch-0001", "epoch-0002"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: weights + "/" + name), "\(name): pruned, the link itself")
        }
        XCTAssertEqual(WeightsDirectory(path: weights).savedEpochs(), [3])
    }

    func testCSVAndRecordsAndPlotsDoNotWriteThroughLinks() throws {
        let target = try outside()
        let csv = root + "/log.csv"
        try FileManager.default.createSymbolicLink(atPath: csv, withDestinationPath: target + "/victim")
        let logger = CSVLogger(path: csv)
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 2, seed: 1)]), loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1))
        learner.options.verbose = 0
        learner.callbacks = [logger]
        let data = InMemoryDataset(inputs: (0..<32).map { Float($0 % 3) }, labels: (0..<16).map { Float($0 % 2) }, featureSize: 2)
        try learner.fit(training: data, epochs: 2, batchSize: 4)
        XCTAssertTrue(try String(contentsOfFile: csv, encoding: .utf8).hasPrefix("epoch,loss"))
        try assertUntouched(target)

        let shard = root + "/part-0.tfrecord"
        try FileManager.default.createSymbolicLink(atPath: shard, withDestinationPath: target + "/victim")
        XCTAssertThrowsError(try TFRecordWriter(path: shard)) { XCTAssertTrue("\($0)".contains("symbolic link"), "\($0)") }
        try assertUntouched(target)
    }

    func testCheckpointFolderNamesAreOnlyTheLibrarys() throws {
        for good in ["epoch-0001", "epoch-12345", "step-0000000042"] {
            XCTAssertTrue(WeightsDirectory.isCheckpointName(good), good)
        }
        for bad in ["epoch--001", "epoch-+001", "epoch-01", "epoch-00001", "step-42", "epoch-0001/..", "../epoch-0001", "epoch-٠٠٠١"] {
            XCTAssertFalse(WeightsDirectory.isCheckpointName(bad), bad)
        }
        let weights = WeightsDirectory(path: root + "/w")
        let model = Sequential([Dense(inputSize: 2, units: 2, seed: 1)])
        for bad in ["../escape", "a/b", ".hidden", "", "-x"] {
            XCTAssertThrowsError(
                try weights.save(
                    model: model, optimizer: SGD(learningRate: 0.1),
                    state: TrainingState(epoch: 1, globalStep: 0, seed: 0, learningRate: 0.1, optimizer: "SGD"), name: bad), bad)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/escape"))
    }
}
