import Foundation
import XCTest

@testable import Learner

/// The progress bar: drawn and throttled on a terminal, plain epoch lines without one.
final class ProgressBarTests: XCTestCase {
    func testProgressBarRendersAndThrottles() {
        var out: [String] = []
        let t0 = Date(timeIntervalSince1970: 1000)
        var bar = ProgressBar(epoch: 2, epochs: 5, totalBatches: 10, isTerminal: true, started: t0) { out.append($0) }
        bar.width = 10
        var reads = 0
        for b in 1...10 {
            // 40 ms a batch: at most one redraw per 100 ms.
            bar.update(batch: b, samples: b * 32, now: t0.addingTimeInterval(0.04 * Double(b))) {
                reads += 1
                return [("loss", 0.5)]
            }
        }
        XCTAssertEqual(reads, bar.draws)
        XCTAssertLessThanOrEqual(bar.draws, 5)
        XCTAssertTrue(out[0].hasPrefix("\rEpoch 2/5  1/10 [=>........] - ETA: "), out[0])
        XCTAssertTrue(out[0].contains("samples/s - loss: 0.5000"), out[0])
        let line = bar.render(batch: 10, samples: 320, now: t0.addingTimeInterval(2), values: [])
        XCTAssertTrue(line.hasPrefix("Epoch 2/5 10/10 [==========] - 2s - 160 samples/s"), line)
        var plain: [String] = []
        var quiet = ProgressBar(epoch: 1, epochs: 1, totalBatches: 100, isTerminal: false, started: t0) {
            plain.append($0)
        }
        for b in 1...100 { quiet.update(batch: b, samples: b, now: t0.addingTimeInterval(Double(b) * 0.25)) { [] } }
        XCTAssertEqual(plain.count, 2, "a plain line every 10 s: at 10 s and 20 s of 25 s")
        XCTAssertFalse(plain[0].contains("\r"))
    }

    func testVerboseOneWithoutTerminalLogsEpochLines() throws {
        let data = InMemoryDataset(
            inputs: (0..<64).map { Float($0 % 5) }, labels: (0..<32).map { Float($0 % 2) }, featureSize: 2)
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 2)]), loss: .softmaxCrossEntropy(),
            optimizer: SGD(learningRate: 0.01))
        var lines: [String] = []
        var drawn: [String] = []
        l.options.verbose = 1
        l.options.log = { lines.append($0) }
        l.options.progressOutput = { drawn.append($0) }
        try l.fit(training: data, epochs: 2, batchSize: 8)
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[1].hasPrefix("Epoch 2/2 - "), lines[1])
        XCTAssertTrue(drawn.contains { $0.contains("Epoch 1/2 1/4 [") }, "\(drawn)")
        XCTAssertEqual(drawn.last, "\r\u{1B}[K")
    }
}
