import XCTest

@testable import Learner

// MARK: - Finite-difference gradient checks, driven by the op registry
//
// Every case of `OpKind` (Sources/Learner/Autodiff/Tape.swift) must have at least one entry in
// `GradientCheckTests.cases`; `testEveryOpMatchesFiniteDifferences` fails naming any op that has
// none, so a new op cannot land without a gradient check.
//
// How a case is checked. The op's output y (any shape) is contracted with a fixed random tensor
// R of y's shape: L = Σ y ⊙ R. R makes the upstream gradient dL/dy = R non-trivial (with
// L = Σ y, softmax's gradient would be identically zero and a transposed or mis-broadcast
// gradient could go unnoticed). The analytic gradient is `gradients(of: L, wrt:)`; the numeric
// one is the central difference (L(x + h) − L(x − h)) / ((x + h) − (x − h)) for every element
// of every trainable input, with L summed in Double from the Float32 values of y, and the
// denominator taken from the perturbed Float values actually used.
//
// Why a relative tolerance of a few 1e-3 (not the 1e-6 of a Double check). The forward pass
// runs in Float32: each value of y carries a rounding error of a few ulps (≈ 1e-7 relative,
// more after exp/log/tanh chains), which the central difference divides by 2h ≈ 2e-2, giving
// ≈ 1e-5 noise relative to |L|'s terms; a smaller h would amplify that noise, a larger one the
// O(h²) truncation error, which is ≈ 1e-4 absolute for the functions and input ranges used here
// (x³ at h = 1e-2: h²·f‴/6 = 1e-4). The usual Float32 choice is 1e-2; measured on these cases
// the worst error is 8% of a (1e-2 relative + 1e-3 absolute) allowance, so the default here is
// 3e-3 relative + 3e-4 absolute (worst case then ≈ 27% of the allowance): deterministic inputs
// (seeded) make that safe, and it catches a rule that is off by 1%, while the typical wrong
// rule (a missing factor, a sign, a transposition, an un-summed broadcast axis, a dropped
// accumulation) is off by O(1). The absolute floor covers gradient elements that are ≈ 0.
//
// Inputs are drawn away from kinks and singularities: relu/abs inputs at least 0.2 from 0,
// log/sqrt/pow inputs positive, max without near-ties, divisors away from 0. Each case also
// asserts that the tape it built really contains a node of its op.

/// One finite-difference check of an op.
struct GradientCase {
    let name: String
    /// Input values, drawn from the case's seeded generator.
    let makeInputs: (inout RandomGenerator) -> [Tensor]
    /// Which inputs are differentiated (nil: all). Non-trainable inputs exercise the rules'
    /// "this input needs no gradient" paths.
    let trainable: [Bool]?
    /// The op under test applied to the inputs; the output may have any shape.
    let function: ([Tensor]) -> Tensor
    /// Finite-difference step.
    let step: Float
    let relativeTolerance: Double
    let absoluteTolerance: Double

    init(
        _ name: String, step: Float = 1e-2, relativeTolerance: Double = 3e-3, absoluteTolerance: Double = 3e-4,
        trainable: [Bool]? = nil, inputs: @escaping (inout RandomGenerator) -> [Tensor],
        _ function: @escaping ([Tensor]) -> Tensor
    ) {
        self.name = name
        self.makeInputs = inputs
        self.trainable = trainable
        self.function = function
        self.step = step
        self.relativeTolerance = relativeTolerance
        self.absoluteTolerance = absoluteTolerance
    }
}

// MARK: Input generators

enum Inputs {
    static func normal(_ shape: [Int], _ g: inout RandomGenerator, std: Float = 1) -> Tensor {
        .randomNormal(shape, standardDeviation: std, generator: &g)
    }

    static func uniform(_ shape: [Int], _ lower: Float, _ upper: Float, _ g: inout RandomGenerator) -> Tensor {
        .randomUniform(shape, lower: lower, upper: upper, generator: &g)
    }

    /// Values of random sign with magnitude in [margin, margin + 1.5): no element near 0.
    static func awayFromZero(_ shape: [Int], _ g: inout RandomGenerator, margin: Float = 0.2) -> Tensor {
        let n = shape.reduce(1, *)
        let values = (0..<n).map { _ -> Float in
            let magnitude = margin + 1.5 * g.nextUniform()
            return g.nextUniform() < 0.5 ? -magnitude : magnitude
        }
        return Tensor(shape: shape, scalars: values)
    }

    /// Distinct values 0.1 apart in random order (plus a little jitter): no ties within 2h.
    static func distinct(_ shape: [Int], _ g: inout RandomGenerator) -> Tensor {
        let n = shape.reduce(1, *)
        var values = (0..<n).map { Float($0) * 0.1 - Float(n) * 0.05 }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(g.next() % UInt64(i + 1))
            values.swapAt(i, j)
        }
        return Tensor(shape: shape, scalars: values.map { $0 + 0.02 * (g.nextUniform() - 0.5) })
    }

    /// Class labels in 0..<classes, stored as Float.
    static func labels(_ count: Int, classes: Int, _ g: inout RandomGenerator) -> Tensor {
        Tensor((0..<count).map { _ in Float(g.next() % UInt64(classes)) })
    }
}

// MARK: The checker

