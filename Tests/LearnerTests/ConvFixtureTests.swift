import Foundation
import XCTest

@testable import Learner

/// Convolution, transposed convolution, batch norm and pooling against PyTorch, from
/// Fixtures/conv/torch_conv.json (Scripts/fixtures/make_conv_fixtures.py): outputs and the
/// gradients of L = Σ y ⊙ upstream, within 1e-4 (absolute, plus 1e-4 relative).
final class ConvFixtureTests: XCTestCase {
    struct Values: Decodable {
        let shape: [Int]
        let data: [Float]
        var tensor: Tensor { Tensor(shape: shape, scalars: data) }
    }

    struct ConvCase: Decodable {
        let name: String
        let stride: Int, padding: [Int], dilation: Int, groups: Int
        let x: Values, weight: Values, bias: Values?, y: Values, upstream: Values
        let gradX: Values, gradWeight: Values, gradBias: Values?
    }

    struct ConvTransposeCase: Decodable {
        let name: String
        let stride: Int, padding: Int, outputPadding: Int, dilation: Int, groups: Int
        let x: Values, weight: Values, bias: Values, y: Values, upstream: Values
        let gradX: Values, gradWeight: Values, gradBias: Values
    }

    struct BatchNormCase: Decodable {
        let momentum: Float, eps: Float
        let x: Values, weight: Values, bias: Values, y: Values, upstream: Values
        let gradX: Values, gradWeight: Values, gradBias: Values
        let runningMean: Values, runningVar: Values, numBatchesTracked: Int
        let xEval: Values, yEval: Values
    }

    struct PoolCase: Decodable {
        let name: String, kind: String
        let kernel: Int, stride: Int, padding: Int, countIncludePad: Bool
        let x: Values, y: Values, upstream: Values, gradX: Values
    }

    struct Fixture: Decodable {
        let torchVersion: String
        let conv: [ConvCase]
        let convTranspose: [ConvTransposeCase]
        let batchnorm: BatchNormCase
        let pool: [PoolCase]
    }

    static let fixture: Fixture? = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/conv/torch_conv.json")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(Fixture.self, from: Data(contentsOf: url))
    }()

    /// The largest error seen, for the log (how far inside the tolerance the engine is).
    static let worstError = Locked(0.0)

    override class func tearDown() {
        print("ConvFixtureTests: worst |ours − PyTorch| / (1 + |PyTorch|) = \(worstError.current)")
        super.tearDown()
    }

    func loadFixture() throws -> Fixture {
        try XCTUnwrap(Self.fixture, "Fixtures/conv/torch_conv.json is missing or malformed")
    }

    func assertClose(_ actual: Tensor, _ expected: Values, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, "\(what): shape", file: file, line: line)
        guard actual.shape == expected.shape else { return }
        var worst = 0.0, at = 0
        for (i, (a, e)) in zip(actual.scalars, expected.data).enumerated() {
            let err = Swift.abs(Double(a) - Double(e)) / (1 + Swift.abs(Double(e)))
            if !(err <= worst) { worst = err; at = i }
        }
        Self.worstError.withLock { $0 = Swift.max($0, worst) }
        XCTAssertLessThanOrEqual(
            worst, 1e-4, "\(what): element \(at) is \(actual.scalars[at]), PyTorch \(expected.data[at])",
            file: file, line: line)
    }

    func testConv2dMatchesPyTorch() throws {
        let cases = try loadFixture().conv
        XCTAssertEqual(cases.count, 8)
        for c in cases {
            let x = c.x.tensor.trainable(), w = c.weight.tensor.trainable(), b = c.bias?.tensor.trainable()
            let padding = Padding2D.explicit(top: c.padding[0], bottom: c.padding[1], left: c.padding[2], right: c.padding[3])
            let y = x.conv2d(
                weight: w, bias: b, stride: Size2D(c.stride, c.stride), padding: padding,
                dilation: Size2D(c.dilation, c.dilation), groups: c.groups)
            assertClose(y, c.y, "\(c.name): y")
            let wrt = [x, w] + (b.map { [$0] } ?? [])
            let grads = gradients(of: (y * c.upstream.tensor).sum(), wrt: wrt)
            assertClose(grads[0], c.gradX, "\(c.name): dL/dx")
            assertClose(grads[1], c.gradWeight, "\(c.name): dL/dw")
            if let gb = c.gradBias { assertClose(grads[2], gb, "\(c.name): dL/db") }
        }
    }

    func testConvTranspose2dMatchesPyTorch() throws {
        let cases = try loadFixture().convTranspose
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let x = c.x.tensor.trainable(), w = c.weight.tensor.trainable(), b = c.bias.tensor.trainable()
            let y = x.convTranspose2d(
                weight: w, bias: b, stride: Size2D(c.stride, c.stride), padding: Padding2D(integerLiteral: c.padding),
                outputPadding: Size2D(c.outputPadding, c.outputPadding),
                dilation: Size2D(c.dilation, c.dilation), groups: c.groups)
            assertClose(y, c.y, "\(c.name): y")
            let grads = gradients(of: (y * c.upstream.tensor).sum(), wrt: [x, w, b])
            assertClose(grads[0], c.gradX, "\(c.name): dL/dx")
            assertClose(grads[1], c.gradWeight, "\(c.name): dL/dw")
            assertClose(grads[2], c.gradBias, "\(c.name): dL/db")
        }
    }

    func testBatchNorm2DMatchesPyTorchInTrainingAndEvaluation() throws {
        let c = try loadFixture().batchnorm
        let bn = BatchNorm2D(features: c.weight.shape[0], momentum: c.momentum, epsilon: c.eps)
        bn.weight.assign(c.weight.tensor)
        bn.bias.assign(c.bias.tensor)
        let x = c.x.tensor.trainable()
        bn.train()
        let y = bn(x)
        assertClose(y, c.y, "BatchNorm2D train: y")
        let grads = gradients(of: (y * c.upstream.tensor).sum(), wrt: [x, bn.weight.value, bn.bias.value])
        assertClose(grads[0], c.gradX, "BatchNorm2D: dL/dx")
        assertClose(grads[1], c.gradWeight, "BatchNorm2D: dL/dweight")
        assertClose(grads[2], c.gradBias, "BatchNorm2D: dL/dbias")
        assertClose(bn.runningMean.value, c.runningMean, "running_mean after one step")
        assertClose(bn.runningVariance.value, c.runningVar, "running_var after one step (unbiased update)")
        XCTAssertEqual(bn.batchesTracked.value.scalar, Float(c.numBatchesTracked))
        bn.eval()
        assertClose(bn(c.xEval.tensor), c.yEval, "BatchNorm2D eval: y from the running statistics")
    }

    func testPoolingMatchesPyTorch() throws {
        let cases = try loadFixture().pool
        XCTAssertEqual(cases.count, 5)
        for c in cases {
            let x = c.x.tensor.trainable()
            let y =
                c.kind == "max"
                ? x.maxPool2d(
                    kernel: Size2D(c.kernel, c.kernel), stride: Size2D(c.stride, c.stride), padding: Padding2D(integerLiteral: c.padding))
                : x.avgPool2d(
                    kernel: Size2D(c.kernel, c.kernel), stride: Size2D(c.stride, c.stride), padding: Padding2D(integerLiteral: c.padding),
                    countIncludePad: c.countIncludePad)
            assertClose(y, c.y, "\(c.name): y")
            assertClose(gradients(of: (y * c.upstream.tensor).sum(), wrt: [x])[0], c.gradX, "\(c.name): dL/dx")
        }
    }
}
