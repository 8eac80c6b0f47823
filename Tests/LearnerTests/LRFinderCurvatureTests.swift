import Foundation
import XCTest

@testable import Learner

/// The LR finder against a problem whose answer is known: least squares, where plain SGD on the
/// whole batch is stable exactly for rates below 2/λmax of the Hessian (2/n)·XᵀX.
final class LRFinderCurvatureTests: XCTestCase {
    /// n × d with orthonormal Walsh columns scaled so that (2/n)·XᵀX = diag(eigenvalues).
    static func design(n: Int, eigenvalues: [Double]) -> [Float] {
        var x = [Float](repeating: 0, count: n * eigenvalues.count)
        for (j, lambda) in eigenvalues.enumerated() {
            let singular = (lambda * Double(n) / 2).squareRoot()
            for i in 0..<n {
                // Walsh function j+1: the parity of the bits i and j+1 share; ±1/√n per entry.
                let sign: Double = (i & (j + 1)).nonzeroBitCount % 2 == 0 ? 1 : -1
                x[i * eigenvalues.count + j] = Float(sign * singular / Double(n).squareRoot())
            }
        }
        return x
    }

    /// The largest eigenvalue of (2/n)·XᵀX by power iteration, in double precision.
    static func largestEigenvalue(_ x: [Float], n: Int, d: Int) -> Double {
        var h = [Double](repeating: 0, count: d * d)
        for i in 0..<n {
            for a in 0..<d {
                for b in 0..<d { h[a * d + b] += 2 / Double(n) * Double(x[i * d + a]) * Double(x[i * d + b]) }
            }
        }
        var v = (0..<d).map { 1 + Double($0) / 10 }
        var lambda = 0.0
        for _ in 0..<500 {
            var w = [Double](repeating: 0, count: d)
            for a in 0..<d {
                for b in 0..<d { w[a] += h[a * d + b] * v[b] }
            }
            var vw = 0.0, vv = 0.0, ww = 0.0
            for a in 0..<d {
                vw += v[a] * w[a]
                vv += v[a] * v[a]
                ww += w[a] * w[a]
            }
            lambda = vw / vv
            v = w.map { $0 / ww.squareRoot() }
        }
        return lambda
    }

    func testSuggestedMaximumLiesBelowTheStabilityLimitOfLeastSquares() throws {
        let n = 64
        // Each spectrum, from the layer's own initial weights or from a given error w₀ − w*. The
        // design is diagonal in the coordinates, so the error is per eigen-direction: starting
        // almost solved along the stiff ones, the loss falls fastest past 2/λmax (the growing
        // stiff direction holds too little of it to show yet), where no suggestion may go.
        let cases: [(spectrum: [Double], initialError: [Float]?)] = [
            ([4, 2, 1, 0.5], nil), ([4, 4, 4, 4], nil), ([4, 1, 0.25, 0.0625], nil), ([0.4, 0.1, 0.1, 0.05], nil),
            ([4, 1, 0.25, 0.0625], [0.01, 0.01, 1, 1]),
        ]
        let sweeps: [(start: Float, end: Float, iterations: Int)] = [(1e-5, 100, 100), (1e-7, 100, 200)]
        for (k, (spectrum, initialError)) in cases.enumerated() {
            let d = spectrum.count
            let x = Self.design(n: n, eigenvalues: spectrum)
            let lambdaMax = Self.largestEigenvalue(x, n: n, d: d)
            XCTAssertEqual(lambdaMax, spectrum.max()!, accuracy: 1e-4 * spectrum.max()!)
            var g = RandomGenerator(seed: 11 + UInt64(k))
            let truth: [Float] = (0..<d).map { _ in g.nextUniform() * 4 - 2 }
            var targets: [Float] = []
            for i in 0..<n {
                var y: Float = (g.nextUniform() - 0.5) * 0.1
                for j in 0..<d { y += x[i * d + j] * truth[j] }
                targets.append(y)
            }
            let data = InMemoryDataset(inputs: x, labels: targets, featureSize: d)
            for sweep in sweeps {
                let label = "spectrum \(spectrum), initial error \(initialError ?? []), sweep \(sweep)"
                let model = Sequential([Dense(inputSize: d, units: 1, useBias: false, seed: 20 + UInt64(k))])
                if let initialError {
                    model.parameters[0].assign(Tensor(shape: [1, d], scalars: zip(truth, initialError).map { $0 + $1 }))
                }
                let sgd = SGD(learningRate: 0.01)
                let learner = SupervisedLearner(model: model, loss: .meanSquaredError, optimizer: sgd, seed: 4)
                learner.options.verbose = 0
                let before = model.parameters.map { $0.value.scalars.map(\.bitPattern) }
                let result = try learner.findLearningRate(
                    training: data, startLR: sweep.start, endLR: sweep.end, iterations: sweep.iterations, batchSize: n)
                XCTAssertEqual(model.parameters.map { $0.value.scalars.map(\.bitPattern) }, before, label)
                XCTAssertEqual(sgd.learningRate, 0.01, label)
                XCTAssertTrue(result.diverged, label)
                XCTAssertGreaterThan(Double(try XCTUnwrap(result.learningRates.last)), 2 / lambdaMax, label)
                let upper = Double(result.suggestedRange.upper)
                XCTAssertGreaterThanOrEqual(upper, 0.2 / lambdaMax, label)
                XCTAssertLessThanOrEqual(upper, 2 / lambdaMax, label)
                XCTAssertLessThanOrEqual(result.suggestedRange.lower, result.suggestedRange.upper / 4, label)

                // The bound is the real one: whole-batch SGD converges at the suggestion and
                // blows up just above 2/λmax, from the restored weights.
                let (inputs, labels) = learner.deviceBatch(data, Array(0..<n))
                func lossAfter(_ steps: Int, rate: Double) throws -> Float {
                    for (p, w) in zip(model.parameters, before) {
                        p.assign(Tensor(shape: p.value.shape, scalars: w.map(Float.init(bitPattern:))))
                    }
                    sgd.learningRate = Float(rate)
                    for _ in 0..<steps { try learner.trainStep(inputs: inputs, labels: labels) }
                    return try learner.evaluate(data, batchSize: n).loss
                }
                let start = try lossAfter(0, rate: 0)
                XCTAssertLessThan(try lossAfter(300, rate: upper), start / 10, label)
                XCTAssertGreaterThan(try lossAfter(60, rate: 1.2 * 2 / lambdaMax), start * 10, label)
            }
        }
    }
}
