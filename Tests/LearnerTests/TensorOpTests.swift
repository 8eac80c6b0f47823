import Foundation
import XCTest

@testable import Learner

/// Asserts that `actual` matches `expected` element-wise: |a − e| ≤ atol + rtol·|e|.
func assertClose(
    _ actual: [Float], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-6,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("\(message()): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    var bad: [String] = []
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let error = Swift.abs(Double(a) - e)
        if !(error <= atol + rtol * Swift.abs(e)) { bad.append("[\(i)] \(a) vs \(e)") }
    }
    if !bad.isEmpty {
        XCTFail(
            "\(message()): \(bad.count) of \(actual.count) values differ: \(bad.prefix(5).joined(separator: ", "))",
            file: file, line: line)
    }
}

func assertClose(
    _ actual: Tensor, shape: [Int], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-6,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.shape, shape, "\(message()): shape", file: file, line: line)
    assertClose(actual.scalars, expected, rtol: rtol, atol: atol, message(), file: file, line: line)
}

/// Double-precision references for the forward values.
enum Reference {
    /// Element-wise binary op with NumPy broadcasting, by explicit index arithmetic.
    static func broadcast(_ a: Tensor, _ b: Tensor, _ op: (Double, Double) -> Double) -> (shape: [Int], values: [Double]) {
        let rank = Swift.max(a.rank, b.rank)
        let sa = [Int](repeating: 1, count: rank - a.rank) + a.shape
        let sb = [Int](repeating: 1, count: rank - b.rank) + b.shape
        let shape = (0..<rank).map { Swift.max(sa[$0], sb[$0]) }
        let count = shape.reduce(1, *)
        let av = a.scalars, bv = b.scalars
        var values = [Double](repeating: 0, count: count)
        for flat in 0..<count {
            var rest = flat, ia = 0, ib = 0, strideA = 1, strideB = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                let i = rest % shape[d]
                rest /= shape[d]
                ia += (sa[d] == 1 ? 0 : i) * strideA
                ib += (sb[d] == 1 ? 0 : i) * strideB
                strideA *= sa[d]
                strideB *= sb[d]
            }
            values[flat] = op(Double(av[ia]), Double(bv[ib]))
        }
        return (shape, values)
    }

    static func matmul(_ a: [Double], _ b: [Double], m: Int, k: Int, n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { c[i * n + j] += a[i * k + p] * b[p * n + j] } } }
        return c
    }

    static func transpose(_ x: [Double], rows: Int, columns: Int) -> [Double] {
        (0..<(rows * columns)).map { i in x[(i % rows) * columns + i / rows] }
    }

    static func softmax(_ row: [Double]) -> [Double] {
        let m = row.max()!
        let e = row.map { Foundation.exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    static func gelu(_ x: Double) -> Double {
        0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    }
}

final class TensorOpTests: XCTestCase {
    var generator = RandomGenerator(seed: 2024)

    func normal(_ shape: [Int], std: Float = 1) -> Tensor { .randomNormal(shape, standardDeviation: std, generator: &generator) }

    // MARK: Construction

    func testConstructorsAndScalars() {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.rank, 2)
        XCTAssertEqual(t.scalarCount, 6)
        XCTAssertEqual(t.scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Tensor(3.5).shape, [])
        XCTAssertEqual(Tensor(3.5).scalar, 3.5)
        XCTAssertEqual(Tensor.zeros([2, 2]).scalars, [0, 0, 0, 0])
        XCTAssertEqual(Tensor.ones([3]).scalars, [1, 1, 1])
        XCTAssertEqual(Tensor(repeating: 7, shape: [2, 1]).scalars, [7, 7])
        // copy() owns its storage; detached() shares it.
        let c = t.copy()
        c.storage.pointer[0] = 100
        XCTAssertEqual(t.scalars[0], 1)
        XCTAssertTrue(t.detached().storage === t.storage)
        var g1 = RandomGenerator(seed: 9), g2 = RandomGenerator(seed: 9)
        XCTAssertEqual(Tensor.randomNormal([10], generator: &g1).scalars, Tensor.randomNormal([10], generator: &g2).scalars)
        let u = Tensor.randomUniform([1000], lower: -2, upper: 3, generator: &g1).scalars
        XCTAssertTrue(u.allSatisfy { $0 >= -2 && $0 < 3 })
    }

    // MARK: Element-wise binary ops and broadcasting

    func testBinaryOpsBroadcastLikeNumPy() {
        let shapes: [([Int], [Int], [Int])] = [
            ([3, 4], [3, 4], [3, 4]), ([3, 4], [4], [3, 4]), ([4], [3, 4], [3, 4]), ([3, 1], [1, 4], [3, 4]),
            ([3, 4], [], [3, 4]), ([], [3, 4], [3, 4]), ([2, 1, 3], [4, 1], [2, 4, 3]), ([2, 3, 4], [3, 1], [2, 3, 4]),
            ([], [], []), ([1], [5], [5]), ([5, 1, 1], [1, 2, 1], [5, 2, 1]),
        ]
        let ops: [(String, (Tensor, Tensor) -> Tensor, (Double, Double) -> Double)] = [
            ("+", { $0 + $1 }, { $0 + $1 }), ("−", { $0 - $1 }, { $0 - $1 }),
            ("×", { $0 * $1 }, { $0 * $1 }), ("÷", { $0 / $1 }, { $0 / $1 }),
            ("maximum", { $0.maximum($1) }, { Swift.max($0, $1) }), ("minimum", { $0.minimum($1) }, { Swift.min($0, $1) }),
        ]
        for (sa, sb, expectedShape) in shapes {
            let a = normal(sa)
            // Divisors bounded away from zero.
            let b = normal(sb) + 3
            for (name, op, reference) in ops {
                let out = op(a, b)
                let (shape, values) = Reference.broadcast(a, b, reference)
                XCTAssertEqual(shape, expectedShape)
                assertClose(out, shape: expectedShape, values, "\(sa) \(name) \(sb)")
            }
        }
        XCTAssertNil(ShapeMath.broadcast([3, 4], [3]))
        XCTAssertNil(ShapeMath.broadcast([2, 3], [3, 2]))
        XCTAssertEqual(ShapeMath.broadcast([8, 1, 6, 1], [7, 1, 5]), [8, 7, 6, 5])
    }

    func testScalarOperatorsAndNegate() {
        let x = Tensor([1, -2, 4])
        XCTAssertEqual((x + 1).scalars, [2, -1, 5])
        XCTAssertEqual((1 + x).scalars, [2, -1, 5])
        XCTAssertEqual((x - 1).scalars, [0, -3, 3])
        XCTAssertEqual((1 - x).scalars, [0, 3, -3])
        XCTAssertEqual((x * 2).scalars, [2, -4, 8])
        XCTAssertEqual((2 * x).scalars, [2, -4, 8])
        XCTAssertEqual((x / 4).scalars, [0.25, -0.5, 1])
        XCTAssertEqual((4 / x).scalars, [4, -2, 1])
        XCTAssertEqual((-x).scalars, [-1, 2, -4])
        XCTAssertEqual(x.squared().scalars, [1, 4, 16])
    }

    func testComparisonsGiveZeroOneTensorsWithBroadcasting() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor([2, 2, 7])
        XCTAssertEqual(a.equal(b).scalars, [0, 1, 0, 0, 0, 0])
        XCTAssertEqual(a.greater(b).scalars, [0, 0, 0, 1, 1, 0])
        XCTAssertEqual(a.less(b).scalars, [1, 0, 1, 0, 0, 1])
        XCTAssertEqual(a.greaterEqual(b).scalars, [0, 1, 0, 1, 1, 0])
        XCTAssertEqual(a.lessEqual(b).scalars, [1, 1, 1, 0, 0, 1])
        XCTAssertEqual(a.maximum(b).scalars, [2, 2, 7, 4, 5, 7])
        XCTAssertEqual(a.minimum(b).scalars, [1, 2, 3, 2, 2, 6])
        XCTAssertEqual(a.equal(b).shape, [2, 3])
        XCTAssertEqual(a.greater(Tensor(3)).scalars, [0, 0, 0, 1, 1, 1])
        // Comparisons carry no gradient.
        XCTAssertFalse(a.trainable().greater(b).requiresGradient)
    }

    // MARK: Unary ops

    func testUnaryOpsMatchDoubleReferences() {
        let x = Tensor((0..<41).map { Float($0) * 0.25 - 5 })
        let positive = Tensor((1..<41).map { Float($0) * 0.25 })
        let cases: [(String, Tensor, (Tensor) -> Tensor, (Double) -> Double)] = [
            ("exp", x, { $0.exp() }, { Foundation.exp($0) }),
            ("log", positive, { $0.log() }, { Foundation.log($0) }),
            ("sqrt", positive, { $0.sqrt() }, { $0.squareRoot() }),
            ("abs", x, { $0.abs() }, { Swift.abs($0) }),
            ("relu", x, { $0.relu() }, { Swift.max($0, 0) }),
            ("sigmoid", x, { $0.sigmoid() }, { 1 / (1 + Foundation.exp(-$0)) }),
            ("tanh", x, { $0.tanh() }, { Foundation.tanh($0) }),
            ("gelu", x, { $0.gelu() }, Reference.gelu),
            ("pow 2", x, { $0.pow(2) }, { $0 * $0 }),
            ("pow 3", x, { $0.pow(3) }, { $0 * $0 * $0 }),
            ("pow 0.5", positive, { $0.pow(0.5) }, { $0.squareRoot() }),
            ("pow −1", positive, { $0.pow(-1) }, { 1 / $0 }),
        ]
        for (name, input, op, reference) in cases {
            assertClose(op(input), shape: input.shape, input.scalars.map { reference(Double($0)) }, rtol: 2e-6, atol: 1e-7, name)
        }
    }

    func testSoftplusMatchesPyTorch() {
        // F.softplus (beta 1, threshold 20) is log1p(exp(x)), and x above 20: Python's
        // math.log1p(math.exp(x)) gives these exactly; the gradient is sigmoid(x), 1 / (1 + math.exp(-x)).
        let x = Tensor([-30, -5, -1, 0, 1, 5, 19.5, 20.5, 30])
        let values = [
            9.357622968839737e-14, 0.006715348489118068, 0.31326168751822286, 0.6931471805599453,
            1.3132616875182228, 5.006715348489118, 19.500000003398267, 20.5, 30,
        ]
        assertClose(x.softplus().scalars, values, rtol: 1e-6, atol: 0, "softplus")
        let slopes = [
            9.357622968839299e-14, 0.0066928509242848554, 0.2689414213699951, 0.5, 0.7310585786300049,
            0.9933071490757153, 0.9999999966017321, 0.9999999987498471, 0.9999999999999065,
        ]
        let (_, grads) = valueAndGradient(at: [x]) { $0[0].softplus().sum() }
        assertClose(grads[0].scalars, slopes, rtol: 1e-6, atol: 0, "softplus gradient")
        // No overflow where exp(x) would: the threshold returns x.
        XCTAssertEqual(Tensor([100, 1000]).softplus().scalars, [100, 1000])
    }

    func testGeluMatchesTheTanhFormula() {
        let x = normal([1000], std: 3)
        assertClose(x.gelu().scalars, x.scalars.map { Reference.gelu(Double($0)) }, rtol: 1e-5, atol: 1e-6, "gelu")
        // PyTorch: F.gelu(torch.tensor([1., -1., 3.]), approximate="tanh").
        assertClose(Tensor([1, -1, 3]).gelu().scalars, [0.8411920071, -0.1588079929, 2.9963627], rtol: 1e-6, "gelu values")
        XCTAssertEqual(Tensor([0]).gelu().scalars, [0])
        // Not the exact erf GELU: at 1 that is 0.8413447.
        XCTAssertGreaterThan(Swift.abs(Double(Tensor([1]).gelu().scalar) - 0.8413447461), 1e-4)
    }

    func testSigmoidAndTanhSaturateWithoutNaN() {
        let x = Tensor([-1000, -100, -50, 50, 100, 1000])
        let s = x.sigmoid().scalars
        XCTAssertTrue(s.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 }, "\(s)")
        XCTAssertEqual(s[0], 0)
        XCTAssertLessThan(s[1], 1e-30)
        XCTAssertEqual(s[4], 1)
        XCTAssertEqual(s[5], 1)
        XCTAssertEqual(x.tanh().scalars, [-1, -1, -1, 1, 1, 1])
        // The backward of a saturated sigmoid is 0, not NaN.
        let xs = x.trainable()
        let g = gradients(of: xs.sigmoid().sum(), wrt: [xs])[0].scalars
        XCTAssertTrue(g.allSatisfy { $0.isFinite && $0 >= 0 && $0 < 1e-20 }, "\(g)")
    }

    // MARK: Softmax

    func testSoftmaxRowsSumToOneAndMatchReference() {
        let x = normal([50, 10], std: 10)
        let y = x.softmax()
        XCTAssertEqual(y.shape, [50, 10])
        let values = y.scalars
        let input = x.scalars.map(Double.init)
        var expected: [Double] = []
        for r in 0..<50 {
            let rowSum = values[(r * 10)..<(r * 10 + 10)].reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(rowSum, 1, accuracy: 1e-5, "row \(r)")
            expected += Reference.softmax(Array(input[(r * 10)..<(r * 10 + 10)]))
        }
        assertClose(values, expected, rtol: 1e-5, atol: 1e-7, "softmax")
        // Rank 3: along the last axis.
        let z = normal([2, 3, 4])
        let s3 = z.softmax().scalars
        let zin = z.scalars.map(Double.init)
        assertClose(s3, stride(from: 0, to: 24, by: 4).flatMap { Reference.softmax(Array(zin[$0..<($0 + 4)])) }, "rank 3")
    }

    func testSoftmaxIsStableForLargeLogits() {
        let x = Tensor(shape: [3, 3], scalars: [1000, 999, 998, -1000, 0, 1000, 1000, 1000, 1000])
        let y = x.softmax().scalars
        XCTAssertTrue(y.allSatisfy(\.isFinite), "\(y)")
        assertClose(y, Reference.softmax([2, 1, 0]) + [0, 0, 1] + [1.0 / 3, 1.0 / 3, 1.0 / 3], rtol: 1e-5, atol: 1e-7, "large logits")
        let l = x.logSoftmax().scalars
        XCTAssertTrue(l.allSatisfy(\.isFinite), "\(l)")
        let ls = Reference.softmax([2, 1, 0]).map { Foundation.log($0) }
        assertClose(l, ls + [-2000, -1000, 0] + [Double](repeating: -Foundation.log(3.0), count: 3), rtol: 1e-5, atol: 1e-5, "log-softmax")
    }

    func testLogSoftmaxEqualsLogOfSoftmax() {
        let x = normal([20, 7], std: 3)
        assertClose(x.logSoftmax().scalars, x.softmax().log().scalars.map(Double.init), rtol: 1e-5, atol: 2e-6, "logSoftmax")
        // exp(logSoftmax) rows sum to one.
        let p = x.logSoftmax().exp().sum(alongAxis: 1).scalars
        assertClose(p, [Double](repeating: 1, count: 20), rtol: 1e-5, "Σ exp(logSoftmax)")
    }

    // MARK: Reductions

    func testSumAndMeanAlongAxes() {
        let x = Tensor(shape: [2, 3, 2], scalars: (0..<12).map(Float.init))
        assertClose(x.sum(alongAxis: 0), shape: [3, 2], [6, 8, 10, 12, 14, 16])
        assertClose(x.sum(alongAxis: 1), shape: [2, 2], [6, 9, 24, 27])
        assertClose(x.sum(alongAxis: -1), shape: [2, 3], [1, 5, 9, 13, 17, 21])
        assertClose(x.sum(alongAxis: 1, keepingDimensions: true), shape: [2, 1, 2], [6, 9, 24, 27])
        assertClose(x.sum(alongAxes: [0, 2]), shape: [3], [14, 22, 30])
        assertClose(x.sum(alongAxes: [2, 0], keepingDimensions: true), shape: [1, 3, 1], [14, 22, 30])
        assertClose(x.sum(alongAxes: [0, 1, 2]), shape: [], [66])
        // Adjacent axes summed as one (rows of 20 and of 12), next to a separate one.
        let y = Tensor(shape: [2, 3, 4, 5], scalars: (0..<120).map(Float.init))
        assertClose(y.sum(alongAxes: [0, 2, 3]), shape: [3], [1580, 2380, 3180])
        assertClose(y.sum(alongAxes: [1, 2]), shape: [2, 5], [330, 342, 354, 366, 378, 1050, 1062, 1074, 1086, 1098])
        assertClose(y.sum(alongAxes: [3, 2, 0], keepingDimensions: true), shape: [1, 3, 1, 1], [1580, 2380, 3180])
        assertClose(x.sum(), shape: [], [66])
        assertClose(x.mean(), shape: [], [5.5])
        assertClose(x.mean(alongAxes: [1]), shape: [2, 2], [2, 3, 8, 9])
        assertClose(x.mean(alongAxes: [0, 2], keepingDimensions: true), shape: [1, 3, 1], [3.5, 5.5, 7.5])
        // An axis named twice (once negative) counts once, in the sum and in the divisor.
        assertClose(x.sum(alongAxes: [2, -1]), shape: [2, 3], [1, 5, 9, 13, 17, 21])
        assertClose(x.mean(alongAxes: [2, -1]), shape: [2, 3], [0.5, 2.5, 4.5, 6.5, 8.5, 10.5])
    }

    func testMaxAndArgmax() {
        let x = Tensor(shape: [2, 3], scalars: [1, 5, 5, 7, 2, 3])
        assertClose(x.max(alongAxis: 1), shape: [2], [5, 7])
        assertClose(x.max(alongAxis: 0), shape: [3], [7, 5, 5])
        assertClose(x.max(alongAxis: 0, keepingDimensions: true), shape: [1, 3], [7, 5, 5])
        XCTAssertEqual(x.argmax(alongAxis: 1).scalars, [1, 0], "ties go to the first index")
        XCTAssertEqual(x.argmax(alongAxis: 0).scalars, [1, 0, 0])
        XCTAssertEqual(x.argmax(alongAxis: -1).shape, [2])
        let negative = Tensor(shape: [1, 4], scalars: [-5, -1, -3, -2])
        XCTAssertEqual(negative.max(alongAxis: 1).scalars, [-1])
        XCTAssertEqual(negative.argmax(alongAxis: 1).scalars, [1])
        // Rank 3 against a brute-force reference.
        let y = normal([3, 4, 5])
        let v = y.scalars
        var expected: [Double] = [], expectedIndex: [Float] = []
        for o in 0..<3 {
            for i in 0..<5 {
                let column = (0..<4).map { v[(o * 4 + $0) * 5 + i] }
                expected.append(Double(column.max()!))
                expectedIndex.append(Float(column.firstIndex(of: column.max()!)!))
            }
        }
        assertClose(y.max(alongAxis: 1), shape: [3, 5], expected)
        XCTAssertEqual(y.argmax(alongAxis: 1).scalars, expectedIndex)
    }

    func testSumOfAMillionElementsKeepsPrecision() {
        let n = 1_000_000
        let x = Tensor.randomUniform([n], lower: 0, upper: 1, generator: &generator)
        let exact = x.scalars.reduce(0.0) { $0 + Double($1) }
        // Float partial sums folded into a Double are within ≈ 1e-8 of the exact sum, so the
        // result is off by little more than its own rounding to Float (≤ 3e-8 relative); folding
        // the blocks in Float instead is off by ≈ 2e-7 here.
        XCTAssertEqual(Double(x.sum().scalar), exact, accuracy: exact * 1e-7)
        XCTAssertEqual(Double(x.mean().scalar), exact / Double(n), accuracy: exact / Double(n) * 2e-7)
        // 0.1 a million times: a naive Float accumulation ends near 100958.
        let tenths = Tensor(repeating: 0.1, shape: [n])
        XCTAssertEqual(Double(tenths.sum().scalar), 100_000, accuracy: 1)
        // The axis reductions: one long row (accumulated in double) and a tall column block.
        XCTAssertEqual(Double(x.reshaped(to: [1, n]).sum(alongAxis: 1).scalar), exact, accuracy: exact * 1e-7)
        let columns = x.reshaped(to: [1000, 1000]).sum(alongAxis: 0).scalars
        let v = x.scalars
        var reference = [Double](repeating: 0, count: 1000)
        for r in 0..<1000 { for c in 0..<1000 { reference[c] += Double(v[r * 1000 + c]) } }
        assertClose(columns, reference, rtol: 1e-5, "column sums")
    }

    // MARK: Shape ops

    func testReshapeTransposeConcatSliceGather() {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(x.reshaped(to: [3, -1]).shape, [3, 2])
        XCTAssertEqual(x.reshaped(to: [-1]).scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(x.flattened().shape, [2, 3])
        XCTAssertEqual(Tensor.zeros([2, 3, 4]).flattened().shape, [2, 12])
        let t = x.transposed()
        XCTAssertEqual(t.shape, [3, 2])
        XCTAssertEqual(t.scalars, [1, 4, 2, 5, 3, 6])
        // Rank 3: output axis i is input axis p[i].
        let y = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        let p = y.transposed([2, 0, 1])
        XCTAssertEqual(p.shape, [4, 2, 3])
        var expected: [Float] = []
        for k in 0..<4 { for i in 0..<2 { for j in 0..<3 { expected.append(Float(i * 12 + j * 4 + k)) } } }
        XCTAssertEqual(p.scalars, expected)
        XCTAssertEqual(p.transposed([1, 2, 0]).scalars, y.scalars, "the inverse permutation restores the tensor")
        XCTAssertEqual(y.transposed().shape, [2, 4, 3])

        let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), b = Tensor(shape: [1, 2], scalars: [5, 6])
        let c0 = Tensor.concatenate([a, b], alongAxis: 0)
        XCTAssertEqual(c0.shape, [3, 2])
        XCTAssertEqual(c0.scalars, [1, 2, 3, 4, 5, 6])
        let c1 = Tensor.concatenate([a, Tensor(shape: [2, 1], scalars: [7, 8]), a], alongAxis: 1)
        XCTAssertEqual(c1.shape, [2, 5])
        XCTAssertEqual(c1.scalars, [1, 2, 7, 1, 2, 3, 4, 8, 3, 4])

        let s = y.slice(alongAxis: 1, 1..<3)
        XCTAssertEqual(s.shape, [2, 2, 4])
        XCTAssertEqual(s.scalars, (4..<12).map(Float.init) + (16..<24).map(Float.init))
        XCTAssertEqual(y.slice(alongAxis: -1, 3..<4).scalars, [3, 7, 11, 15, 19, 23])
        XCTAssertEqual(y.slice(alongAxis: 0, 1..<1).shape, [0, 3, 4])

        let rows = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]).gatherRows([2, 0, 2])
        XCTAssertEqual(rows.shape, [3, 2])
        XCTAssertEqual(rows.scalars, [5, 6, 1, 2, 5, 6])
        XCTAssertEqual(Tensor([1, 2, 3]).gatherRows([]).shape, [0])
    }

    func testUnbroadcastSumsTheExpandedAxes() {
        let g = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        XCTAssertTrue(g.unbroadcast(to: [2, 3, 4]).storage === g.storage)
        assertClose(g.unbroadcast(to: [4]), shape: [4], [60, 66, 72, 78])
        assertClose(g.unbroadcast(to: [3, 1]), shape: [3, 1], [60, 92, 124])
        assertClose(g.unbroadcast(to: [1, 4]), shape: [1, 4], [60, 66, 72, 78])
        assertClose(g.unbroadcast(to: [2, 1, 1]), shape: [2, 1, 1], [66, 210])
        assertClose(g.unbroadcast(to: [1, 3, 4]), shape: [1, 3, 4], (0..<12).map { Double($0 + $0 + 12) })
        assertClose(g.unbroadcast(to: []), shape: [], [276])
        assertClose(g.unbroadcast(to: [1]), shape: [1], [276])
    }

    // MARK: Linear algebra

    func testMatmulAllTransposeFlags() {
        let (m, k, n) = (3, 5, 4)
        let a = normal([m, k]), b = normal([k, n])
        let ad = a.scalars.map(Double.init), bd = b.scalars.map(Double.init)
        let expected = Reference.matmul(ad, bd, m: m, k: k, n: n)
        let aT = Tensor(shape: [k, m], scalars: Reference.transpose(ad, rows: m, columns: k).map(Float.init))
        let bT = Tensor(shape: [n, k], scalars: Reference.transpose(bd, rows: k, columns: n).map(Float.init))
        assertClose(a.matmul(b), shape: [m, n], expected, rtol: 1e-5, atol: 1e-5, "A B")
        assertClose(aT.matmul(b, transposeSelf: true), shape: [m, n], expected, rtol: 1e-5, atol: 1e-5, "Aᵀ B")
        assertClose(a.matmul(bT, transposeOther: true), shape: [m, n], expected, rtol: 1e-5, atol: 1e-5, "A Bᵀ")
        assertClose(aT.matmul(bT, transposeSelf: true, transposeOther: true), shape: [m, n], expected, rtol: 1e-5, atol: 1e-5, "Aᵀ Bᵀ")
        // A hand-computed product.
        let p = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]).matmul(Tensor(shape: [2, 1], scalars: [5, 6]))
        XCTAssertEqual(p.scalars, [17, 39])
    }

    func testLinearIsXWTransposePlusBias() {
        let x = normal([4, 3]), w = normal([5, 3]), b = normal([5])
        let product = Reference.matmul(
            x.scalars.map(Double.init),
            Reference.transpose(w.scalars.map(Double.init), rows: 5, columns: 3), m: 4, k: 3, n: 5)
        let bias = b.scalars.map(Double.init)
        assertClose(x.linear(weight: w, bias: nil), shape: [4, 5], product, rtol: 1e-5, atol: 1e-5, "no bias")
        assertClose(
            x.linear(weight: w, bias: b), shape: [4, 5], product.enumerated().map { $0.element + bias[$0.offset % 5] },
            rtol: 1e-5, atol: 1e-5, "with bias")
        // The bias was copied into the output, not modified.
        XCTAssertEqual(b.scalars.map(Double.init), bias)
    }

    // MARK: Losses (forward)

    func testSoftmaxCrossEntropyMatchesReference() {
        let logits = normal([4, 5], std: 2)
        let labels: [Int] = [0, 3, 1, 4]
        let weights: [Double] = [0.5, 1, 2, 0.25]
        let eps = 0.1
        let x = logits.scalars.map(Double.init)
        func reference(smoothing: Double, weights w: [Double]?) -> Double {
            var total = 0.0
            for i in 0..<4 {
                let p = Reference.softmax(Array(x[(i * 5)..<(i * 5 + 5)]))
                var loss = 0.0
                for j in 0..<5 {
                    let target = (j == labels[i] ? 1 - smoothing : 0) + smoothing / 5
                    loss -= target * Foundation.log(p[j])
                }
                total += loss * (w?[i] ?? 1)
            }
            return total / 4
        }
        let labelTensor = Tensor(labels.map(Float.init))
        let plain = logits.softmaxCrossEntropy(labels: labelTensor)
        XCTAssertEqual(plain.shape, [])
        XCTAssertEqual(Double(plain.scalar), reference(smoothing: 0, weights: nil), accuracy: 1e-5)
        let smoothed = logits.softmaxCrossEntropy(
            labels: labelTensor, labelSmoothing: Float(eps),
            sampleWeights: Tensor(weights.map(Float.init)))
        XCTAssertEqual(Double(smoothed.scalar), reference(smoothing: eps, weights: weights), accuracy: 1e-5)
        XCTAssertEqual(
            Double(Loss.softmaxCrossEntropy(labelSmoothing: Float(eps))(logits, labelTensor).scalar),
            reference(smoothing: eps, weights: nil), accuracy: 1e-5)
        XCTAssertTrue(Loss.softmaxCrossEntropy().isClassification)
        XCTAssertFalse(Loss.meanSquaredError.isClassification)
        // Large logits stay finite: a confident right answer costs ≈ 0, a confident wrong one ≈ 1000.
        let confident = Tensor(shape: [2, 2], scalars: [1000, -1000, 1000, -1000])
        XCTAssertEqual(Double(confident.softmaxCrossEntropy(labels: Tensor([0, 1])).scalar), 1000, accuracy: 1e-2)
    }

    func testSigmoidCrossEntropyMatchesReferenceAndIsStable() {
        let logits = Tensor(shape: [2, 3], scalars: [-100, -2, 0, 0.5, 3, 100])
        let targets = Tensor(shape: [2, 3], scalars: [0, 1, 0.5, 0, 1, 0])
        let x = logits.scalars.map(Double.init), t = targets.scalars.map(Double.init)
        let losses = zip(x, t).map { x, t in Swift.max(x, 0) - x * t + Foundation.log(1 + Foundation.exp(-Swift.abs(x))) }
        XCTAssertEqual(losses[5], 100, accuracy: 1e-9)
        XCTAssertEqual(Double(logits.sigmoidCrossEntropy(targets: targets).scalar), losses.reduce(0, +) / 6, accuracy: 1e-5)
        let weighted = zip(losses, [2.0, 2, 2, 0.5, 0.5, 0.5]).map { $0 * $1 }.reduce(0, +) / 6
        XCTAssertEqual(
            Double(logits.sigmoidCrossEntropy(targets: targets, sampleWeights: Tensor([2, 0.5])).scalar), weighted, accuracy: 1e-5)
        XCTAssertEqual(Double(Loss.sigmoidCrossEntropy(logits, targets.reshaped(to: [6])).scalar), losses.reduce(0, +) / 6, accuracy: 1e-5)
    }

    func testRegressionLosses() {
        let predictions = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
        let labels = Tensor(shape: [3, 2], scalars: [1.5, 2, 1, 4, 7, 5])
        // Differences: -0.5, 0, 2, 0, -2, 1.
        XCTAssertEqual(Loss.meanSquaredError(predictions, labels).scalar, (0.25 + 4 + 4 + 1) / 6, accuracy: 1e-6)
        XCTAssertEqual(Loss.meanAbsoluteError(predictions, labels).scalar, (0.5 + 2 + 2 + 1) / 6, accuracy: 1e-6)
        let w = Tensor([1, 0, 2])
        XCTAssertEqual(Loss.meanSquaredError(predictions, labels, sampleWeights: w).scalar, (0.25 + 2 * 5) / 6, accuracy: 1e-6)
        XCTAssertEqual(Loss.meanAbsoluteError(predictions, labels, sampleWeights: w).scalar, (0.5 + 2 * 3) / 6, accuracy: 1e-6)
        // Labels [N] against predictions [N, 1].
        XCTAssertEqual(Loss.meanSquaredError(Tensor(shape: [2, 1], scalars: [1, 2]), Tensor([0, 4])).scalar, 2.5, accuracy: 1e-6)
    }

    // MARK: Dropout (forward)

    func testDropoutKeepsOrScalesEachElement() {
        let x = normal([1000])
        let y = x.dropout(rate: 0.25, seed: 3, step: 1, salt: 0).scalars
        for (a, b) in zip(x.scalars, y) where b != 0 {
            XCTAssertEqual(b, a / 0.75, accuracy: 1e-6 * Swift.max(1, Swift.abs(b)))
        }
        XCTAssertEqual(x.dropout(rate: 0, seed: 3, step: 1, salt: 0).scalars, x.scalars)
    }

    // MARK: Multithreaded paths

    /// Runs `body` once on a single chunk and once split across 4 workers; the element-wise
    /// work must give bit-identical results.
    func compareThreading<T: Equatable>(_ name: String, _ body: () -> T, file: StaticString = #filePath, line: UInt = #line) {
        let saved = CPUParallel.threadCount
        defer { CPUParallel.threadCount = saved }
        CPUParallel.threadCount = 1
        let single = body()
        CPUParallel.threadCount = 4
        let split = body()
        XCTAssertTrue(single == split, "\(name): multithreaded result differs from the single-chunk one", file: file, line: line)
    }

    func testLargeTensorsGiveTheSameResultsOnEveryThreadCount() {
        // 350 × 400 = 140 000 elements: four chunks of ≥ 32 768 (CPUParallel.minimumChunk), with an uneven last one.
        XCTAssertGreaterThanOrEqual(350 * 400, 4 * CPUParallel.minimumChunk)
        let a = normal([350, 400]), b = normal([350, 400]) + 5, row = normal([400]), column = normal([350, 1])
        let positive = a.abs() + 0.1
        compareThreading("add") { (a + b).scalars }
        compareThreading("subtract") { (a - b).scalars }
        compareThreading("multiply") { (a * b).scalars }
        compareThreading("divide") { (a / b).scalars }
        compareThreading("broadcast row") { (a + row).scalars }
        compareThreading("broadcast column") { (a * column).scalars }
        compareThreading("broadcast outer") { (column - row).scalars }
        compareThreading("scalar") { (a * 3 + 1).scalars }
        compareThreading("maximum") { a.maximum(b).scalars }
        compareThreading("greater") { a.greater(row).scalars }
        compareThreading("unary") {
            [a.exp(), positive.log(), positive.sqrt(), a.relu(), a.sigmoid(), a.tanh(), a.gelu(), a.abs(), -a].map(\.scalars)
        }
        compareThreading("pow") { [a.pow(2), positive.pow(1.5)].map(\.scalars) }
        compareThreading("affine") { a.affine(scale: 2, shift: -1).scalars }
        compareThreading("softmax") { a.reshaped(to: [2000, 70]).softmax().scalars }
        compareThreading("logSoftmax") { a.reshaped(to: [2000, 70]).logSoftmax().scalars }
        compareThreading("dropout") { a.dropout(rate: 0.3, seed: 1, step: 2, salt: 3).scalars }
        compareThreading("activation backward") {
            let x = a.trainable()
            let loss = (x.relu() + x.sigmoid() + x.tanh() + x.gelu()).sum()
            return gradients(of: loss, wrt: [x])[0].scalars
        }
        compareThreading("broadcast backward") {
            let x = a.trainable(), r = row.trainable()
            return gradients(of: (x * r).sum(), wrt: [x, r]).map(\.scalars)
        }
        // And the values themselves are right on the split path.
        let saved = CPUParallel.threadCount
        CPUParallel.threadCount = 4
        defer { CPUParallel.threadCount = saved }
        let av = a.scalars, bv = b.scalars, rv = row.scalars
        assertClose((a + b).scalars, zip(av, bv).map { Double($0) + Double($1) }, "split add")
        assertClose((a + row).scalars, av.enumerated().map { Double($0.element) + Double(rv[$0.offset % 400]) }, "split broadcast")
        assertClose(a.sigmoid().scalars, av.map { 1 / (1 + Foundation.exp(-Double($0))) }, rtol: 2e-6, atol: 1e-7, "split sigmoid")
        let rows = a.reshaped(to: [2000, 70]).softmax().sum(alongAxis: 1).scalars
        assertClose(rows, [Double](repeating: 1, count: 2000), rtol: 1e-5, "split softmax rows")
    }
}