enum GradientChecker {
    struct Result {
        var failures: [String] = []
        var recordedOps: Set<OpKind> = []
    }

    /// The kinds of every node reachable from `tensor` on the tape.
    static func recordedOps(_ tensor: Tensor) -> Set<OpKind> {
        guard let root = tensor.node else { return [] }
        var seen = Set<ObjectIdentifier>([ObjectIdentifier(root)])
        var stack = [root]
        var ops = Set<OpKind>()
        while let node = stack.popLast() {
            if let op = node.op { ops.insert(op) }
            for case let child? in node.inputs where seen.insert(ObjectIdentifier(child)).inserted { stack.append(child) }
        }
        return ops
    }

    static func run(_ c: GradientCase, seed: UInt64) -> Result {
        var result = Result()
        var generator = RandomGenerator(seed: seed)
        let values = c.makeInputs(&generator)
        let mask = c.trainable ?? [Bool](repeating: true, count: values.count)
        precondition(mask.count == values.count, "\(c.name): trainable mask does not match inputs")

        // Analytic gradients.
        let leaves = zip(values, mask).map { value, isTrainable in isTrainable ? value.detached().trainable() : value.detached() }
        let output = c.function(leaves)
        let upstream = Tensor.randomNormal(output.shape, generator: &generator)
        let loss = (output * upstream).sum()
        result.recordedOps = recordedOps(loss)
        let trainableIndices = values.indices.filter { mask[$0] }
        let analytic = gradients(of: loss, wrt: trainableIndices.map { leaves[$0] })

        // Numeric gradients: L in Double from the Float32 forward values.
        let weights = upstream.scalars.map(Double.init)
        func objective(_ inputs: [Tensor]) -> Double {
            let y = withoutGradients { c.function(inputs) }
            precondition(y.shape == output.shape, "\(c.name): output shape changed from \(output.shape) to \(y.shape)")
            var total = 0.0
            for (v, w) in zip(y.scalars, weights) { total += Double(v) * w }
            return total
        }
        let work = values.map { $0.copy() }
        for (k, i) in trainableIndices.enumerated() {
            let grad = analytic[k]
            guard grad.shape == values[i].shape else {
                result.failures.append("\(c.name): gradient of input \(i) has shape \(grad.shape), input has \(values[i].shape)")
                continue
            }
            let analyticValues = grad.scalars
            let p = work[i].storage.pointer
            var bad: [String] = []
            var worst = 0.0
            for j in 0..<work[i].scalarCount {
                let original = p[j]
                let plus = original + c.step, minus = original - c.step
                p[j] = plus
                let fPlus = objective(work)
                p[j] = minus
                let fMinus = objective(work)
                p[j] = original
                let numeric = (fPlus - fMinus) / (Double(plus) - Double(minus))
                let a = Double(analyticValues[j])
                let error = Swift.abs(a - numeric)
                let allowed = c.absoluteTolerance + c.relativeTolerance * Swift.max(Swift.abs(a), Swift.abs(numeric))
                worst = Swift.max(worst, error / allowed)
                if !(error <= allowed) {
                    bad.append("element \(j): analytic \(a), numeric \(numeric)")
                }
            }
            if !bad.isEmpty {
                result.failures.append(
                    "\(c.name): gradient of input \(i) \(values[i].shape) differs from finite differences "
                        + "at \(bad.count) of \(work[i].scalarCount) elements (worst error/allowed \(worst)): "
                        + bad.prefix(4).joined(separator: "; "))
            }
        }
        return result
    }
}

final class GradientCheckTests: XCTestCase {
    typealias C = GradientCase

    /// Broadcasting patterns for the binary ops: (name, shape of a, shape of b).
    static let broadcastPatterns: [(String, [Int], [Int])] = [
        ("[3,4] ∘ [3,4]", [3, 4], [3, 4]),
        ("[3,4] ∘ [4]", [3, 4], [4]),
        ("[4] ∘ [3,4]", [4], [3, 4]),
        ("[3,1] ∘ [1,4]", [3, 1], [1, 4]),
        ("[3,4] ∘ scalar", [3, 4], []),
        ("scalar ∘ [3,4]", [], [3, 4]),
        ("[2,3,4] ∘ [3,1]", [2, 3, 4], [3, 1]),
        ("[2,1,4] ∘ [3,1]", [2, 1, 4], [3, 1]),
    ]

    static func binaryCases(
        _ name: String, divisorAwayFromZero: Bool = false,
        _ op: @escaping (Tensor, Tensor) -> Tensor
    ) -> [GradientCase] {
        var cases = broadcastPatterns.map { label, sa, sb in
            C(
                "\(name) \(label)",
                inputs: { g in
                    [Inputs.normal(sa, &g), divisorAwayFromZero ? Inputs.awayFromZero(sb, &g, margin: 0.5) : Inputs.normal(sb, &g)]
                }
            ) { x in op(x[0], x[1]) }
        }
        cases.append(
            C(
                "\(name) [3,4] ∘ [4], only the first trainable", trainable: [true, false],
                inputs: { g in
                    [Inputs.normal([3, 4], &g), divisorAwayFromZero ? Inputs.awayFromZero([4], &g, margin: 0.5) : Inputs.normal([4], &g)]
                }
            ) { x in op(x[0], x[1]) })
        cases.append(
            C(
                "\(name) [3,1] ∘ [1,4], only the second trainable", trainable: [false, true],
                inputs: { g in
                    [
                        Inputs.normal([3, 1], &g),
                        divisorAwayFromZero ? Inputs.awayFromZero([1, 4], &g, margin: 0.5) : Inputs.normal([1, 4], &g),
                    ]
                }
            ) { x in op(x[0], x[1]) })
        return cases
    }

