import Foundation
import XCTest
@testable import tefla_train
import Learner

final class ConfigTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    override func setUp() {
        _ = FileManager.default.changeCurrentDirectoryPath(Self.root.path)
    }

    func testEveryShippedConfigParses() throws {
        let dir = Self.root.appendingPathComponent("Configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yml") }
        XCTAssertFalse(files.isEmpty)
        for file in files {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            XCTAssertNoThrow(try TrainConfig.parse(yaml: text, file: file), file)
        }
    }

    func testDigitsConfigValues() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Configs/digits-mlp.yml"), encoding: .utf8)
        let config = try TrainConfig.parse(yaml: text, file: "digits-mlp.yml")
        XCTAssertEqual(config.layers.map(\.kind), [.dense, .dropout, .dense])
        XCTAssertEqual(config.layers.last?.units, 10)
        XCTAssertEqual(config.trainDir, "Data/digits/train")
        XCTAssertEqual(config.batchSize, 32)
        XCTAssertEqual(config.optimizerName, "adam")
        let model = config.makeModel(inputSize: 64)
        XCTAssertEqual(model.namedParameters.map(\.name), ["0.weight", "0.bias", "2.weight", "2.bias"])
        XCTAssertEqual(model.parameterCount, 64 * 128 + 128 + 128 * 10 + 10)
    }

    func testAllMistakesReportedWithLineAndColumn() {
        let yaml = """
            model:
              layers:
                - {type: dense, units: 0}
                - {type: dropuot, rate: 0.5}
            data:
              train_dir: Data/digits/train
              val_dir: /no/such/dir
              batch_sise: 32
            optimizer:
              name: adam
              learning_rate: -0.1
            training:
              epochs: many
            """
        XCTAssertThrowsError(try TrainConfig.parse(yaml: yaml, file: "bad.yml")) { error in
            guard let error = error as? ConfigError else { return XCTFail("\(error)") }
            let text = error.description
            XCTAssertTrue(text.hasPrefix("bad.yml: 6 problems"), text)
            let byPath = Dictionary(error.issues.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(byPath["model.layers[0].units"]?.line, 3)
            XCTAssertTrue(byPath["model.layers[0].units"]?.message.contains(">= 1") ?? false)
            XCTAssertEqual(byPath["model.layers[1].type"]?.line, 4)
            XCTAssertTrue(byPath["model.layers[1].type"]?.message.contains("did you mean 'dropout'") ?? false, text)
            XCTAssertEqual(byPath["data.val_dir"]?.line, 7)
            XCTAssertTrue(byPath["data.val_dir"]?.message.contains("/no/such/dir") ?? false)
            XCTAssertEqual(byPath["data.batch_sise"]?.line, 8)
            XCTAssertEqual(byPath["data.batch_sise"]?.column, 3)
            XCTAssertTrue(byPath["data.batch_sise"]?.message.contains("did you mean 'batch_size'") ?? false, text)
            XCTAssertEqual(byPath["optimizer.learning_rate"]?.line, 11)
            XCTAssertEqual(byPath["training.epochs"]?.line, 13)
            XCTAssertTrue(byPath["training.epochs"]?.message.contains("expected an integer") ?? false)
        }
    }

    func testMissingSectionsAndEmptyFile() {
        XCTAssertThrowsError(try TrainConfig.parse(yaml: "", file: "empty.yml")) { error in
            XCTAssertTrue("\(error)".contains("empty"), "\(error)")
        }
        XCTAssertThrowsError(try TrainConfig.parse(yaml: "training: {epochs: 3}\n", file: "partial.yml")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("model: required section is missing"), text)
            XCTAssertTrue(text.contains("data: required section is missing"), text)
        }
    }

    func testGpuMinusOneParsesAsCPU() throws {
        let command = try XCTUnwrap(TeflaTrain.parseAsRoot(["--config", "x.yml", "--gpu", "-1"]) as? Train)
        XCTAssertEqual(command.options.gpu, -1)
        let other = try XCTUnwrap(TeflaTrain.parseAsRoot(["--config", "x.yml", "--gpu", "0", "--epochs", "3"]) as? Train)
        XCTAssertEqual(other.options.gpu, 0)
        XCTAssertEqual(other.epochs, 3)
        XCTAssertNotNil(try TeflaTrain.parseAsRoot(["evaluate", "--config", "x.yml", "--gpu", "-1"]) as? Evaluate)
        XCTAssertThrowsError(try TeflaTrain.parseAsRoot(["--config", "x.yml", "--gpu", "-2"]))
    }
}

/// Runs the built `tefla-train` executable as a user would.
final class CommandLineTests: XCTestCase {
    var executable: URL { Self.executable }

    static var executable: URL {
        // The test bundle sits in the build products folder beside the executables.
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("tefla-train").path) && dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("tefla-train")
    }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) { try Self.run(arguments) }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = ConfigTests.root
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    func testTrainsDigitsFromTheShippedConfig() throws {
        let result = try run(["--config", "Configs/digits-mlp.yml", "--epochs", "8", "--gpu", "-1"])
        XCTAssertEqual(result.status, 0, result.error)
        let epochLines = result.output.split(separator: "\n").filter { $0.hasPrefix("Epoch ") }
        XCTAssertEqual(epochLines.count, 8, result.output)
        XCTAssertTrue(result.output.contains("final val_accuracy"), result.output)
    }

    func testBadConfigExitsWithCode2AndNamesTheLine() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tefla-bad-\(getpid()).yml")
        try "model:\n  layers:\n    - {type: dense, units: 10}\ndata:\n  train_dir: Data/digits/train\n  bach_size: 4\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try run(["--config", file.path])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.error.contains("line 6, column 3: data.bach_size"), result.error)
    }

    func testUnusableGPUGivesAClearErrorNotACrash() throws {
        guard CUDAContext.deviceCount == 0 else { throw XCTSkip("a CUDA GPU is present: the no-GPU path cannot be exercised") }
        let result = try run(["--config", "Configs/digits-mlp.yml", "--gpu", "0"])
        XCTAssertEqual(result.status, 2, result.error)
        XCTAssertTrue(result.error.contains("--gpu 0:"), result.error)
        if CUDAContext.isBuiltIn {
            // With the toolkit's libcuda stub installed, cuInit runs for real and reports no device.
            XCTAssertTrue(result.error.contains("CUDA") || result.error.contains("libcuda"), result.error)
        } else {
            XCTAssertTrue(result.error.contains("no CUDA support"), result.error)
        }
        let version = try run(["--version"])
        XCTAssertTrue(version.output.contains(CUDAContext.isBuiltIn ? "CUDA support: built in" : "CUDA support: not built in"), version.output)
    }

    func testVersionAndHelp() throws {
        let version = try run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.output.contains("tefla-train 0.1.0"), version.output)
        let help = try run(["--help"])
        XCTAssertTrue(help.output.contains("--gpu"), help.output)
        XCTAssertTrue(help.output.contains("Examples:"), help.output)
    }
}
