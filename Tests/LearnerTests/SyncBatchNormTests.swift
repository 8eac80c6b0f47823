import Foundation
import TestSupport
import XCTest

@testable import Learner

/// Synchronized batch norm: N replicas with B/N samples each normalise with the statistics of
/// the whole global batch, so they end where one replica with B ends, running statistics
/// included; unsynchronized, each replica normalises its own share and they do not.
final class SyncBatchNormTests: XCTestCase {
    /// A dense layer and batch norm over [N, 32] features, then a convolution and batch norm over
    /// [N, 4, 8, 8] images.
    static func learner(synchronized: Bool) -> SupervisedLearner {
        let model = Sequential([
            Dense(inputSize: 64, units: 32, seed: 1),
            BatchNorm2D(features: 32, synchronized: synchronized),
            ActivationLayer(.relu),
            Dense(inputSize: 32, units: 64, seed: 2),
            Reshape([1, 8, 8]),
            Conv2D(inputChannels: 1, outputChannels: 4, kernelSize: 3, padding: 1, seed: 3),
            BatchNorm2D(features: 4, synchronized: synchronized),
            ActivationLayer(.relu),
            Flatten(),
            Dense(inputSize: 256, units: 10, seed: 4),
        ])
        let l = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.05, momentum: 0.9), seed: 3)
        l.options.verbose = 0
        return l
    }

    /// Parameters and buffers (running statistics) of the learner's model.
    static func state(_ l: SupervisedLearner) -> [[Float]] { l.model.namedParametersAndBuffers.map(\.parameter.value.scalars) }

    func replicas(_ n: Int, synchronized: Bool, data: InMemoryDataset) throws -> PerRank<(state: [[Float]], accuracy: Float)> {
        let results = PerRank<(state: [[Float]], accuracy: Float)>()
        try InProcessGroup(size: n, timeout: 60).run { communicator in
            let replica = Self.learner(synchronized: synchronized)
            replica.gradientSynchronizer = DataParallel(communicator)
            let history = try replica.fit(data, epochs: 2, batchSize: 64)
            results.set(communicator.rank, (Self.state(replica), history.epochs.last?.trainAccuracy ?? -1))
        }
        return results
    }

    func testReplicasWithSynchronizedBatchNormTrainAsOneWithTheWholeBatch() throws {
        let data = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let single = Self.learner(synchronized: true)  // one replica: the flag changes nothing
        let reference = try single.fit(data, epochs: 2, batchSize: 64)
        let expected = Self.state(single)
        func worst(_ got: [[Float]]) -> Float {
            zip(got, expected).map { a, b in zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0 }.max() ?? 0
        }
        for n in [2, 4] {
            let results = try replicas(n, synchronized: true, data: data)
            for rank in 0..<n {
                let got = try XCTUnwrap(results[rank]?.state)
                XCTAssertTrue(got.allSatisfy { $0.allSatisfy(\.isFinite) }, "N = \(n), rank \(rank)")
                XCTAssertLessThan(worst(got), 1e-4, "N = \(n), rank \(rank): weights and running statistics against one replica")
                if rank == 0 { print("synchronized batch norm, \(n) replicas: largest relative difference \(worst(got))") }
                XCTAssertEqual(
                    try XCTUnwrap(results[rank]?.accuracy), try XCTUnwrap(reference.epochs.last?.trainAccuracy), accuracy: 2e-3,
                    "N = \(n), rank \(rank): training accuracy of the global batch")
            }
        }
        // Each replica normalising its own share of 16 samples ends elsewhere: the check above is not vacuous.
        let separate = try replicas(4, synchronized: false, data: data)
        let apart = worst(try XCTUnwrap(separate[0]?.state))
        print("unsynchronized, 4 replicas: largest relative difference \(apart)")
        XCTAssertGreaterThan(apart, 1e-3)
    }
}