    static func unaryCase(
        _ name: String, shape: [Int] = [3, 4], step: Float = 1e-2,
        input: @escaping ([Int], inout RandomGenerator) -> Tensor,
        _ op: @escaping (Tensor) -> Tensor
    ) -> GradientCase {
        C(name, step: step, inputs: { g in [input(shape, &g)] }) { x in op(x[0]) }
    }

    /// The registry's table: at least one check per op. Made on each use: the cases hold
    /// closures that are not Sendable, so the table cannot be a shared `static let`.
    static var cases: [OpKind: [GradientCase]] {
        [
            .add: binaryCases("add", +) + [
                C("x + Float", inputs: { g in [Inputs.normal([3, 2], &g)] }) { x in x[0] + 2.5 },
                C("x + x (same tensor twice)", inputs: { g in [Inputs.normal([5], &g)] }) { x in x[0] + x[0] },
            ],
            .subtract: binaryCases("subtract", -) + [
                C("Float − x", inputs: { g in [Inputs.normal([3, 2], &g)] }) { x in 1.5 - x[0] }
            ],
            .multiply: binaryCases("multiply", *) + [
                C("x * x (same tensor twice)", inputs: { g in [Inputs.normal([2, 3], &g)] }) { x in x[0] * x[0] },
                C("x.squared()", inputs: { g in [Inputs.normal([2, 3], &g)] }) { x in x[0].squared() },
                C("x / Float (a multiply)", inputs: { g in [Inputs.normal([2, 3], &g)] }) { x in x[0] / 4 },
            ],
            .divide: binaryCases("divide", divisorAwayFromZero: true, /) + [
                C("Float / x", inputs: { g in [Inputs.awayFromZero([3, 2], &g, margin: 0.5)] }) { x in 2 / x[0] },
                C("x / x (same tensor twice)", inputs: { g in [Inputs.awayFromZero([4], &g, margin: 0.5)] }) { x in x[0] / x[0] },
            ],
            .negate: [unaryCase("negate", input: { Inputs.normal($0, &$1) }) { -$0 }],
            .exp: [unaryCase("exp", input: { Inputs.uniform($0, -2, 2, &$1) }) { $0.exp() }],
            .log: [unaryCase("log", input: { Inputs.uniform($0, 0.3, 3, &$1) }) { $0.log() }],
            .sqrt: [unaryCase("sqrt", input: { Inputs.uniform($0, 0.3, 3, &$1) }) { $0.sqrt() }],
            .pow: [
                unaryCase("pow 3", input: { Inputs.normal($0, &$1) }) { $0.pow(3) },
                unaryCase("pow 2 (the squaring fast path)", input: { Inputs.normal($0, &$1) }) { $0.pow(2) },
                unaryCase("pow 0.5", input: { Inputs.uniform($0, 0.5, 2, &$1) }) { $0.pow(0.5) },
                unaryCase("pow −1.5", input: { Inputs.uniform($0, 0.5, 2, &$1) }) { $0.pow(-1.5) },
            ],
            .abs: [unaryCase("abs", input: { Inputs.awayFromZero($0, &$1) }) { $0.abs() }],
            .relu: [unaryCase("relu", input: { Inputs.awayFromZero($0, &$1) }) { $0.relu() }],
            .gelu: [unaryCase("gelu", input: { Inputs.normal($0, &$1, std: 2) }) { $0.gelu() }],
            .sigmoid: [unaryCase("sigmoid", input: { Inputs.normal($0, &$1, std: 2) }) { $0.sigmoid() }],
            .tanh: [unaryCase("tanh", input: { Inputs.normal($0, &$1, std: 1.5) }) { $0.tanh() }],
            .softplus: [
                unaryCase("softplus", input: { Inputs.normal($0, &$1, std: 3) }) { $0.softplus() },
                unaryCase("softplus across its threshold 20", input: { Inputs.uniform($0, 15, 25, &$1) }) { $0.softplus() },
            ],
            .softmax: [
                unaryCase("softmax [3,5]", shape: [3, 5], input: { Inputs.normal($0, &$1, std: 2) }) { $0.softmax() },
                unaryCase("softmax [2,2,4]", shape: [2, 2, 4], input: { Inputs.normal($0, &$1) }) { $0.softmax() },
            ],
            .logSoftmax: [
                unaryCase("logSoftmax [3,5]", shape: [3, 5], input: { Inputs.normal($0, &$1, std: 2) }) { $0.logSoftmax() },
                unaryCase("logSoftmax [2,2,4]", shape: [2, 2, 4], input: { Inputs.normal($0, &$1) }) { $0.logSoftmax() },
            ],
            .sum: [
                unaryCase("sum() of all", shape: [3, 4], input: { Inputs.normal($0, &$1) }) { $0.sum() },
                unaryCase("sum axis 0", shape: [3, 4], input: { Inputs.normal($0, &$1) }) { $0.sum(alongAxis: 0) },
                unaryCase("sum axis 1 keeping dimensions", shape: [3, 4], input: { Inputs.normal($0, &$1) }) {
                    $0.sum(alongAxis: 1, keepingDimensions: true)
                },
                unaryCase("sum axis −1 of rank 3", shape: [2, 3, 4], input: { Inputs.normal($0, &$1) }) { $0.sum(alongAxis: -1) },
                unaryCase("sum axes [0,2]", shape: [2, 3, 4], input: { Inputs.normal($0, &$1) }) { $0.sum(alongAxes: [0, 2]) },
                unaryCase("sum axes [0,2] keeping dimensions", shape: [2, 3, 4], input: { Inputs.normal($0, &$1) }) {
                    $0.sum(alongAxes: [2, 0], keepingDimensions: true)
                },
                unaryCase("sum all axes [0,1]", shape: [3, 4], input: { Inputs.normal($0, &$1) }) { $0.sum(alongAxes: [0, 1]) },
            ],
            .mean: [
                unaryCase("mean() of all", shape: [3, 4], input: { Inputs.normal($0, &$1) }) { $0.mean() },
                unaryCase("mean() of rank 3", shape: [2, 3, 2], input: { Inputs.normal($0, &$1) }) { $0.mean() },
                unaryCase("mean axis 1", shape: [3, 4], input: { Inputs.normal($0, &$1) }) { $0.mean(alongAxes: [1]) },
                unaryCase("mean axis 0 keeping dimensions", shape: [3, 4], input: { Inputs.normal($0, &$1) }) {
                    $0.mean(alongAxes: [0], keepingDimensions: true)
                },
                unaryCase("mean axes [0,2]", shape: [2, 3, 4], input: { Inputs.normal($0, &$1) }) { $0.mean(alongAxes: [0, 2]) },
            ],
            .max: [
                unaryCase("max axis 1", shape: [3, 5], input: { Inputs.distinct($0, &$1) }) { $0.max(alongAxis: 1) },
                unaryCase("max axis 0 keeping dimensions", shape: [3, 5], input: { Inputs.distinct($0, &$1) }) {
                    $0.max(alongAxis: 0, keepingDimensions: true)
                },
                unaryCase("max axis 1 of rank 3", shape: [2, 4, 3], input: { Inputs.distinct($0, &$1) }) { $0.max(alongAxis: 1) },
                unaryCase("max axis −1 of rank 3", shape: [2, 3, 4], input: { Inputs.distinct($0, &$1) }) { $0.max(alongAxis: -1) },
            ],
            .reshape: [
                unaryCase("reshape [2,6] → [3,4]", shape: [2, 6], input: { Inputs.normal($0, &$1) }) { $0.reshaped(to: [3, 4]) },
                unaryCase("reshape [2,3,2] → [-1]", shape: [2, 3, 2], input: { Inputs.normal($0, &$1) }) { $0.reshaped(to: [-1]) },
                unaryCase("flattened [2,3,2]", shape: [2, 3, 2], input: { Inputs.normal($0, &$1) }) { $0.flattened() },
                // A reshape between two ops, so the reshaped gradient feeds another rule.
                unaryCase("reshape then softmax", shape: [12], input: { Inputs.normal($0, &$1) }) {
                    $0.reshaped(to: [4, -1]).softmax()
                },
            ],
            .transpose: [
                unaryCase("transposed() 2D", shape: [3, 4], input: { Inputs.normal($0, &$1) }) { $0.transposed() },
                unaryCase("transposed [2,0,1]", shape: [2, 3, 4], input: { Inputs.normal($0, &$1) }) { $0.transposed([2, 0, 1]) },
                unaryCase("transposed [1,2,0]", shape: [2, 3, 4], input: { Inputs.normal($0, &$1) }) { $0.transposed([1, 2, 0]) },
                unaryCase("transposed() rank 3 (last two)", shape: [2, 3, 4], input: { Inputs.normal($0, &$1) }) { $0.transposed() },
                unaryCase("transpose then matmul", shape: [3, 4], input: { Inputs.normal($0, &$1) }) { x in
                    x.transposed().matmul(Tensor(shape: [3, 2], scalars: [1, -2, 0.5, 3, -1, 2]))
                },
            ],
            .concat: [
                C("concat axis 0", inputs: { g in [Inputs.normal([2, 3], &g), Inputs.normal([1, 3], &g), Inputs.normal([3, 3], &g)] }) {
                    x in
                    Tensor.concatenate(x, alongAxis: 0)
                },
                C("concat axis 1", inputs: { g in [Inputs.normal([2, 3], &g), Inputs.normal([2, 2], &g)] }) { x in
                    Tensor.concatenate(x, alongAxis: 1)
                },
                C("concat axis −1 of rank 3", inputs: { g in [Inputs.normal([2, 2, 1], &g), Inputs.normal([2, 2, 3], &g)] }) { x in
                    Tensor.concatenate(x, alongAxis: -1)
                },
                C("concat of the same tensor twice", inputs: { g in [Inputs.normal([2, 3], &g)] }) { x in
                    Tensor.concatenate([x[0], x[0]], alongAxis: 1)
                },
                C(
                    "concat with a constant", trainable: [true, false],
                    inputs: { g in [Inputs.normal([2, 3], &g), Inputs.normal([2, 3], &g)] }
                ) { x in
                    Tensor.concatenate(x, alongAxis: 0)
                },
            ],
            .slice: [
                unaryCase("slice axis 0 1..<3", shape: [4, 3], input: { Inputs.normal($0, &$1) }) { $0.slice(alongAxis: 0, 1..<3) },
                unaryCase("slice axis 1 2..<4", shape: [3, 5], input: { Inputs.normal($0, &$1) }) { $0.slice(alongAxis: 1, 2..<4) },
                unaryCase("slice axis 1 of rank 3", shape: [2, 4, 3], input: { Inputs.normal($0, &$1) }) { $0.slice(alongAxis: 1, 0..<2) },
                unaryCase("two overlapping slices", shape: [5, 2], input: { Inputs.normal($0, &$1) }) { x in
                    x.slice(alongAxis: 0, 0..<3) * x.slice(alongAxis: 0, 2..<5)
                },
            ],
            .gatherRows: [
                unaryCase("gatherRows with repeated indices", shape: [4, 3], input: { Inputs.normal($0, &$1) }) {
                    $0.gatherRows([2, 0, 2, 3, 2])
                },
                unaryCase("gatherRows of rank 3", shape: [3, 2, 2], input: { Inputs.normal($0, &$1) }) { $0.gatherRows([1, 1, 0]) },
                unaryCase("gatherRows of rank 1", shape: [5], input: { Inputs.normal($0, &$1) }) { $0.gatherRows([4, 4, 1]) },
            ],
            .batchedMatmul: [
                // Two matrices of m×k = 3×4 and k×n = 4×2, stored transposed when flagged.
                C("batchedMatmul A B", inputs: { g in [Inputs.normal([2, 3, 4], &g), Inputs.normal([2, 4, 2], &g)] }) { x in
                    x[0].batchedMatmul(x[1])
                },
                C("batchedMatmul Aᵀ B", inputs: { g in [Inputs.normal([2, 4, 3], &g), Inputs.normal([2, 4, 2], &g)] }) { x in
                    x[0].batchedMatmul(x[1], transposeSelf: true)
                },
                C("batchedMatmul A Bᵀ", inputs: { g in [Inputs.normal([2, 3, 4], &g), Inputs.normal([2, 2, 4], &g)] }) { x in
                    x[0].batchedMatmul(x[1], transposeOther: true)
                },
                C("batchedMatmul Aᵀ Bᵀ", inputs: { g in [Inputs.normal([3, 4, 3], &g), Inputs.normal([3, 2, 4], &g)] }) { x in
                    x[0].batchedMatmul(x[1], transposeSelf: true, transposeOther: true)
                },
                C("batchedMatmul of one matrix", inputs: { g in [Inputs.normal([1, 3, 4], &g), Inputs.normal([1, 4, 2], &g)] }) { x in
                    x[0].batchedMatmul(x[1])
                },
            ],
            .matmul: [
                // A is m×k = 3×4 (stored 4×3 when transposed), B is k×n = 4×2 (stored 2×4 when transposed).
                C("matmul A B", inputs: { g in [Inputs.normal([3, 4], &g), Inputs.normal([4, 2], &g)] }) { x in x[0].matmul(x[1]) },
                C("matmul Aᵀ B", inputs: { g in [Inputs.normal([4, 3], &g), Inputs.normal([4, 2], &g)] }) { x in
                    x[0].matmul(x[1], transposeSelf: true)
                },
                C("matmul A Bᵀ", inputs: { g in [Inputs.normal([3, 4], &g), Inputs.normal([2, 4], &g)] }) { x in
                    x[0].matmul(x[1], transposeOther: true)
                },
                C("matmul Aᵀ Bᵀ", inputs: { g in [Inputs.normal([4, 3], &g), Inputs.normal([2, 4], &g)] }) { x in
                    x[0].matmul(x[1], transposeSelf: true, transposeOther: true)
                },
                C(
                    "matmul A B, only A trainable", trainable: [true, false],
                    inputs: { g in [Inputs.normal([3, 4], &g), Inputs.normal([4, 2], &g)] }
                ) { x in
                    x[0].matmul(x[1])
                },
                C(
                    "matmul Aᵀ Bᵀ, only B trainable", trainable: [false, true],
                    inputs: { g in [Inputs.normal([4, 3], &g), Inputs.normal([2, 4], &g)] }
                ) { x in
                    x[0].matmul(x[1], transposeSelf: true, transposeOther: true)
                },
                C("matmul A Aᵀ (same tensor twice)", inputs: { g in [Inputs.normal([3, 4], &g)] }) { x in
                    x[0].matmul(x[0], transposeOther: true)
                },
            ],
            .linear: [
                C("linear with bias", inputs: { g in [Inputs.normal([3, 4], &g), Inputs.normal([2, 4], &g), Inputs.normal([2], &g)] }) {
                    x in
                    x[0].linear(weight: x[1], bias: x[2])
                },
                C("linear without bias", inputs: { g in [Inputs.normal([3, 4], &g), Inputs.normal([5, 4], &g)] }) { x in
                    x[0].linear(weight: x[1], bias: nil)
                },
                C(
                    "linear, input not trainable", trainable: [false, true, true],
                    inputs: { g in [Inputs.normal([3, 4], &g), Inputs.normal([2, 4], &g), Inputs.normal([2], &g)] }
                ) { x in
                    x[0].linear(weight: x[1], bias: x[2])
                },
                C(
                    "linear, only the input trainable", trainable: [true, false, false],
                    inputs: { g in [Inputs.normal([3, 4], &g), Inputs.normal([2, 4], &g), Inputs.normal([2], &g)] }
                ) { x in
                    x[0].linear(weight: x[1], bias: x[2])
                },
                C(
                    "Dense layer: relu(linear) through Parameters",
                    inputs: { g in
                        [Inputs.normal([4, 3], &g), Inputs.normal([2, 3], &g), Inputs.uniform([2], 3, 4, &g)]
                    }
                ) { x in
                    // Biases of 3..4 and small inputs keep the pre-activations away from relu's kink.
                    (x[0] * 0.2).linear(weight: x[1] * 0.2, bias: x[2]).relu()
                },
            ],
            .dropout: [
                unaryCase("dropout rate 0.3", shape: [4, 5], input: { Inputs.normal($0, &$1) }) {
                    $0.dropout(rate: 0.3, seed: 42, step: 7, salt: 3)
                },
                unaryCase("dropout rate 0.5 of rank 3", shape: [2, 3, 4], input: { Inputs.normal($0, &$1) }) {
                    $0.dropout(rate: 0.5, seed: 1, step: 2, salt: 99)
                },
            ],
            .conv2d: [
                C(
                    "conv2d 3×3 padding 1 with bias",
                    inputs: { g in
                        [Inputs.normal([2, 3, 5, 5], &g), Inputs.normal([4, 3, 3, 3], &g), Inputs.normal([4], &g)]
                    }
                ) { x in x[0].conv2d(weight: x[1], bias: x[2], padding: 1) },
                C(
                    "conv2d stride 2, asymmetric padding, 3×2 kernel, no bias",
                    inputs: { g in
                        [Inputs.normal([1, 2, 6, 5], &g), Inputs.normal([3, 2, 3, 2], &g)]
                    }
                ) { x in x[0].conv2d(weight: x[1], stride: 2, padding: .explicit(top: 0, bottom: 1, left: 1, right: 0)) },
                C(
                    "conv2d dilation 2, same padding",
                    inputs: { g in
                        [Inputs.normal([1, 2, 7, 6], &g), Inputs.normal([2, 2, 3, 3], &g)]
                    }
                ) { x in x[0].conv2d(weight: x[1], padding: .same, dilation: 2) },
                C(
                    "conv2d groups 2 with bias",
                    inputs: { g in
                        [Inputs.normal([2, 4, 4, 4], &g), Inputs.normal([6, 2, 3, 3], &g), Inputs.normal([6], &g)]
                    }
                ) { x in x[0].conv2d(weight: x[1], bias: x[2], padding: 1, groups: 2) },
                C(
                    "conv2d depthwise (groups = C, multiplier 2), stride 2",
                    inputs: { g in
                        [Inputs.normal([1, 3, 5, 5], &g), Inputs.normal([6, 1, 3, 3], &g)]
                    }
                ) { x in x[0].conv2d(weight: x[1], stride: 2, padding: 1, groups: 3) },
                C(
                    "conv2d pointwise 1×1 with bias",
                    inputs: { g in
                        [Inputs.normal([2, 3, 3, 4], &g), Inputs.normal([5, 3, 1, 1], &g), Inputs.normal([5], &g)]
                    }
                ) { x in x[0].conv2d(weight: x[1], bias: x[2]) },
                C(
                    "conv2d, input not trainable", trainable: [false, true, true],
                    inputs: { g in
                        [Inputs.normal([2, 2, 4, 4], &g), Inputs.normal([3, 2, 2, 2], &g), Inputs.normal([3], &g)]
                    }
                ) { x in x[0].conv2d(weight: x[1], bias: x[2], stride: Size2D(1, 2)) },
                C(
                    "conv2d, only the input trainable", trainable: [true, false],
                    inputs: { g in
                        [Inputs.normal([1, 2, 5, 5], &g), Inputs.normal([2, 2, 3, 3], &g)]
                    }
                ) { x in x[0].conv2d(weight: x[1], stride: 2, padding: 1, dilation: Size2D(2, 1)) },
            ],
            .convTranspose2d: [
                C(
                    "convTranspose2d stride 2, padding 1, output padding 1, bias",
                    inputs: { g in
                        [Inputs.normal([1, 3, 3, 3], &g), Inputs.normal([3, 2, 3, 3], &g), Inputs.normal([2], &g)]
                    }
                ) { x in x[0].convTranspose2d(weight: x[1], bias: x[2], stride: 2, padding: 1, outputPadding: 1) },
                C(
                    "convTranspose2d groups 2, dilation 2",
                    inputs: { g in
                        [Inputs.normal([2, 4, 3, 3], &g), Inputs.normal([4, 1, 2, 2], &g)]
                    }
                ) { x in x[0].convTranspose2d(weight: x[1], dilation: 2, groups: 2) },
            ],
            .batchNorm: [
                C(
                    "batchNorm training [N, C]",
                    inputs: { g in
                        [Inputs.normal([5, 3], &g), Inputs.uniform([3], 0.5, 1.5, &g), Inputs.normal([3], &g)]
                    }
                ) { x in x[0].batchNorm(weight: x[1], bias: x[2]).output },
                C(
                    "batchNorm training [N, C, H, W]",
                    inputs: { g in
                        [Inputs.normal([2, 3, 3, 2], &g), Inputs.uniform([3], 0.5, 1.5, &g), Inputs.normal([3], &g)]
                    }
                ) { x in x[0].batchNorm(weight: x[1], bias: x[2]).output },
                C(
                    "batchNorm evaluation with given statistics", trainable: [true, true, true, false, false],
                    inputs: { g in
                        [
                            Inputs.normal([2, 3, 2, 2], &g), Inputs.uniform([3], 0.5, 1.5, &g), Inputs.normal([3], &g),
                            Inputs.normal([3], &g), Inputs.uniform([3], 0.5, 2, &g),
                        ]
                    }
                ) { x in x[0].batchNorm(weight: x[1], bias: x[2], mean: x[3], variance: x[4]) },
                C(
                    "batchNorm training, only the input trainable", trainable: [true, false, false],
                    inputs: { g in
                        [Inputs.normal([3, 2, 2, 2], &g), Inputs.uniform([2], 0.5, 1.5, &g), Inputs.normal([2], &g)]
                    }
                ) { x in x[0].batchNorm(weight: x[1], bias: x[2]).output },
            ],
            .maxPool2d: [
                unaryCase("maxPool2d 2×2", shape: [1, 2, 4, 4], input: { Inputs.distinct($0, &$1) }) { $0.maxPool2d(kernel: 2) },
                unaryCase("maxPool2d 3×3 stride 2 padding 1", shape: [2, 1, 5, 5], input: { Inputs.distinct($0, &$1) }) {
                    $0.maxPool2d(kernel: 3, stride: 2, padding: 1)
                },
                unaryCase("maxPool2d 2×3 stride 1, dilation 2", shape: [1, 2, 5, 6], input: { Inputs.distinct($0, &$1) }) {
                    $0.maxPool2d(kernel: Size2D(2, 3), stride: 1, dilation: 2)
                },
            ],
            .avgPool2d: [
                unaryCase("avgPool2d 2×2", shape: [1, 2, 4, 4], input: { Inputs.normal($0, &$1) }) { $0.avgPool2d(kernel: 2) },
                unaryCase("avgPool2d 3×3 stride 2 padding 1, padding counted", shape: [2, 1, 5, 5], input: { Inputs.normal($0, &$1) }) {
                    $0.avgPool2d(kernel: 3, stride: 2, padding: 1)
                },
                unaryCase("avgPool2d 3×3 stride 2 padding 1, padding not counted", shape: [1, 2, 5, 4], input: { Inputs.normal($0, &$1) }) {
                    $0.avgPool2d(kernel: 3, stride: 2, padding: 1, countIncludePad: false)
                },
                unaryCase("globalAvgPool2d (a mean over H·W)", shape: [2, 3, 2, 3], input: { Inputs.normal($0, &$1) }) {
                    $0.globalAvgPool2d()
                },
            ],
            .softmaxCrossEntropy: [
                C("softmaxCrossEntropy", inputs: { g in [Inputs.normal([4, 5], &g, std: 2)] }) { x in
                    x[0].softmaxCrossEntropy(labels: Tensor([0, 3, 1, 4]))
                },
                C("softmaxCrossEntropy, label smoothing 0.1 and sample weights", inputs: { g in [Inputs.normal([4, 5], &g, std: 2)] }) {
                    x in
                    x[0].softmaxCrossEntropy(labels: Tensor([2, 2, 0, 4]), labelSmoothing: 0.1, sampleWeights: Tensor([0.5, 1, 2, 0.25]))
                },
                C("Loss.softmaxCrossEntropy(labelSmoothing: 0.2)", inputs: { g in [Inputs.normal([3, 4], &g, std: 2)] }) { x in
                    Loss.softmaxCrossEntropy(labelSmoothing: 0.2)(x[0], Tensor([3, 0, 1]))
                },
                C("softmaxCrossEntropy after linear", inputs: { g in [Inputs.normal([3, 4], &g), Inputs.normal([5, 4], &g)] }) { x in
                    x[0].linear(weight: x[1], bias: nil).softmaxCrossEntropy(labels: Tensor([4, 0, 2]), labelSmoothing: 0.05)
                },
            ],
            .sigmoidCrossEntropy: [
                C(
                    "sigmoidCrossEntropy", inputs: { g in [Inputs.normal([3, 4], &g, std: 2), Inputs.uniform([3, 4], 0, 1, &g)] },
                    trainableFirstOnly: true
                ) { x in
                    x[0].sigmoidCrossEntropy(targets: x[1])
                },
                C(
                    "sigmoidCrossEntropy with sample weights",
                    inputs: { g in [Inputs.normal([3, 4], &g, std: 2), Inputs.uniform([3, 4], 0, 1, &g)] },
                    trainableFirstOnly: true
                ) { x in
                    x[0].sigmoidCrossEntropy(targets: x[1], sampleWeights: Tensor([0.5, 2, 1]))
                },
                C(
                    "Loss.sigmoidCrossEntropy with labels reshaped",
                    inputs: { g in [Inputs.normal([2, 3], &g, std: 3), Inputs.uniform([6], 0, 1, &g)] },
                    trainableFirstOnly: true
                ) { x in
                    Loss.sigmoidCrossEntropy(x[0], x[1])
                },
            ],
        ]
    }

