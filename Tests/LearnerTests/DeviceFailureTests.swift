import Foundation
import TestSupport
import XCTest

@testable import Learner

/// A failing CUDA call is recorded instead of trapping; the learner throws it at the next step
/// and never puts a checkpoint in place after it. The failure is injected here (no GPU is
/// needed to see the learner's side of it).
final class DeviceFailureTests: XCTestCase {
    override func tearDown() {
        CUDAContext.clearFailure()
    }

    func testARecordedFailureIsThrownAtTheNextStepAndKeepsTheLastCheckpoint() throws {
        let dir = try Scratch.directory("tefla-device-failure", for: self).path
        let data = InMemoryDataset(
            inputs: (0..<64).map { Float($0 % 5) / 5 }, labels: (0..<32).map { Float($0 % 2) }, featureSize: 2)
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 2, seed: 3)]), loss: .softmaxCrossEntropy(),
            optimizer: SGD(learningRate: 0.1))
        learner.options.verbose = 0
        learner.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: dir))
        try learner.fit(training: data, epochs: 1, batchSize: 8)
        let saved = try Data(contentsOf: URL(fileURLWithPath: dir + "/epoch-0001/model.safetensors"))

        CUDAContext.check(7, "an injected kernel launch")
        XCTAssertThrowsError(try learner.trainStep(inputs: Tensor.zeros([2, 2]), labels: Tensor(shape: [2], scalars: [0, 1]))) {
            XCTAssertTrue("\($0)".hasPrefix("an injected kernel launch: "), "\($0)")
        }
        let stepsBefore = learner.globalStep
        learner.checkpoint?.discardsNewerCheckpoints = true
        XCTAssertThrowsError(try learner.fit(training: data, startEpoch: 2, epochs: 2, batchSize: 8))
        XCTAssertEqual(learner.globalStep, stepsBefore, "no step after the failure")
        XCTAssertThrowsError(
            try learner.saveCheckpoint(to: WeightsDirectory(path: dir), state: learner.trainingState(epoch: 2, values: [:], config: nil)))
        XCTAssertEqual(WeightsDirectory(path: dir).savedEpochs(), [1], "no checkpoint put in place after the failure")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/epoch-0001/model.safetensors")), saved)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }, [], "no temporary folder left")
    }
}
