import XCTest

@testable import Learner

/// Schedules against hand-computed values and PyTorch's OneCycleLR/CyclicLR (torch 2.x, SGD
/// with momentum; the values of `param_groups[0]` before each `optimizer.step()`).
final class ScheduleTests: XCTestCase {
    func assertClose(
        _ a: Float?, _ b: Double, _ message: String = "", file: StaticString = #filePath, line: UInt = #line
    ) {
        guard let a else { return XCTFail("nil, expected \(b) \(message)", file: file, line: line) }
        XCTAssertEqual(Double(a), b, accuracy: max(1e-6, abs(b) * 1e-5), message, file: file, line: line)
    }

    func testConstantStepExponentialPolynomial() {
        assertClose(ConstantLR(0.3).learningRate(at: 1000), 0.3)
        let step = StepDecayLR(base: 0.1, gamma: 0.5, stepSize: 10)
        assertClose(step.learningRate(at: 0), 0.1)
        assertClose(step.learningRate(at: 9), 0.1)
        assertClose(step.learningRate(at: 10), 0.05)
        assertClose(step.learningRate(at: 25), 0.025)
        let exp = ExponentialDecayLR(base: 0.1, gamma: 0.5, decaySteps: 10)
        assertClose(exp.learningRate(at: 5), 0.1 * pow(0.5, 0.5))
        assertClose(
            ExponentialDecayLR(base: 0.1, gamma: 0.5, decaySteps: 10, staircase: true).learningRate(at: 15), 0.05)
        let poly = PolynomialDecayLR(base: 0.1, endLR: 0.01, decaySteps: 100, power: 2)
        assertClose(poly.learningRate(at: 0), 0.1)
        assertClose(poly.learningRate(at: 50), 0.09 * 0.25 + 0.01)
        assertClose(poly.learningRate(at: 100), 0.01)
        assertClose(poly.learningRate(at: 500), 0.01)
    }

    func testCosineWithWarmup() {
        let s = CosineWarmupLR(base: 0.1, warmupSteps: 10, totalSteps: 110, minLR: 0.001)
        assertClose(s.learningRate(at: 0), 0)
        assertClose(s.learningRate(at: 5), 0.05)
        assertClose(s.learningRate(at: 10), 0.1)
        assertClose(s.learningRate(at: 60), 0.001 + 0.099 * 0.5)
        assertClose(s.learningRate(at: 110), 0.001)
        assertClose(s.learningRate(at: 200), 0.001)
    }

    func testOneCycleMatchesPyTorch() {
        // torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100)
        let s = OneCycleLR(maxLR: 0.1, totalSteps: 100)
        let expected: [(Int, Double, Double)] = [
            (0, 0.004, 0.95), (1, 0.004281378056590748, 0.9497068978577179),
            (10, 0.029516394846410082, 0.9234204220349895),
            (29, 0.1, 0.85), (30, 0.09994965352845243, 0.8500503466729342),
            (50, 0.0793893450575732, 0.8706107373853763),
            (99, 4e-07, 0.95),
        ]
        for (step, lr, momentum) in expected {
            assertClose(s.learningRate(at: step), lr, "lr at \(step)")
            assertClose(s.momentum(at: step), momentum, "momentum at \(step)")
        }
    }

    func testCyclicMatchesPyTorch() {
        // CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up=10, step_size_down=5, gamma=0.99,
        //          base_momentum=0.8, max_momentum=0.9)
        let expected: [CyclicLR.Mode: [(Int, Double, Double)]] = [
            .triangular: [
                (0, 0.01, 0.9), (3, 0.037, 0.87), (10, 0.1, 0.8), (12, 0.064, 0.84), (15, 0.01, 0.9),
                (25, 0.1, 0.8), (33, 0.037, 0.87), (47, 0.028, 0.88),
            ],
            .triangular2: [
                (0, 0.01, 0.9), (3, 0.037, 0.87), (10, 0.1, 0.8), (12, 0.064, 0.84), (15, 0.01, 0.9),
                (25, 0.055, 0.85), (33, 0.01675, 0.8925), (47, 0.01225, 0.8975),
            ],
            .expRange: [
                (0, 0.01, 0.9), (3, 0.036198073, 0.87089103), (10, 0.0913943867507924, 0.8095617924991196),
                (12, 0.05786478307267097, 0.8468169076970323), (15, 0.01, 0.9),
                (25, 0.08000392234592314, 0.8222178640600855), (33, 0.029378724380153445, 0.8784680840220518),
                (47, 0.021223457108041563, 0.887529492102176),
            ],
        ]
        for (mode, points) in expected {
            let s = CyclicLR(
                baseLR: 0.01, maxLR: 0.1, stepSizeUp: 10, stepSizeDown: 5, mode: mode, gamma: 0.99,
                momentumRange: (0.8, 0.9))
            for (step, lr, momentum) in points {
                assertClose(s.learningRate(at: step), lr, "\(mode) lr at \(step)")
                assertClose(s.momentum(at: step), momentum, "\(mode) momentum at \(step)")
            }
        }
    }