    /// Losses that are composites of the ops above, checked through `Loss` (made on each use,
    /// as ``cases``).
    static var compositeLossCases: [GradientCase] {
        [
            C("Loss.meanSquaredError", inputs: { g in [Inputs.normal([4, 3], &g), Inputs.normal([4, 3], &g)] }) { x in
                Loss.meanSquaredError(x[0], x[1])
            },
            C(
                "Loss.meanSquaredError, labels [N] for predictions [N,1]",
                inputs: { g in [Inputs.normal([5, 1], &g), Inputs.normal([5], &g)] }
            ) {
                x in
                Loss.meanSquaredError(x[0], x[1])
            },
            C("Loss.meanSquaredError with sample weights", inputs: { g in [Inputs.normal([4, 3], &g), Inputs.normal([4, 3], &g)] }) { x in
                Loss.meanSquaredError(x[0], x[1], sampleWeights: Tensor([1, 0.5, 2, 0]))
            },
            // MAE: predictions = labels + a difference at least 0.2 away from 0 (abs's kink).
            C(
                "Loss.meanAbsoluteError",
                inputs: { g in
                    let labels = Inputs.normal([4, 3], &g)
                    return [labels + Inputs.awayFromZero([4, 3], &g), labels]
                }
            ) { x in
                Loss.meanAbsoluteError(x[0], x[1])
            },
            C(
                "Loss.meanAbsoluteError with sample weights",
                inputs: { g in
                    let labels = Inputs.normal([4, 3], &g)
                    return [labels + Inputs.awayFromZero([4, 3], &g), labels]
                }
            ) { x in
                Loss.meanAbsoluteError(x[0], x[1], sampleWeights: Tensor([2, 1, 0.5, 0.25]))
            },
        ]
    }

