import Foundation
import XCTest

@testable import Learner

/// The optimizers against trajectories of PyTorch's torch.optim, recorded by
/// Scripts/fixtures/make_optimizer_fixtures.py into Fixtures/optim/torch_optim.json.
final class OptimizerTests: XCTestCase {
    struct Fixture: Decodable {
        let torchVersion: String
        let steps: Int
        let cases: [Case]
    }

    struct Case: Decodable {
        let name: String
        let optimizer: String
        let hyper: Hyper
        let lrPerStep: [Double]?
        let parameters: [ParameterTrajectory]
    }

    /// Hyper-parameters under PyTorch's names.
    struct Hyper: Decodable {
        let lr: Double
        let momentum: Double?
        let dampening: Double?
        let weightDecay: Double?
        let nesterov: Bool?
        let betas: [Double]?
        let eps: Double?
        let alpha: Double?
        let centered: Bool?
    }

    struct ParameterTrajectory: Decodable {
        let shape: [Int]
        let initial: [Double]
        /// Per step; nil where the parameter has no gradient at that step.
        let gradients: [[Double]?]
        /// The parameter after each step.
        let expected: [[Double]]
    }

    static let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/optim/torch_optim.json")

    static func loadFixture() throws -> Fixture {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Fixture.self, from: Data(contentsOf: fixtureURL))
    }

    static func makeOptimizer(_ c: Case) -> Optimizer? {
        let h = c.hyper
        let lr = Float(h.lr)
        switch c.optimizer {
        case "SGD":
            return SGD(
                learningRate: lr, momentum: Float(h.momentum ?? 0), dampening: Float(h.dampening ?? 0),
                weightDecay: Float(h.weightDecay ?? 0), nesterov: h.nesterov ?? false)
        case "Adam":
            return Adam(
                learningRate: lr, beta1: Float(h.betas?[0] ?? 0.9), beta2: Float(h.betas?[1] ?? 0.999),
                epsilon: Float(h.eps ?? 1e-8), weightDecay: Float(h.weightDecay ?? 0))
        case "AdamW":
            // Leave the decay at AdamW's own default when the fixture does (PyTorch's is 0.01).
            if let wd = h.weightDecay {
                return AdamW(
                    learningRate: lr, beta1: Float(h.betas?[0] ?? 0.9), beta2: Float(h.betas?[1] ?? 0.999),
                    epsilon: Float(h.eps ?? 1e-8), weightDecay: Float(wd))
            }
            return AdamW(
                learningRate: lr, beta1: Float(h.betas?[0] ?? 0.9), beta2: Float(h.betas?[1] ?? 0.999),
                epsilon: Float(h.eps ?? 1e-8))
        case "RMSprop":
            return RMSProp(
                learningRate: lr, alpha: Float(h.alpha ?? 0.99), epsilon: Float(h.eps ?? 1e-8),
                weightDecay: Float(h.weightDecay ?? 0), momentum: Float(h.momentum ?? 0), centered: h.centered ?? false)
        default:
            return nil
        }
    }

    func testMatchesTorchOptim() throws {
        let fixture = try Self.loadFixture()
        XCTAssertEqual(fixture.steps, 5)
        XCTAssertGreaterThanOrEqual(fixture.cases.count, 20)
        let kinds = Set(fixture.cases.map(\.optimizer))
        XCTAssertEqual(kinds, ["SGD", "Adam", "AdamW", "RMSprop"])
        for c in fixture.cases {
            guard let optimizer = Self.makeOptimizer(c) else {
                XCTFail("\(c.name): unknown optimizer \(c.optimizer)")
                continue
            }
            let parameters = c.parameters.map { Parameter(Tensor(shape: $0.shape, scalars: $0.initial.map(Float.init))) }
            for step in 0..<fixture.steps {
                if let schedule = c.lrPerStep { optimizer.learningRate = Float(schedule[step]) }
                for (p, trajectory) in zip(parameters, c.parameters) {
                    p.gradient = trajectory.gradients[step].map { Tensor(shape: trajectory.shape, scalars: $0.map(Float.init)) }
                }
                optimizer.step(parameters)
                for (i, (p, trajectory)) in zip(parameters, c.parameters).enumerated() {
                    assertClose(
                        p.value.scalars, trajectory.expected[step], rtol: 1e-5, atol: 1e-6,
                        "\(c.name) (torch \(fixture.torchVersion)): parameter \(i) after step \(step + 1)")
                }
            }
            XCTAssertEqual(optimizer.stepCount, fixture.steps)
        }
    }

    func testSGDMomentumByHand() {
        // lr 0.1, momentum 0.9, gradients 1, 2, 3 on w = 1:
        // b₁ = 1 → w = 0.9; b₂ = 0.9·1 + 2 = 2.9 → w = 0.61; b₃ = 0.9·2.9 + 3 = 5.61 → w = 0.049.
        let p = Parameter(Tensor([1]))
        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        var trajectory: [Float] = []
        for g: Float in [1, 2, 3] {
            p.gradient = Tensor([g])
            sgd.step([p])
            trajectory.append(p.value.scalar)
        }
        assertClose(trajectory, [0.9, 0.61, 0.049], rtol: 1e-6, atol: 1e-7, "SGD momentum")
        // Nesterov on the same gradients: d = g + μ·b: w = 1 − 0.1·1.9 = 0.81, then 0.81 − 0.1·(2 + 0.9·2.9) = 0.349.
        let q = Parameter(Tensor([1]))
        let nesterov = SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)
        var nesterovTrajectory: [Float] = []
        for g: Float in [1, 2] {
            q.gradient = Tensor([g])
            nesterov.step([q])
            nesterovTrajectory.append(q.value.scalar)
        }
        assertClose(nesterovTrajectory, [0.81, 0.349], rtol: 1e-6, atol: 1e-7, "SGD Nesterov")
    }

    func testAdamFirstStepMovesByLearningRate() {
        // With bias correction, Adam's first step is lr·sign(g) (up to ε), whatever |g|.
        let p = Parameter(Tensor([1, 1, 1]))
        p.gradient = Tensor([1e-3, -5, 100])
        let adam = Adam(learningRate: 0.01)
        adam.step([p])
        assertClose(p.value.scalars, [0.99, 1.01, 0.99], rtol: 1e-5, "Adam first step")
        XCTAssertEqual(AdamW().weightDecay, 0.01)
        XCTAssertTrue(AdamW().decoupledWeightDecay)
        XCTAssertFalse(Adam().decoupledWeightDecay)
    }

    func testStateIsCreatedOnceAndReused() {
        let optimizers: [(String, Optimizer, Int)] = [
            ("SGD", SGD(learningRate: 0.1), 0),
            ("SGD momentum", SGD(learningRate: 0.1, momentum: 0.9), 1),
            ("Adam", Adam(), 2),
            ("AdamW", AdamW(), 2),
            ("RMSProp", RMSProp(momentum: 0.5, centered: true), 3),
        ]
        for (name, optimizer, bufferCount) in optimizers {
            XCTAssertEqual(optimizer.stateBufferCount, bufferCount, name)
            let parameters = [Parameter(Tensor.ones([3, 2])), Parameter(Tensor.ones([4]))]
            let frozen = Parameter(Tensor.ones([2]))
            frozen.isFrozen = true
            frozen.gradient = Tensor.ones([2])
            let noGradient = Parameter(Tensor.ones([5]))
            let all = parameters + [frozen, noGradient]
            var identities: [ObjectIdentifier: [ObjectIdentifier]]?
            for step in 1...5 {
                for p in parameters { p.gradient = Tensor(repeating: Float(step), shape: p.shape) }
                optimizer.step(all)
                XCTAssertEqual(optimizer.state.count, parameters.count, "\(name): one state entry per updated parameter")
                for p in parameters {
                    let buffers = optimizer.state[ObjectIdentifier(p)]
                    XCTAssertEqual(buffers?.count, bufferCount, name)
                    XCTAssertTrue(buffers?.allSatisfy { $0.count == p.value.scalarCount } ?? false, name)
                }
                let now = optimizer.state.mapValues { $0.map { ObjectIdentifier($0) } }
                if let identities { XCTAssertEqual(now, identities, "\(name): state buffers replaced at step \(step)") }
                identities = now
            }
            XCTAssertEqual(optimizer.stepCount, 5)
            XCTAssertEqual(optimizer.parameterSteps.count, parameters.count, name)
            XCTAssertTrue(parameters.allSatisfy { optimizer.parameterSteps[ObjectIdentifier($0)] == 5 }, name)
            XCTAssertNil(optimizer.state[ObjectIdentifier(frozen)])
            XCTAssertNil(optimizer.state[ObjectIdentifier(noGradient)])
            XCTAssertEqual(frozen.value.scalars, [1, 1], "\(name): a frozen parameter is not updated")
            XCTAssertEqual(noGradient.value.scalars, [Float](repeating: 1, count: 5), "\(name): no gradient, no update")
            XCTAssertNotEqual(parameters[0].value.scalars, [Float](repeating: 1, count: 6), "\(name): updated")
        }
    }

    func testUpdatesInPlaceKeepingTheLeaf() {
        let p = Parameter(Tensor([1, 2]))
        let storage = p.value.storage
        let node = p.value.node
        p.gradient = Tensor([1, 1])
        SGD(learningRate: 0.5).step([p])
        XCTAssertTrue(p.value.storage === storage, "the update is in place")
        XCTAssertTrue(p.value.node === node, "the parameter stays the same leaf of the tape")
        XCTAssertEqual(p.value.scalars, [0.5, 1.5])
    }

    func testLargeParametersGiveTheSameUpdateOnEveryThreadCount() {
        // 70 000 elements: the update is split into ranges of ≥ 16 384 across workers.
        var g = RandomGenerator(seed: 3)
        let initial = Tensor.randomNormal([70_000], generator: &g)
        let grads = (0..<3).map { _ in Tensor.randomNormal([70_000], generator: &g) }
        func run(threads: Int, _ make: () -> Optimizer) -> [Float] {
            let saved = CPUParallel.threadCount
            CPUParallel.threadCount = threads
            defer { CPUParallel.threadCount = saved }
            let p = Parameter(initial.copy())
            let optimizer = make()
            for grad in grads {
                p.gradient = grad
                optimizer.step([p])
            }
            return p.value.scalars
        }
        let makers: [(String, () -> Optimizer)] = [
            ("SGD", { SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01) }),
            ("Adam", { Adam(learningRate: 0.01, weightDecay: 0.01) }),
            ("RMSProp", { RMSProp(learningRate: 0.01, momentum: 0.9, centered: true) }),
        ]
        for (name, make) in makers {
            let single = run(threads: 1, make)
            XCTAssertEqual(single, run(threads: 4, make), name)
            XCTAssertNotEqual(single, initial.scalars, name)
        }
    }
}
