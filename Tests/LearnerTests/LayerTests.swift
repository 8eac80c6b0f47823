import Foundation
import XCTest

@testable import Learner

final class LayerTests: XCTestCase {
    static func statistics(_ values: [Float]) -> (mean: Double, std: Double) {
        let n = Double(values.count)
        let mean = values.reduce(0.0) { $0 + Double($1) } / n
        let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        return (mean, variance.squareRoot())
    }

    // MARK: Dense

    func testDenseShapesAndPyTorchParameterNames() {
        let model = Sequential([
            Dense(inputSize: 4, units: 8, activation: .relu, seed: 1),
            Dropout(rate: 0.5),
            Dense(inputSize: 8, units: 3, useBias: false, seed: 2),
            ActivationLayer(.tanh),
            Dense(inputSize: 3, units: 2, seed: 3),
        ])
        let named = model.namedParameters
        XCTAssertEqual(named.map(\.name), ["0.weight", "0.bias", "2.weight", "4.weight", "4.bias"])
        XCTAssertEqual(named.map(\.parameter.shape), [[8, 4], [8], [3, 8], [2, 3], [2]])
        XCTAssertEqual(model.parameters.count, 5)
        XCTAssertEqual(model.parameterCount, 32 + 8 + 24 + 6 + 2)
        model.eval()
        let out = model(Tensor.ones([5, 4]))
        XCTAssertEqual(out.shape, [5, 2])
        // Nested containers join the path with dots.
        let nested = Sequential([Sequential([Dense(inputSize: 2, units: 2, seed: 4)]), Flatten()])
        XCTAssertEqual(nested.namedParameters.map(\.name), ["0.0.weight", "0.0.bias"])
        XCTAssertEqual(Flatten()(Tensor.zeros([2, 3, 4])).shape, [2, 12])
    }

