import Foundation
import TestSupport
import XCTest

@testable import Learner

/// `fit` with a replica group: N replicas, each given its share of every global batch by `fit`,
/// end where one replica with the whole batch ends (within float rounding of the sums).
final class DataParallelFitTests: XCTestCase {
    static func learner(initSeed: UInt64) -> SupervisedLearner {
        let model = Sequential([
            Dense(inputSize: 64, units: 32, activation: .relu, seed: initSeed),
            Dropout(rate: 0.1),
            Dense(inputSize: 32, units: 10, seed: initSeed + 1),
        ])
        let l = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 9)
        l.options.verbose = 0
        return l
    }

    func testReplicasInOneProcessTrainAsOneReplicaWithTheWholeBatch() throws {
        let data = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let single = Self.learner(initSeed: 1)
        // 1437 samples in batches of 64: the short last batch (29) splits unevenly across ranks.
        let reference = try single.fit(data, epochs: 2, batchSize: 64)
        let expected = single.model.parameters.map(\.value.scalars)

        let logs = try Scratch.directory("tefla-dp-fit", for: self).path
        for n in [2, 4] {
            let results = PerRank<(weights: [[Float]], losses: [Float])>()
            try InProcessGroup(size: n, timeout: 60).run { communicator in
                // Other initial weights on other ranks: rank 0's are broadcast before the first step.
                let replica = Self.learner(initSeed: 1 + UInt64(communicator.rank) * 100)
                replica.gradientSynchronizer = DataParallel(communicator)
                replica.callbacks = [CSVLogger(path: logs + "/n\(n)-rank\(communicator.rank).csv")]
                let history = try replica.fit(data, epochs: 2, batchSize: 64)
                results.set(communicator.rank, (replica.model.parameters.map(\.value.scalars), history.epochs.map(\.trainLoss)))
            }
            for rank in 0..<n {
                let weights = try XCTUnwrap(results[rank]?.weights)
                for (got, want) in zip(weights, expected) {
                    XCTAssertTrue(got.allSatisfy(\.isFinite), "N = \(n), rank \(rank): not finite")  // max() passes over NaN
                    let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertLessThan(worst, 1e-5, "N = \(n), rank \(rank)")
                }
                for (got, want) in zip(try XCTUnwrap(results[rank]?.losses), reference.epochs.map(\.trainLoss)) {
                    XCTAssertEqual(got, want, accuracy: 1e-5 * max(1, abs(want)), "N = \(n), rank \(rank): epoch loss")
                }
            }
            XCTAssertEqual(results[0]!.weights, results[n - 1]!.weights, "every replica holds the same weights")
            let written = try FileManager.default.contentsOfDirectory(atPath: logs).filter { $0.hasPrefix("n\(n)-") }
            XCTAssertEqual(written, ["n\(n)-rank0.csv"], "rank 0 alone runs callbacks that write files")
        }
    }
}
