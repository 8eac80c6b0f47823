import Foundation
import TestSupport
import XCTest

@testable import Learner

/// The built-in losses against PyTorch (values and gradients from
/// Scripts/fixtures/make_loss_fixtures.py), their finite-difference gradients, and losses users
/// write themselves.
final class LossTests: XCTestCase {
    struct Fixture: Decodable {
        struct Values: Decodable {
            let shape: [Int]
            let values: [Float]
        }
        struct Case: Decodable {
            let name: String
            let params: [String: Parameter]
            let predictions: Values
            let labels: Values
            let loss: Double
            let gradient: [Float]
            let sample_weights: [Float]?
        }
        enum Parameter: Decodable {
            case number(Float)
            case list([Float])

            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let v = try? c.decode(Float.self) { self = .number(v) } else { self = .list(try c.decode([Float].self)) }
            }
            var number: Float? { if case .number(let v) = self { return v } else { return nil } }
            var list: [Float]? { if case .list(let v) = self { return v } else { return nil } }
        }
        let cases: [Case]
    }

    /// The library's loss for a fixture case (the config's names and parameters).
    static func loss(_ c: Fixture.Case) -> Loss {
        let p = c.params
        let ignore = p["ignore_index"]?.number.map { Int($0) }
        switch c.name {
        case "softmax_cross_entropy":
            return .softmaxCrossEntropy(
                labelSmoothing: p["label_smoothing"]?.number ?? 0, classWeights: p["class_weights"]?.list, ignoreIndex: ignore)
        case "focal": return .focal(gamma: p["gamma"]?.number ?? 2, alpha: p["alpha"]?.number ?? 1, ignoreIndex: ignore)
        case "dice": return .dice(smooth: p["smooth"]?.number ?? 1, ignoreIndex: ignore)
        case "binary_cross_entropy": return .binaryCrossEntropy(positiveWeights: p["pos_weight"]?.list)
        case "mse": return .meanSquaredError
        case "mae": return .meanAbsoluteError
        case "huber": return .huber(delta: p["delta"]?.number ?? 1)
        case "smooth_l1": return .smoothL1(beta: p["beta"]?.number ?? 1)
        case "kl_divergence": return .klDivergence
        default: preconditionFailure("no loss named \(c.name)")
        }
    }

    static func fixture() throws -> Fixture {
        let url = DataTestFiles.fixtures.appendingPathComponent("losses/torch_losses.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func testEveryBuiltInLossMatchesPyTorch() throws {
        let cases = try Self.fixture().cases
        XCTAssertEqual(Set(cases.map(\.name)).count, 9, "every built-in loss has a case")
        for c in cases {
            let label = "\(c.name) \(c.params.keys.sorted())"
            let x = Tensor(shape: c.predictions.shape, scalars: c.predictions.values).trainable()
            let y = Tensor(shape: c.labels.shape, scalars: c.labels.values)
            let w = c.sample_weights.map { Tensor($0) }
            let value = Self.loss(c)(x, y, sampleWeights: w)
            XCTAssertEqual(value.shape, [], label)
            XCTAssertEqual(Double(value.scalar), c.loss, accuracy: 1e-5 * max(1, abs(c.loss)), label)
            let grad = gradients(of: value, wrt: [x])[0].scalars
            let worst = zip(grad, c.gradient).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(worst, 1e-5, "\(label): gradient")
        }
    }

    func testEveryBuiltInLossMatchesFiniteDifferences() throws {
        for (n, c) in try Self.fixture().cases.enumerated() {
            let loss = Self.loss(c)
            let labels = Tensor(shape: c.labels.shape, scalars: c.labels.values)
            let weights = c.sample_weights.map { Tensor($0) }
            let check = GradientCase(
                "\(c.name) #\(n)", trainable: [true],
                inputs: { _ in [Tensor(shape: c.predictions.shape, scalars: c.predictions.values)] }
            ) { inputs in loss(inputs[0], labels, sampleWeights: weights) }
            let result = GradientChecker.run(check, seed: UInt64(n))
            XCTAssertEqual(result.failures, [], check.name)
        }
    }

    /// A loss written outside the package, as a type and as a closure, trains a model.
    struct SquaredHinge: LossFunction {
        var name: String { "squared_hinge" }
        var target: LossTarget { .classIndices() }

        func callAsFunction(_ predictions: Tensor, _ labels: Tensor, sampleWeights: Tensor?) -> Tensor {
            // Multi-class squared hinge: Σ_c≠y max(0, 1 + s_c − s_y)², built from public ops.
            let n = predictions.shape[0], c = predictions.shape[1]
            let y = labels.scalars.map { Int($0) }
            var onehot = [Float](repeating: 0, count: n * c)
            for i in 0..<n { onehot[i * c + y[i]] = 1 }
            let mask = Tensor(shape: [n, c], scalars: onehot)
            let correct = (predictions * mask).sum(alongAxis: 1, keepingDimensions: true)
            let margins = (predictions - correct + 1) * (1 - mask)
            let positive = margins.greater(Tensor(repeating: 0, shape: [], on: margins.device))
            return (margins * positive).squared().sum() * (1 / Float(n))
        }
    }

    func testLossesWrittenByUsersTrain() throws {
        let data = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let val = try InMemoryDataset.load(directory: DataTestFiles.digits + "/val", keys: FeatureKeys())
        let closure = Loss(name: "weighted_mse_of_softmax", target: .classIndices()) { predictions, labels, _ in
            let n = predictions.shape[0], c = predictions.shape[1]
            var onehot = [Float](repeating: 0, count: n * c)
            for (i, y) in labels.scalars.enumerated() { onehot[i * c + Int(y)] = 1 }
            return (predictions.softmax() - Tensor(shape: [n, c], scalars: onehot)).squared().sum() * (1 / Float(n))
        }
        for loss in [Loss(SquaredHinge()), closure] {
            let model = Sequential([Dense(inputSize: 64, units: 32, activation: .relu, seed: 1), Dense(inputSize: 32, units: 10, seed: 2)])
            let learner = SupervisedLearner(model: model, loss: loss, optimizer: Adam(learningRate: 3e-3), seed: 1)
            learner.options.verbose = 0
            XCTAssertEqual(learner.metrics.map(\.name), ["accuracy"], "\(loss.name): a class-index loss gets accuracy")
            let history = try learner.fit(data, validation: val, epochs: 8, batchSize: 32)
            XCTAssertGreaterThan(history.epochs.last?.validationAccuracy ?? 0, 0.9, loss.name)
        }
    }

    /// Loss parameters that do not fit the model (from a config) are named before a step.
    func testLossParametersThatDoNotFitTheModelAreNamed() throws {
        let data = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 64, units: 10, seed: 1)]), loss: .softmaxCrossEntropy(classWeights: [1, 2, 3]),
            optimizer: SGD(learningRate: 0.01))
        learner.options.verbose = 0
        XCTAssertThrowsError(try learner.fit(data, epochs: 1, batchSize: 16)) { error in
            XCTAssertTrue("\(error)".contains("has 3 class weights, but the model gives 10 class scores"), "\(error)")
        }
    }

    func testALossThatIsNotAScalarIsNamed() throws {
        let data = try InMemoryDataset.load(directory: DataTestFiles.digits + "/train", keys: FeatureKeys())
        let perSample = Loss(name: "unreduced", target: .values) { predictions, labels, _ in
            (predictions.sum(alongAxis: 1) - labels).squared()
        }
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 64, units: 1, seed: 1)]), loss: perSample, optimizer: SGD(learningRate: 0.01))
        learner.options.verbose = 0
        XCTAssertThrowsError(try learner.fit(data, epochs: 1, batchSize: 16)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("the loss 'unreduced' gave a tensor of shape [16]") && text.contains(".mean()"), text)
        }
    }
}