    func testEveryOpMatchesFiniteDifferences() {
        var missing: [OpKind] = []
        var notExercised: [OpKind] = []
        var failures: [String] = []
        var checked = 0
        let cases = Self.cases
        for (index, op) in OpKind.allCases.enumerated() {
            guard let opCases = cases[op], !opCases.isEmpty else {
                missing.append(op)
                continue
            }
            var recorded = Set<OpKind>()
            for (n, c) in opCases.enumerated() {
                let result = GradientChecker.run(c, seed: UInt64(1000 * index + n + 1))
                failures += result.failures
                recorded.formUnion(result.recordedOps)
                checked += 1
            }
            if !recorded.contains(op) { notExercised.append(op) }
        }
        XCTAssertTrue(
            missing.isEmpty,
            "OpKind cases without a gradient check: \(missing.map(\.rawValue).joined(separator: ", ")). "
                + "Add a GradientCase for each to GradientCheckTests.cases.")
        XCTAssertTrue(
            notExercised.isEmpty,
            "gradient checks that never record their op on the tape: \(notExercised.map(\.rawValue).joined(separator: ", "))")
        for failure in failures { XCTFail(failure) }
        XCTAssertGreaterThan(checked, OpKind.allCases.count)
    }

    func testCompositeLossesMatchFiniteDifferences() {
        for (n, c) in Self.compositeLossCases.enumerated() {
            for failure in GradientChecker.run(c, seed: UInt64(77 + n)).failures { XCTFail(failure) }
        }
    }

