import Foundation
import FoundationXML
import TestSupport
import XCTest

@testable import Learner

/// `History.plot(to:)` and the `HistoryPlot` callback: an SVG of the curves that any viewer
/// parses, holding the numbers it plots, continued across a resumed run.
final class HistoryPlotTests: XCTestCase {
    private func learner(weights: String, plot: String) -> SupervisedLearner {
        let model = Sequential([Dense(inputSize: 64, units: 32, activation: .relu, seed: 1), Dense(inputSize: 32, units: 10, seed: 2)])
        let l = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 5)
        l.options.verbose = 0
        l.options.schedule = OneCycleLR(maxLR: 1e-2, totalSteps: 5 * 23)
        l.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: weights, maxToKeep: 2))
        l.callbacks = [HistoryPlot(path: plot)]
        return l
    }

    func testThePlotIsWellFormedSVGWithAPanelPerValue() throws {
        let dir = try Scratch.directory("tefla-plot", for: self).path
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let val = try InMemoryDataset.load(directory: DataTestFiles.digits + "/val", keys: FeatureKeys())
        let l = learner(weights: dir + "/w", plot: dir + "/unused.svg")
        l.callbacks = []
        let history = try l.fit(training: train, validation: val, epochs: 3, batchSize: 64)
        try history.plot(to: dir + "/h.svg")
        let document = try XMLDocument(contentsOf: URL(fileURLWithPath: dir + "/h.svg"))
        XCTAssertEqual(document.rootElement()?.name, "svg")
        let titles = try document.nodes(forXPath: "//*[local-name()='text'][@font-size='13']").compactMap(\.stringValue)
        XCTAssertEqual(titles, ["loss", "accuracy", "lr"])
        let lines = try document.nodes(forXPath: "//*[local-name()='polyline']/@points").compactMap(\.stringValue)
        XCTAssertEqual(lines.count, 5, "loss and accuracy: training and validation; the learning rate alone")
        for points in lines { XCTAssertEqual(points.split(separator: " ").count, 3, "one point per epoch: \(points)") }
        let plotted = History.plotted(in: dir + "/h.svg")
        XCTAssertEqual(plotted.map(\.epoch), [1, 2, 3])
        for (row, log) in zip(plotted, history.epochs) {
            // Kept to 15 digits: every Float comes back exactly.
            XCTAssertEqual(row.values["loss"].map(Float.init), log.trainLoss)
            XCTAssertEqual(row.values["val_accuracy"].map(Float.init), log.validationAccuracy)
            XCTAssertEqual(row.values["lr"].map(Float.init), log.learningRate)
        }
    }

    /// Stopped after epoch 3 and resumed: the plot holds epochs 1-5, the first three as the
    /// first run wrote them; a run started over (epoch 1) starts the plot over.
    func testAResumedRunContinuesThePlot() throws {
        let dir = try Scratch.directory("tefla-plot", for: self).path
        let train = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let first = try learner(weights: dir + "/w", plot: dir + "/w/history.svg").fit(training: train, epochs: 3, batchSize: 64)
        XCTAssertEqual(History.plotted(in: dir + "/w/history.svg").map(\.epoch), [1, 2, 3], "rewritten after every epoch")
        let resumed = learner(weights: dir + "/w", plot: dir + "/w/history.svg")
        XCTAssertEqual(try resumed.resumeEpoch(), 4)
        _ = try resumed.fit(training: train, startEpoch: 4, epochs: 5, batchSize: 64)
        let plotted = History.plotted(in: dir + "/w/history.svg")
        XCTAssertEqual(plotted.map(\.epoch), [1, 2, 3, 4, 5])
        XCTAssertEqual(plotted.prefix(3).map { $0.values["loss"].map(Float.init) }, first.epochs.map(\.trainLoss))
        _ = try learner(weights: dir + "/w2", plot: dir + "/w/history.svg").fit(training: train, epochs: 1, batchSize: 64)
        XCTAssertEqual(History.plotted(in: dir + "/w/history.svg").map(\.epoch), [1])
    }
}