    func testResumeOverride() {
        let inner = StepDecayLR(base: 0.1, gamma: 0.5, stepSize: 10)
        let rescaled = ResumeLR(inner, resumeLR: 0.02, fromStep: 10)
        assertClose(rescaled.learningRate(at: 5), 0.1)
        assertClose(rescaled.learningRate(at: 10), 0.02)
        assertClose(rescaled.learningRate(at: 20), 0.01)
        let fixed = ResumeLR(inner, resumeLR: 0.02, fromStep: 10, rescale: false)
        assertClose(fixed.learningRate(at: 20), 0.02)
    }

    func testLearnerAppliesScheduleAndMomentumPerStep() throws {
        let data = InMemoryDataset(
            inputs: (0..<40).map { Float($0 % 7) / 7 }, labels: (0..<20).map { Float($0 % 2) },
            featureSize: 2)
        let sgd = SGD(learningRate: 1, momentum: 0.5)
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 2, seed: 1)]),
            loss: .softmaxCrossEntropy(), optimizer: sgd, seed: 1)
        learner.options.verbose = 0
        let schedule = OneCycleLR(maxLR: 0.1, totalSteps: 20)
        learner.options.schedule = schedule
        let logger = LearningRateLogger()
        learner.callbacks = [logger]
        try learner.fit(training: data, epochs: 4, batchSize: 4)  // 5 steps an epoch
        XCTAssertEqual(logger.learningRates, (0..<20).map { schedule.learningRate(at: $0) })
        XCTAssertEqual(logger.momenta, (0..<20).compactMap { schedule.momentum(at: $0) })
        XCTAssertEqual(sgd.momentum, schedule.momentum(at: 19))
        // Resuming at epoch 3 continues at step 10: the schedule is a function of the global step.
        let resumed = LearningRateLogger()
        learner.callbacks = [resumed]
        try learner.fit(training: data, startEpoch: 3, epochs: 4, batchSize: 4)
        XCTAssertEqual(resumed.learningRates, Array(logger.learningRates[10...]))
        let adam = Adam(learningRate: 1)
        let second = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 2)]), loss: .softmaxCrossEntropy(),
            optimizer: adam)
        second.options.schedule = schedule
        second.applySchedule(step: 0)
        XCTAssertEqual(adam.beta1, 0.95)
        XCTAssertEqual(adam.learningRate, schedule.learningRate(at: 0))
    }

    func testAScheduleWithoutItsLengthIsRefusedOutsideFit() throws {
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 1, units: 1, seed: 1)]), loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1))
        l.options.schedule = OneCycleLR(maxLR: 0.1)
        XCTAssertThrowsError(try l.trainStep(inputs: Tensor(shape: [1, 1], scalars: [1]), labels: Tensor([1]))) { error in
            XCTAssertTrue("\(error)".contains("OneCycleLR has no totalSteps"), "\(error)")
        }
        XCTAssertEqual(l.globalStep, 0, "nothing trained")
        l.options.schedule = ResumeLR(CosineWarmupLR(base: 0.1), resumeLR: 0.01)
        XCTAssertThrowsError(try l.trainStep(inputs: Tensor(shape: [1, 1], scalars: [1]), labels: Tensor([1])))
        // Inside fit the run's length is known.
        l.options.verbose = 0
        try l.fit(training: InMemoryDataset(inputs: [0, 1, 2, 3], labels: [1, 3, 5, 7], featureSize: 1), epochs: 2, batchSize: 2)
        XCTAssertEqual(l.globalStep, 4)
    }
}