    func testDenseComputesActivationOfXWTransposePlusBias() {
        let layer = Dense(inputSize: 3, units: 2, activation: .relu, seed: 7)
        layer.weight.assign(Tensor(shape: [2, 3], scalars: [1, 0, -1, 0.5, 2, 0]))
        layer.bias!.assign(Tensor([0.25, -10]))
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, -1, 0, 1])
        // Row 0: [1 − 3 + 0.25, 0.5 + 4 − 10] = [−1.75, −5.5]; row 1: [−1 − 1 + 0.25, −0.5 − 10]:
        // all negative, so relu gives zeros.
        XCTAssertEqual(layer(x).scalars, [0, 0, 0, 0])
        layer.bias!.assign(Tensor([4, 1]))
        // Row 0: [1 − 3 + 4, 0.5 + 4 + 1] = [2, 5.5]; row 1: [−1 − 1 + 4, −0.5 + 1] = [2, 0.5].
        XCTAssertEqual(layer(x).scalars, [2, 5.5, 2, 0.5])
        let linear = Dense(inputSize: 3, units: 2, seed: 7)
        linear.weight.assign(Tensor(shape: [2, 3], scalars: [1, 0, -1, 0.5, 2, 0]))
        XCTAssertEqual(linear(x).scalars, [-2, 4.5, -2, -0.5], "identity activation, zero bias")
        XCTAssertEqual(linear.bias!.value.scalars, [0, 0], "the bias starts at zero")
        XCTAssertEqual(linear.inputSize, 3)
        XCTAssertEqual(linear.units, 2)
    }

    func testHeAndGlorotInitialisationStatistics() {
        let n = 512
        // He normal before ReLU/GELU: std √(2 / fanIn).
        for activation in [Activation.relu, .gelu] {
            let he = Dense(inputSize: n, units: n, activation: activation, seed: 11).weight.value.scalars
            let (mean, std) = Self.statistics(he)
            let expected = (2.0 / Double(n)).squareRoot()
            XCTAssertEqual(std, expected, accuracy: 0.1 * expected, "He std for \(activation)")
            XCTAssertEqual(mean, 0, accuracy: 0.05 * expected, "He mean for \(activation)")
        }
        // Glorot uniform otherwise: U(±√(6 / (fanIn + fanOut))), std limit/√3.
        for activation in [Activation.identity, .tanh, .sigmoid] {
            let glorot = Dense(inputSize: n, units: n, activation: activation, seed: 12).weight.value.scalars
            let limit = (6.0 / Double(2 * n)).squareRoot()
            let (mean, std) = Self.statistics(glorot)
            XCTAssertEqual(std, limit / 3.0.squareRoot(), accuracy: 0.1 * limit / 3.0.squareRoot(), "Glorot std for \(activation)")
            XCTAssertEqual(mean, 0, accuracy: 0.05 * limit, "Glorot mean for \(activation)")
            XCTAssertTrue(glorot.allSatisfy { Swift.abs(Double($0)) <= limit }, "Glorot bound for \(activation)")
            XCTAssertGreaterThan(glorot.map { Swift.abs(Double($0)) }.max()!, 0.95 * limit, "Glorot fills its range")
        }
        // A non-square layer uses fanIn for He: 256 inputs, 64 outputs.
        let wide = Dense(inputSize: 256, units: 64, activation: .relu, seed: 13).weight.value.scalars
        XCTAssertEqual(Self.statistics(wide).std, (2.0 / 256).squareRoot(), accuracy: 0.1 * (2.0 / 256).squareRoot())
        // An explicit initializer wins.
        let zeros = Dense(inputSize: 4, units: 3, activation: .relu, initializer: .zeros, seed: 1)
        XCTAssertEqual(zeros.weight.value.scalars, [Float](repeating: 0, count: 12))
        let glorotRelu = Dense(inputSize: n, units: n, activation: .relu, initializer: .glorotUniform, seed: 14)
        XCTAssertLessThanOrEqual(glorotRelu.weight.value.scalars.map { Swift.abs(Double($0)) }.max()!, (6.0 / Double(2 * n)).squareRoot())
    }

    func testSeedsMakeInitialisationReproducible() {
        XCTAssertEqual(
            Dense(inputSize: 8, units: 4, seed: 5).weight.value.scalars,
            Dense(inputSize: 8, units: 4, seed: 5).weight.value.scalars)
        XCTAssertNotEqual(
            Dense(inputSize: 8, units: 4, seed: 5).weight.value.scalars,
            Dense(inputSize: 8, units: 4, seed: 6).weight.value.scalars)
        XCTAssertNotEqual(
            Dense(inputSize: 8, units: 4).weight.value.scalars,
            Dense(inputSize: 8, units: 4).weight.value.scalars, "unseeded layers draw distinct seeds")
    }

    // MARK: Dropout

    func testDropoutIsTheIdentityInEvaluation() {
        let dropout = Dropout(rate: 0.5)
        var g = RandomGenerator(seed: 1)
        let x = Tensor.randomNormal([100, 10], generator: &g)
        dropout.eval()
        XCTAssertFalse(dropout.isTraining)
        XCTAssertEqual(dropout(x).scalars, x.scalars)
        dropout.train()
        XCTAssertTrue(dropout.isTraining)
        XCTAssertNotEqual(dropout(x).scalars, x.scalars)
        XCTAssertEqual(Dropout(rate: 0)(x).scalars, x.scalars, "rate 0 in training is the identity too")
    }

    func testDropoutZeroesTheRateAndScalesTheRest() {
        let n = 100_000
        var g = RandomGenerator(seed: 2)
        let x = Tensor.randomUniform([n], lower: 1, upper: 2, generator: &g)
        for rate: Float in [0.1, 0.3, 0.5, 0.8] {
            let dropout = Dropout(rate: rate)
            dropout.setRandomKey(seed: 9, step: 4)
            let y = dropout(x).scalars
            let zeros = y.filter { $0 == 0 }.count
            // Binomial std at n = 1e5 is ≤ 0.0016; allow 0.01.
            XCTAssertEqual(Double(zeros) / Double(n), Double(rate), accuracy: 0.01, "fraction dropped at rate \(rate)")
            for (a, b) in zip(x.scalars, y) where b != 0 {
                if Swift.abs(b - a / (1 - rate)) > 1e-5 * b {
                    XCTFail("rate \(rate): kept value \(b) is not \(a) / (1 − rate)")
                    break
                }
            }
            // The expectation is preserved.
            XCTAssertEqual(
                y.reduce(0.0) { $0 + Double($1) } / Double(n), x.scalars.reduce(0.0) { $0 + Double($1) } / Double(n),
                accuracy: 0.03, "mean at rate \(rate)")
        }
    }

    func testDropoutMaskIsAFunctionOfSeedAndStep() {
        let x = Tensor.ones([4096])
        let dropout = Dropout(rate: 0.5)
        func mask(seed: UInt64, step: UInt64) -> [Float] {
            dropout.setRandomKey(seed: seed, step: step)
            return dropout(x).scalars
        }
        let a = mask(seed: 1, step: 10)
        XCTAssertEqual(a, mask(seed: 1, step: 10), "same (seed, step): same mask")
        XCTAssertNotEqual(a, mask(seed: 1, step: 11), "another step: another mask")
        XCTAssertNotEqual(a, mask(seed: 2, step: 10), "another seed: another mask")
        // The op itself: a pure function of (seed, step, salt).
        XCTAssertEqual(x.dropout(rate: 0.5, seed: 3, step: 4, salt: 5).scalars, x.dropout(rate: 0.5, seed: 3, step: 4, salt: 5).scalars)
        XCTAssertNotEqual(x.dropout(rate: 0.5, seed: 3, step: 4, salt: 5).scalars, x.dropout(rate: 0.5, seed: 3, step: 4, salt: 6).scalars)
        // Keyed directly: (seed, salt) names one key, and an element offset draws a later part of the mask.
        let keyed = x.dropout(rate: 0.5, key: Tensor.dropoutKey(seed: 3, salt: 5), step: 4)
        XCTAssertEqual(keyed.scalars, x.dropout(rate: 0.5, seed: 3, step: 4, salt: 5).scalars)
        XCTAssertNotEqual(keyed.scalars, x.dropout(rate: 0.5, key: Tensor.dropoutKey(seed: 3, salt: 6), step: 4).scalars)
        let tail = Tensor.ones([96]).dropout(rate: 0.5, key: Tensor.dropoutKey(seed: 3, salt: 5), step: 4, elementOffset: 4000)
        XCTAssertEqual(tail.scalars, Array(keyed.scalars[4000...]))
        // Two dropout layers of one model draw different masks at the same step.
        let model = Sequential([Dropout(rate: 0.5), Dropout(rate: 0.5)])
        model.setRandomKey(seed: 1, step: 1)
        XCTAssertNotEqual(model.layers[0](x).scalars, model.layers[1](x).scalars)
        // The backward pass uses the forward's mask.
        let t = x.trainable()
        let y = t.dropout(rate: 0.5, seed: 3, step: 4, salt: 5)
        XCTAssertEqual(gradients(of: y.sum(), wrt: [t])[0].scalars, y.scalars, "d(Σ x·m)/dx = m, and x = 1")
    }

    func testTrainAndEvalPropagateToEveryModule() {
        let inner = Dropout(rate: 0.2)
        let dense = Dense(inputSize: 2, units: 2, seed: 1)
        let block = Sequential([dense, inner])
        let model = Sequential([block, ActivationLayer(.relu), Dropout(rate: 0.3)])
        let all: [Module] = [model, block, inner, dense, model.layers[1], model.layers[2]]
        XCTAssertTrue(all.allSatisfy(\.isTraining), "modules start in training mode")
        model.eval()
        XCTAssertTrue(all.allSatisfy { !$0.isTraining }, "eval() reaches every descendant")
        model.train()
        XCTAssertTrue(all.allSatisfy(\.isTraining), "train() reaches every descendant")
        block.eval()
        XCTAssertTrue(model.isTraining)
        XCTAssertFalse(inner.isTraining, "a sub-tree can be switched alone")
        // The random key reaches every descendant too.
        model.setRandomKey(seed: 42, step: 17)
        XCTAssertTrue(all.allSatisfy { $0.randomKey.seed == 42 && $0.randomKey.step == 17 })
    }
}
