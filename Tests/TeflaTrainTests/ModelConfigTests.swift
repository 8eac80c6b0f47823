import Foundation
import Learner
import XCTest

@testable import tefla_train

/// Convolutional models and zoo names in the config.
final class ModelConfigTests: XCTestCase {
    func testTheDigitsCNNConfigReachesValidationAccuracy() throws {
        let result = try Trainer.run(["--config", "Configs/digits-cnn.yml", "--verbose", "2"])
        XCTAssertEqual(result.status, 0, result.error)
        let accuracy = try XCTUnwrap(result.output.components(separatedBy: "final val_accuracy: ").last.flatMap { Float($0.prefix(6)) })
        XCTAssertGreaterThanOrEqual(accuracy, 0.98, result.output)
    }

    func testZooNamesBuildTheirModels() throws {
        _ = FileManager.default.changeCurrentDirectoryPath(ConfigTests.root.path)
        let yaml = """
            model: {name: small_cnn, classes: 10}
            data: {train_dir: Data/digits/train, input_shape: [1, 8, 8]}
            """
        let cfg = try TrainConfig.parse(yaml: yaml, file: "zoo.yml")
        let model = try cfg.makeModel(sampleShape: [64])
        model.eval()
        XCTAssertEqual(withoutGradients { model(Tensor.zeros([2, 64])) }.shape, [2, 10])
        let mlp = try TrainConfig.parse(
            yaml: "model: {name: mlp, classes: 10, hidden: [32, 16]}\ndata: {train_dir: Data/digits/train}\n", file: "mlp.yml")
        XCTAssertEqual(try mlp.makeModel(sampleShape: [64]).parameterCount, 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10)
    }

    func testImageLayersWithoutAnInputShapeAreNamed() {
        let yaml = """
            model:
              layers:
                - {type: dense, units: 8}
                - {type: conv2d, filters: 4}
            data: {train_dir: Data/digits/train}
            """
        _ = FileManager.default.changeCurrentDirectoryPath(ConfigTests.root.path)
        // Known once the records are: feature vectors of 64 values.
        let config = try? TrainConfig.parse(yaml: yaml, file: "c.yml")
        XCTAssertThrowsError(try XCTUnwrap(config).makeModel(sampleShape: [64])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("line 4, column 7: model.layers[1]: conv2d needs image-shaped samples: set data.input_shape"), text)
            XCTAssertTrue(text.contains("holds 64 values, not encoded images"), text)
        }
        XCTAssertThrowsError(
            try TrainConfig.parse(yaml: "model: {name: resnet99, classes: 3}\ndata: {train_dir: Data/digits/train}\n", file: "z.yml")
        ) { error in
            XCTAssertTrue("\(error)".contains("'resnet99' is not one of mlp, small_cnn, resnet18"), "\(error)")
        }
    }
}
