import Foundation
import TestSupport
import XCTest

@testable import tefla_train

/// The subcommands and overrides, run as a user runs them.
final class SubcommandTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = try Scratch.directory("tefla-sub", for: self).path
    }

    func testTrainThenEvaluateAndPredictFromTheWeightsDirectory() throws {
        let weights = scratch + "/w"
        let train = try Trainer.run([
            "--config", "Configs/digits-mlp.yml", "--epochs", "6", "--verbose", "0",
            "--override", "checkpoint.weights_dir=\(weights)", "--override", "checkpoint.max_to_keep=1",
        ])
        XCTAssertEqual(train.status, 0, train.error)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: weights).filter { $0.hasPrefix("epoch-") }, ["epoch-0006"])

        let evaluate = try Trainer.run([
            "evaluate", "--config", "Configs/digits-mlp.yml", "--override", "checkpoint.weights_dir=\(weights)",
        ])
        XCTAssertEqual(evaluate.status, 0, evaluate.error)
        XCTAssertTrue(evaluate.output.contains("evaluate: 360 samples"), evaluate.output)
        let accuracy = try XCTUnwrap(evaluate.output.components(separatedBy: "accuracy: ").last.flatMap { Float($0.prefix(6)) })
        XCTAssertGreaterThan(accuracy, 0.9, evaluate.output)

        let csv = scratch + "/p.csv"
        let predict = try Trainer.run([
            "predict", "--config", "Configs/digits-mlp.yml", "--override", "checkpoint.weights_dir=\(weights)",
            "--checkpoint", weights + "/epoch-0006", "--output", csv,
        ])
        XCTAssertEqual(predict.status, 0, predict.error)
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 361)
        XCTAssertEqual(lines[0], "index,label,prediction,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9")
        // The CSV's predictions give the accuracy that evaluate printed.
        let correct = lines.dropFirst().filter { line in
            let f = line.split(separator: ",")
            return Float(f[1]) == Float(f[2])
        }.count
        XCTAssertEqual(Float(correct) / 360, accuracy, accuracy: 2e-3)
    }

    func testLRFindWritesItsPlotAndSuggestsARange() throws {
        let plot = scratch + "/lr.svg"
        let result = try Trainer.run(["lr-find", "--config", "Configs/digits-lr-finder.yml", "--override", "lr_finder.plot=\(plot)"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("lr finder: suggested range"), result.output)
        let svg = try String(contentsOfFile: plot, encoding: .utf8)
        XCTAssertTrue(svg.contains("<svg") && svg.contains("</svg>"), String(svg.prefix(200)))
    }

    func testEvaluateWithoutWeightsIsAClearError() throws {
        let result = try Trainer.run(["evaluate", "--config", "Configs/digits-mlp.yml"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.error.contains("no trained weights"), result.error)
    }

    func testSummaryListsLayersShapesAndParameterCounts() throws {
        let result = try Trainer.run(["summary", "--config", "Configs/digits-mlp.yml"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(
            result.output.contains("Dense") && result.output.contains("[None, 128]") && result.output.contains("[None, 10]"), result.output)
        XCTAssertTrue(result.output.contains("Total params: 9610"), result.output)
    }

    func testOverridesApplyAndTheirMistakesAreNamed() throws {
        let text = try String(contentsOfFile: ConfigTests.root.path + "/Configs/digits-mlp.yml", encoding: .utf8)
        let cfg = try TrainConfig.parse(
            yaml: text, file: "digits-mlp.yml",
            overrides: [
                try ConfigOverride("optimizer.learning_rate=0.05"), try ConfigOverride("model.layers.0.units=64"),
                try ConfigOverride("training.metrics=[accuracy, kappa]"),
            ])
        XCTAssertEqual(cfg.learningRate, 0.05)
        XCTAssertEqual(cfg.layers[0].units, 64)
        XCTAssertEqual(cfg.metricNames, ["accuracy", "kappa"])
        XCTAssertThrowsError(try TrainConfig.parse(yaml: text, file: "x.yml", overrides: [try ConfigOverride("training.epochs=-3")])) {
            error in
            XCTAssertTrue("\(error)".contains("--override: training.epochs: must be >= 1, got -3"), "\(error)")
        }
        XCTAssertThrowsError(try TrainConfig.parse(yaml: text, file: "x.yml", overrides: [try ConfigOverride("optimizer.name.x=1")])) {
            error in
            XCTAssertTrue("\(error)".contains("optimizer.name is a value, not a section"), "\(error)")
        }
        let bad = try Trainer.run(["--config", "Configs/digits-mlp.yml", "--override", "data.batchsize=3"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.error.contains("data.batchsize: unknown key (did you mean 'batch_size'?)"), bad.error)
    }
}
