import Foundation
import TestSupport
import XCTest

@testable import tefla_train

/// Every example config in Configs/ trains, for one epoch, through the built trainer: a config
/// whose data is missing or whose run fails is a failure here, so only runnable examples ship.
final class ShippedConfigRunTests: XCTestCase {
    static func shippedConfigs() throws -> [String] {
        let dir = ConfigTests.root.appendingPathComponent("Configs").path
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yml") }.sorted()
            .map { "Configs/" + $0 }
    }

    /// Overrides that send every file a config writes (summaries, logs, checkpoints, plots) to `dir`.
    static func outputOverrides(_ config: TrainConfig, text: String, dir: String) -> [String] {
        var overrides: [String] = []
        if config.summaryDir != nil { overrides += ["--override", "summary.dir=\(dir)/summaries"] }
        if config.csvLog != nil { overrides += ["--override", "training.csv_log=\(dir)/log.csv"] }
        if config.checkpoint.weightsDir != nil { overrides += ["--override", "checkpoint.weights_dir=\(dir)/weights"] }
        if hasLRFinder(text) { overrides += ["--override", "lr_finder.plot=\(dir)/lr.svg"] }
        return overrides
    }

    static func hasLRFinder(_ text: String) -> Bool { text.split(separator: "\n").contains { $0.hasPrefix("lr_finder:") } }

    /// The training loss of the first epoch line (`Epoch 1/1 - 0.12s - loss: 0.4321 - ...`).
    static func firstEpochLoss(_ output: String) -> Float? {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Epoch 1/1 - ") }),
            let range = line.range(of: " - loss: ")
        else { return nil }
        return Float(line[range.upperBound...].prefix { $0 != " " })
    }

    func testEveryShippedConfigTrainsOneEpochWithAFiniteLoss() throws {
        let configs = try Self.shippedConfigs()
        let scratch = try Scratch.directory("tefla-configs", for: self).path
        XCTAssertGreaterThanOrEqual(configs.count, 6, "\(configs)")
        for path in configs {
            let text = try String(contentsOf: ConfigTests.root.appendingPathComponent(path), encoding: .utf8)
            let config = try TrainConfig.parse(yaml: text, file: path)
            for dir in [config.trainDir] + (config.valDir.map { [$0] } ?? []) {
                let files =
                    (try? FileManager.default.contentsOfDirectory(
                        atPath: ConfigTests.root.appendingPathComponent(dir).path)) ?? []
                XCTAssertFalse(files.isEmpty, "\(path): its data folder \(dir) is missing or empty")
            }
            let out = scratch + "/" + URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let result = try Trainer.run(
                ["--config", path, "--epochs", "1", "--verbose", "2"] + Self.outputOverrides(config, text: text, dir: out))
            XCTAssertEqual(result.status, 0, "\(path): \(result.error)")
            let loss = Self.firstEpochLoss(result.output)
            XCTAssertNotNil(loss, "\(path): no epoch line in\n\(result.output)")
            XCTAssertTrue(loss?.isFinite ?? false, "\(path): loss \(String(describing: loss))")
            XCTAssertTrue(result.output.contains("tefla-train: done"), "\(path): \(result.output)")

            if Self.hasLRFinder(text) {
                let sweep = try Trainer.run(
                    ["lr-find", "--config", path, "--override", "lr_finder.iterations=30"]
                        + Self.outputOverrides(config, text: text, dir: out))
                XCTAssertEqual(sweep.status, 0, "\(path) lr-find: \(sweep.error)")
                XCTAssertTrue(sweep.output.contains("suggested range"), "\(path) lr-find: \(sweep.output)")
                XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/lr.svg"), path)
            }
        }
    }
}
