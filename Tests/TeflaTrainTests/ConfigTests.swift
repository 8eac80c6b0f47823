import Foundation
import Learner
import XCTest

@testable import tefla_train

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
        let model = try config.makeModel(sampleShape: [64])
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
        XCTAssertEqual(command.options.gpu, .cpu)
        let other = try XCTUnwrap(TeflaTrain.parseAsRoot(["--config", "x.yml", "--gpu", "0", "--epochs", "3"]) as? Train)
        XCTAssertEqual(other.options.gpu, .devices([0]))
        XCTAssertEqual(other.epochs, 3)
        XCTAssertNotNil(try TeflaTrain.parseAsRoot(["evaluate", "--config", "x.yml", "--gpu", "-1"]) as? Evaluate)
        XCTAssertThrowsError(try TeflaTrain.parseAsRoot(["--config", "x.yml", "--gpu", "-2"]))
    }
}