    /// The checker itself must be able to fail: a deliberately wrong backward rule is caught.
    func testCheckerDetectsAWrongGradient() {
        // y = x² computed with a backward rule that forgets the factor 2.
        let wrongSquare = C("wrong square", inputs: { g in [Inputs.normal([4], &g)] }) { x in
            let out = Tensor(shape: x[0].shape, scalars: x[0].scalars.map { $0 * $0 })
            let input = x[0].detached()
            return Tape.record(.multiply, out, inputs: [x[0]]) { g in [g * input] }
        }
        XCTAssertFalse(GradientChecker.run(wrongSquare, seed: 5).failures.isEmpty)
        // A gradient transposed relative to the right one is caught too.
        let transposed = C("transposed gradient", inputs: { g in [Inputs.normal([2, 3], &g)] }) { x in
            let out = x[0].detached().copy()
            return Tape.record(.transpose, out, inputs: [x[0]]) { g in
                [g.transposed().reshaped(to: [2, 3])]
            }
        }
        XCTAssertFalse(GradientChecker.run(transposed, seed: 6).failures.isEmpty)
    }
}

extension GradientCase {
    /// A case whose first input is trainable and the others are constants (targets).
    init(
        _ name: String, inputs: @escaping (inout RandomGenerator) -> [Tensor], trainableFirstOnly: Bool,
        _ function: @escaping ([Tensor]) -> Tensor
    ) {
        var generator = RandomGenerator(seed: 0)
        let count = inputs(&generator).count
        self.init(name, trainable: [true] + [Bool](repeating: !trainableFirstOnly, count: count - 1), inputs: inputs, function)
    }
}
