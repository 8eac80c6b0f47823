// GPU checks and timings for a machine with an NVIDIA GPU:
//
//   tefla-bench gpu-check [--device N]   every engine op and optimizer on cuda:N against the CPU,
//                                        then the digits MLP trained on cuda:N; exits 1 on a failure
//   tefla-bench gpu-mlp [--device N] [--batch B] [--steps N] [--rounds N] [--warmup N] [--json]
//                                        MLP 784-512-512-10 training throughput on cuda:N
import CLearner
import Foundation
import Learner

/// ‖a − b‖ / max(‖b‖, tiny).
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "compare \(a.count) with \(b.count) values")
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
        if x.isNaN || y.isNaN { return .infinity }
        num += Double(x - y) * Double(x - y)
        den += Double(y) * Double(y)
    }
    return (num / max(den, 1e-30)).squareRoot()
}

struct GPUCheck {
    let device: Device
    var passed = 0
    var failed = 0
    var generator = RandomGenerator(seed: 11)

    init(device: Device) { self.device = device }

    mutating func random(_ shape: [Int], positive: Bool = false) -> Tensor {
        var t = Tensor.randomNormal(shape, generator: &generator)
        if positive { t = Tensor(shape: shape, scalars: t.scalars.map { abs($0) + 0.5 }) }
        return t
    }

    /// Runs `f` on CPU inputs and on the same inputs on the GPU; compares the outputs and the
    /// gradients of Σ out ⊙ r with respect to every input.
    mutating func check(_ name: String, _ inputs: [Tensor], tolerance: Double = 1e-4, _ f: ([Tensor]) -> Tensor) {
        func run(_ xs: [Tensor]) -> ([Float], [[Float]]) {
            let leaves = xs.map { $0.trainable() }
            let out = f(leaves)
            var g = RandomGenerator(seed: 99)
            let r = Tensor.randomNormal(out.shape, generator: &g).to(out.device)
            let grads = gradients(of: (out * r).sum(), wrt: leaves)
            return (out.scalars, grads.map(\.scalars))
        }
        let (cpuOut, cpuGrads) = run(inputs)
        let (gpuOut, gpuGrads) = run(inputs.map { $0.to(device) })
        var worst = relativeError(gpuOut, cpuOut)
        for (a, b) in zip(gpuGrads, cpuGrads) { worst = max(worst, relativeError(a, b)) }
        let ok = worst <= tolerance
        if ok { passed += 1 } else { failed += 1 }
        print(
            "\(ok ? "PASS" : "FAIL") \(name.padding(toLength: 40, withPad: " ", startingAt: 0))"
                + String(format: " rel. error %.2e (tolerance %.0e)", worst, tolerance))
    }

    mutating func checkOptimizer(_ name: String, _ make: () -> Optimizer) {
        var g = RandomGenerator(seed: 5)
        let w0 = Tensor.randomNormal([1000], generator: &g)
        let grads = (0..<3).map { _ in Tensor.randomNormal([1000], generator: &g) }
        func run(_ device: Device) -> [Float] {
            let p = Parameter(w0.copy().to(device))
            let opt = make()
            for grad in grads {
                p.gradient = grad.to(device)
                opt.step([p])
            }
            return p.value.scalars
        }
        let err = relativeError(run(device), run(.cpu))
        let ok = err <= 1e-5
        if ok { passed += 1 } else { failed += 1 }
        print(
            "\(ok ? "PASS" : "FAIL") \("optimizer \(name)".padding(toLength: 40, withPad: " ", startingAt: 0))"
                + String(format: " rel. error %.2e (tolerance 1e-05)", err))
    }

    /// The ops that have CUDA kernels must not appear among the host fallbacks once run.
    mutating func checkFallbacks() {
        guard case .cuda = device else { return }
        let moved = [
            "conv2d", "conv2dBackwardInput", "conv2dBackwardWeight", "maxPool2d", "maxPool2dBackward", "avgPool2d",
            "avgPool2dBackward", "batchNormStatistics", "batchNorm", "batchNormBackward", "max", "permute", "binary-broadcast",
            "softmaxCrossEntropy-smoothing", "sigmoidCrossEntropy",
        ]
        let left = moved.filter { CUDABackend.hostFallbacks[$0, default: 0] > 0 }
        if left.isEmpty { passed += 1 } else { failed += 1 }
        print(
            "\(left.isEmpty ? "PASS" : "FAIL") \("no host fallback for moved ops".padding(toLength: 40, withPad: " ", startingAt: 0))"
                + (left.isEmpty
                    ? " (conv, pooling, batch norm, max, permute, broadcasts, losses)" : " still via host: \(left.joined(separator: ", "))")
        )
    }

    /// Every convolution shape the engine meets, forward and both gradients, against the CPU.
    mutating func checkConvolutions(engine: String, tolerance: Double) {
        var g = RandomGenerator(seed: 21)
        let img = Tensor.randomNormal([2, 4, 9, 9], generator: &g), k = Tensor.randomNormal([6, 4, 3, 3], generator: &g)
        let kb = Tensor.randomNormal([6], generator: &g)
        check("[\(engine)] conv2d 3×3 padding 1 bias", [img, k, kb], tolerance: tolerance) {
            $0[0].conv2d(weight: $0[1], bias: $0[2], padding: 1)
        }
        check("[\(engine)] conv2d stride 2 dilation 2", [img, k], tolerance: tolerance) {
            $0[0].conv2d(weight: $0[1], stride: 2, padding: 2, dilation: 2)
        }
        check("[\(engine)] conv2d groups 2", [img, random([6, 2, 3, 3])], tolerance: tolerance) {
            $0[0].conv2d(weight: $0[1], padding: .same, groups: 2)
        }
        check("[\(engine)] conv2d depthwise stride 2 bias", [img, random([8, 1, 3, 3]), random([8])], tolerance: tolerance) {
            $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1, groups: 4)
        }
        check("[\(engine)] conv2d asymmetric 3×2 stride (2,1)", [random([3, 4, 8, 7]), random([6, 4, 3, 2])], tolerance: tolerance) {
            $0[0].conv2d(
                weight: $0[1], stride: Size2D(2, 1), padding: .explicit(top: 0, bottom: 1, left: 2, right: 0),
                dilation: Size2D(1, 2))
        }
        check("[\(engine)] conv2d 1×1 pointwise bias", [img, random([5, 4, 1, 1]), random([5])], tolerance: tolerance) {
            $0[0].conv2d(weight: $0[1], bias: $0[2])
        }
        check("[\(engine)] conv2d 1×1 pointwise groups 2", [img, random([6, 2, 1, 1])], tolerance: tolerance) {
            $0[0].conv2d(weight: $0[1], groups: 2)
        }
        check("[\(engine)] conv2d 1×1 stride 2", [img, random([5, 4, 1, 1])], tolerance: tolerance) {
            $0[0].conv2d(weight: $0[1], stride: 2)
        }
        do {
            // A scratch budget of two images' columns: the batch of 5 runs in chunks 2, 2, 1.
            let saved = CUDABackend.convolutionScratchFloats
            CUDABackend.convolutionScratchFloats = 2 * (4 * 9 * 81 + 6 * 4 * 9)
            check("[\(engine)] conv2d chunked batch 5 (small scratch)", [random([5, 4, 9, 9]), k, kb], tolerance: tolerance) {
                $0[0].conv2d(weight: $0[1], bias: $0[2], padding: 1)
            }
            CUDABackend.convolutionScratchFloats = saved
        }
        check("[\(engine)] convTranspose2d stride 2", [img, random([4, 3, 3, 3])], tolerance: tolerance) {
            $0[0].convTranspose2d(weight: $0[1], stride: 2, padding: 1, outputPadding: 1)
        }
        check("[\(engine)] convTranspose2d groups 2 dilation 2 bias", [img, random([4, 3, 3, 3]), random([6])], tolerance: tolerance) {
            $0[0].convTranspose2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1, dilation: 2, groups: 2)
        }
        check("[\(engine)] conv2d 64→64 3×3 8×64×28×28", [random([8, 64, 28, 28]), random([64, 64, 3, 3]) * 0.05], tolerance: tolerance) {
            $0[0].conv2d(weight: $0[1], padding: 1)
        }
        check("[\(engine)] conv2d 7×7/2 stem 4×3×64×64", [random([4, 3, 64, 64]), random([16, 3, 7, 7]) * 0.1], tolerance: tolerance) {
            $0[0].conv2d(weight: $0[1], stride: 2, padding: 3)
        }
    }

    /// A label outside the classes is an error on the GPU too: named before the step when a
    /// batch on the device reaches trainStep, and reported by the loss kernel when the loss is
    /// used directly.
    mutating func checkLabelReports() {
        guard case .cuda = device else { return }
        let x = random([6, 5]).to(device)
        var labels: [Float] = [0, 1, 2, 3, 4, 0]
        labels[3] = 12
        let y = Tensor(shape: [6], scalars: labels).to(device)
        let learner = SupervisedLearner(
            model: Sequential([Dense(inputSize: 5, units: 10, seed: 1)]), loss: .softmaxCrossEntropy(),
            optimizer: SGD(learningRate: 0.1), seed: 0, device: device)
        learner.options.verbose = 0
        var message = ""
        do {
            _ = try learner.trainStep(inputs: x, labels: y)
        } catch {
            message = "\(error)"
        }
        let named = message.contains("sample 3") && message.contains("label 12")
        if named { passed += 1 } else { failed += 1 }
        print(
            "\(named ? "PASS" : "FAIL") \("bad device label before trainStep".padding(toLength: 40, withPad: " ", startingAt: 0)) \(message)"
        )
        // The loss op itself, on the device: the kernel's report comes out at the next check.
        let logits = random([6, 10]).to(device)
        _ = logits.softmaxCrossEntropy(labels: y).scalar
        var reported = ""
        do {
            try CUDAContext.throwIfFailed()
        } catch {
            reported = "\(error)"
        }
        let flagged = reported.contains("row 3") && reported.contains("label 12") && reported.contains("10 class")
        if flagged { passed += 1 } else { failed += 1 }
        print(
            "\(flagged ? "PASS" : "FAIL") \("bad label met by the loss kernel".padding(toLength: 40, withPad: " ", startingAt: 0)) \(reported)"
        )
        let cleared = (try? CUDAContext.throwIfFailed()) != nil
        if cleared { passed += 1 } else { failed += 1 }
        print("\(cleared ? "PASS" : "FAIL") \("label report cleared once thrown".padding(toLength: 40, withPad: " ", startingAt: 0))")
    }

    mutating func runAll() {
        let a = random([33, 17]), b = random([33, 17]), bias = random([17]), col = random([33, 1])
        let p = random([33, 17], positive: true)
        check("add", [a, b]) { $0[0] + $0[1] }
        check("add bias broadcast", [a, bias]) { $0[0] + $0[1] }
        check("add column broadcast", [a, col]) { $0[0] + $0[1] }
        check("multiply [4,1,6] by [5,1] broadcast", [random([4, 1, 6]), random([5, 1])]) { $0[0] * $0[1] }
        check("subtract rank-5 broadcast", [random([2, 1, 3, 1, 4]), random([3, 5, 1])]) { $0[0] - $0[1] }
        check("subtract", [a, b]) { $0[0] - $0[1] }
        check("multiply", [a, b]) { $0[0] * $0[1] }
        check("divide", [a, p]) { $0[0] / $0[1] }
        check("scalar ops", [a]) { ($0[0] * 3 + 1) / 2 - 0.5 }
        check("negate", [a]) { -$0[0] }
        check("exp", [a]) { $0[0].exp() }
        check("log", [p]) { $0[0].log() }
        check("sqrt", [p]) { $0[0].sqrt() }
        check("pow", [p]) { $0[0].pow(1.5) }
        check("abs", [p]) { ($0[0] - 0.1).abs() }
        check("relu", [a]) { $0[0].relu() }
        check("gelu", [a]) { $0[0].gelu() }
        check("sigmoid", [a]) { $0[0].sigmoid() }
        check("tanh", [a]) { $0[0].tanh() }
        check("softmax", [a]) { $0[0].softmax() }
        check("logSoftmax", [a]) { $0[0].logSoftmax() }
        check("sum axis 0", [a]) { $0[0].sum(alongAxis: 0) }
        check("sum axis 1 keepdims", [a]) { $0[0].sum(alongAxis: 1, keepingDimensions: true) }
        check("sum all", [a]) { $0[0].sum() }
        check("mean all", [a]) { $0[0].mean() }
        check("mean axes", [random([4, 5, 6])]) { $0[0].mean(alongAxes: [0, 2]) }
        check("max axis 1", [a]) { $0[0].max(alongAxis: 1) }
        check("max axis 0 keepdims", [a]) { $0[0].max(alongAxis: 0, keepingDimensions: true) }
        check("max middle axis", [random([3, 7, 5])]) { $0[0].max(alongAxis: 1) }
        check("reshape", [a]) { $0[0].reshaped(to: [17, 33]) * 2 }
        check("transpose", [random([3, 4, 5])]) { $0[0].transposed([2, 0, 1]) }
        check("transpose last two", [a]) { $0[0].transposed() }
        check("transpose rank 5", [random([2, 3, 2, 4, 3])]) { $0[0].transposed([4, 2, 0, 3, 1]) }
        check("concat axis 1", [a, b]) { Tensor.concatenate([$0[0], $0[1]], alongAxis: 1) }
        check("slice axis 1", [a]) { $0[0].slice(alongAxis: 1, 3..<11) }
        check("gatherRows", [a]) { $0[0].gatherRows([3, 1, 3, 30]) }
        let m = random([64, 48]), n = random([48, 40]), nt = random([40, 48]), mt = random([48, 64])
        check("matmul", [m, n]) { $0[0].matmul($0[1]) }
        check("matmul Bᵀ", [m, nt]) { $0[0].matmul($0[1], transposeOther: true) }
        check("matmul Aᵀ", [mt, n]) { $0[0].matmul($0[1], transposeSelf: true) }
        check("matmul AᵀBᵀ", [mt, nt]) { $0[0].matmul($0[1], transposeSelf: true, transposeOther: true) }
        let w = random([40, 48]), wb = random([40])
        check("linear", [m, w, wb]) { $0[0].linear(weight: $0[1], bias: $0[2]) }
        check("linear no bias", [m, w]) { $0[0].linear(weight: $0[1], bias: nil) }
        check("dropout", [a]) { $0[0].dropout(rate: 0.3, seed: 1, step: 2, salt: 3) }
        // Mixed precision: the 16-bit rounding is exact on both devices, so products agree up to a
        // result rounded the other way where the two accumulations straddle a rounding boundary.
        check("round to bf16 and fp16", [a]) { $0[0].rounded(to: .bf16) + $0[0].rounded(to: .fp16) }
        for (precision, tolerance) in [(Precision.bf16, 8e-3), (.fp16, 1e-3)] {
            check("\(precision) matmul Bᵀ", [m, nt], tolerance: tolerance) {
                x in withComputePrecision(precision) { x[0].matmul(x[1], transposeOther: true) }
            }
            check("\(precision) linear", [m, w, wb], tolerance: tolerance) {
                x in withComputePrecision(precision) { x[0].linear(weight: x[1], bias: x[2]) }
            }
            check("\(precision) conv2d 3×3 padding 1", [random([2, 4, 9, 9]), random([6, 4, 3, 3])], tolerance: tolerance) {
                x in withComputePrecision(precision) { x[0].conv2d(weight: x[1], padding: 1) }
            }
        }
        let logits = random([50, 10])
        let labels = Tensor(shape: [50], scalars: (0..<50).map { Float(($0 * 7) % 10) })
        let weights = random([50], positive: true)
        check("softmaxCrossEntropy", [logits]) { $0[0].softmaxCrossEntropy(labels: labels.to($0[0].device)) }
        check("softmaxCrossEntropy weighted", [logits]) {
            $0[0].softmaxCrossEntropy(labels: labels.to($0[0].device), sampleWeights: weights.to($0[0].device))
        }
        check("softmaxCrossEntropy smoothing", [logits]) {
            $0[0].softmaxCrossEntropy(labels: labels.to($0[0].device), labelSmoothing: 0.1)
        }
        check("softmaxCrossEntropy smoothing weighted", [logits]) {
            $0[0].softmaxCrossEntropy(labels: labels.to($0[0].device), labelSmoothing: 0.2, sampleWeights: weights.to($0[0].device))
        }
        let targets = Tensor(shape: [50, 10], scalars: (0..<500).map { Float($0 % 3 == 0 ? 1 : 0) })
        check("sigmoidCrossEntropy", [logits]) { $0[0].sigmoidCrossEntropy(targets: targets.to($0[0].device)) }
        check("sigmoidCrossEntropy weighted", [logits * 4]) {
            $0[0].sigmoidCrossEntropy(targets: targets.to($0[0].device), sampleWeights: weights.to($0[0].device))
        }
        check("meanSquaredError", [logits, random([50, 10])]) { Loss.meanSquaredError($0[0], $0[1]) }
        check("meanAbsoluteError", [logits, random([50, 10])]) { Loss.meanAbsoluteError($0[0], $0[1]) }
        // Convolutions through each engine: cuDNN (plain fp32 math, then TF32 at a TF32
        // tolerance) when it is installed, and the built-in im2col kernels with cuBLAS.
        let savedEngine = (CUDABackend.usesCuDNN, CUDABackend.convolutionAllowsTF32)
        if case .cuda = device, case .success(let found) = CUDABackend.cuDNNStatus() {
            print("cuDNN \(found.version) (\(found.library)): convolutions checked through it and through the built-in kernels")
            (CUDABackend.usesCuDNN, CUDABackend.convolutionAllowsTF32) = (true, false)
            let plansBefore = CUDABackend.cuDNNPlanCount
            checkConvolutions(engine: "cuDNN", tolerance: 1e-4)
            let plans = CUDABackend.cuDNNPlanCount - plansBefore
            let used = plans > 0
            if used { passed += 1 } else { failed += 1 }
            print("\(used ? "PASS" : "FAIL") \("cuDNN used".padding(toLength: 40, withPad: " ", startingAt: 0)) \(plans) plans searched")
            CUDABackend.convolutionAllowsTF32 = true
            checkConvolutions(engine: "cuDNN TF32", tolerance: 5e-3)
        } else if case .cuda = device {
            print("cuDNN not used: \(CUDABackend.convolutionEngine)")
        }
        CUDABackend.usesCuDNN = false
        checkConvolutions(engine: "built-in", tolerance: 1e-4)
        (CUDABackend.usesCuDNN, CUDABackend.convolutionAllowsTF32) = savedEngine
        checkLabelReports()
        // Pooling and batch norm: one or two kernels each.
        let img = random([2, 4, 9, 9])
        let gamma = random([4], positive: true), beta = random([4])
        check("batchNorm train", [img, gamma, beta]) { $0[0].batchNorm(weight: $0[1], bias: $0[2]).output }
        check("batchNorm train batch statistics", [img * 3 + 2, gamma, beta]) {
            let r = $0[0].batchNorm(weight: $0[1], bias: $0[2])
            // The statistics carry no gradient of their own: compared next to the output.
            return Tensor.concatenate([r.output.reshaped(to: [-1]), r.mean, r.variance], alongAxis: 0)
        }
        check("batchNorm eval", [img, gamma, beta]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], mean: $0[2] * 0.1, variance: $0[1] + 1)
        }
        check("batchNorm train [N, C] (BatchNorm1d)", [random([16, 4]), gamma, beta]) { $0[0].batchNorm(weight: $0[1], bias: $0[2]).output }
        check("batchNorm train 64 channels 7×7", [random([8, 64, 7, 7]), random([64], positive: true), random([64])]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2]).output
        }
        check("maxPool2d 3×3/2 padding 1", [img]) { $0[0].maxPool2d(kernel: 3, stride: 2, padding: 1) }
        check("maxPool2d 2×2", [img]) { $0[0].maxPool2d(kernel: 2) }
        check("maxPool2d 3×3 dilation 2", [img]) { $0[0].maxPool2d(kernel: 3, stride: 1, padding: 1, dilation: 2) }
        check("maxPool2d 1×1 stride 2", [img]) { $0[0].maxPool2d(kernel: 1, stride: 2) }
        check("avgPool2d 2×2", [img]) { $0[0].avgPool2d(kernel: 2) }
        check("avgPool2d 3×3/2 padding 1 include pad", [img]) { $0[0].avgPool2d(kernel: 3, stride: 2, padding: 1) }
        check("avgPool2d 3×3/2 padding 1 exclude pad", [img]) {
            $0[0].avgPool2d(kernel: 3, stride: 2, padding: 1, countIncludePad: false)
        }
        check("globalAvgPool2d", [img]) { $0[0].globalAvgPool2d() }
        let block = BasicBlock(inputChannels: 4, outputChannels: 8, stride: 2)
        let blockCPU = BasicBlock(inputChannels: 4, outputChannels: 8, stride: 2)
        for ((_, a), (_, b)) in zip(block.namedParametersAndBuffers, blockCPU.namedParametersAndBuffers) { a.assign(b.value) }
        block.move(to: device)
        let outGPU = block(img.to(device)).scalars, outCPU = blockCPU(img).scalars
        let statsErr = relativeError(block.bn1.runningVariance.value.scalars, blockCPU.bn1.runningVariance.value.scalars)
        let blockErr = max(relativeError(outGPU, outCPU), statsErr)
        if blockErr <= 1e-4 { passed += 1 } else { failed += 1 }
        print(
            "\(blockErr <= 1e-4 ? "PASS" : "FAIL") \("BasicBlock + running stats on device".padding(toLength: 40, withPad: " ", startingAt: 0))"
                + String(format: " rel. error %.2e (tolerance 1e-04)", blockErr))
        do {
            // argmax (accuracy) runs the max kernel and reads the indices back.
            let x = random([37, 10])
            let ok = x.argmax(alongAxis: 1).scalars == x.to(device).argmax(alongAxis: 1).scalars
            if ok { passed += 1 } else { failed += 1 }
            print("\(ok ? "PASS" : "FAIL") \("argmax axis 1".padding(toLength: 40, withPad: " ", startingAt: 0)) indices equal")
        }
        checkFallbacks()
        checkOptimizer("SGD momentum nesterov wd") { SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 1e-2, nesterov: true) }
        checkOptimizer("Adam") { Adam(learningRate: 1e-2) }
        checkOptimizer("AdamW") { AdamW(learningRate: 1e-2, weightDecay: 0.1) }
        checkOptimizer("RMSProp centered momentum") { RMSProp(learningRate: 1e-2, momentum: 0.9, centered: true) }
    }
}

func digitsDirectory() -> String {
    var dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("Data/digits")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate.path }
        dir = dir.deletingLastPathComponent()
    }
    return "Data/digits"
}

/// The digits MLP on the GPU and on the CPU with the same seed: both reach the accuracy, and
/// their loss curves agree to float rounding.
func checkDigitsTraining(device: Device) -> Bool {
    func train(_ device: Device) throws -> History {
        let model = Sequential([
            Dense(inputSize: 64, units: 128, activation: .relu, seed: 1),
            Dropout(rate: 0.1),
            Dense(inputSize: 128, units: 10, seed: 2),
        ])
        let learner = SupervisedLearner(
            model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 2e-3),
            seed: 42, device: device)
        learner.options.verbose = 0
        let root = digitsDirectory()
        return try learner.fit(dataDir: root + "/train", featureKeys: FeatureKeys(), validationDir: root + "/val", epochs: 20)
    }
    do {
        let t0 = now()
        let gpu = try train(device)
        let gpuSeconds = now() - t0
        let t1 = now()
        let cpu = try train(.cpu)
        let cpuSeconds = now() - t1
        let lossError = relativeError(gpu.epochs.map(\.trainLoss), cpu.epochs.map(\.trainLoss))
        let accuracy = gpu.lastValidationAccuracy ?? 0
        let ok = accuracy >= 0.95 && lossError < 1e-3
        print(
            "\(ok ? "PASS" : "FAIL") digits MLP on \(device)"
                + String(
                    format: ": val_accuracy %.4f (cpu %.4f), loss curve rel. error vs cpu %.2e, %.2fs (cpu %.2fs)",
                    accuracy, cpu.lastValidationAccuracy ?? 0, lossError, gpuSeconds, cpuSeconds))
        return ok
    } catch {
        print("FAIL digits MLP on \(device): \(error)")
        return false
    }
}

func gpuIndex(_ o: Options) -> Int {
    let index = o.device
    do {
        try CUDAContext.use(device: index)
    } catch {
        fail("cuda:\(index): \(error)")
    }
    return index
}

/// `--device -1` runs the same comparisons CPU against CPU: a dry run of the checker itself.
func runGPUCheck(_ o: Options) -> Never {
    setvbuf(tl_stdout(), nil, _IOLBF, 0)
    let device: Device = o.device < 0 ? .cpu : .cuda(gpuIndex(o))
    print("gpu-check on \(device)\(o.device < 0 ? "" : " (\(CUDAContext.deviceName(o.device)))")")
    var check = GPUCheck(device: device)
    check.runAll()
    let digitsOK = checkDigitsTraining(device: device)
    if digitsOK { check.passed += 1 } else { check.failed += 1 }
    print(
        "host fallbacks used: \(CUDABackend.hostFallbacks.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", "))"
    )
    print("\(check.passed) passed, \(check.failed) failed")
    exit(check.failed == 0 ? 0 : 1)
}

/// The CPU benchmark's MLP step on the GPU: forward, loss, backward, Adam, loss read back.
func runGPUMLP(_ o: Options) {
    let index = gpuIndex(o)
    let device = Device.cuda(index)
    let learner = SupervisedLearner(
        model: makeModel(), loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-3),
        seed: 0, device: device)
    learner.options.verbose = 0
    let pool = makePool(batch: o.batch).map { ($0.0.to(device), $0.1.to(device)) }
    let (samplesPerSecond, lastLoss) = timeTrainSteps(learner, pool: pool, o, synchronize: CUDAContext.synchronize)
    let msPerStep = 1000 * Double(o.batch) / samplesPerSecond
    if o.json {
        print(
            jsonLine([
                ("bench", "gpu-mlp"), ("impl", "tefla"), ("device", CUDAContext.deviceName(index)), ("batch", o.batch),
                ("samples_per_s", samplesPerSecond), ("ms_per_step", msPerStep), ("final_loss", Double(lastLoss)),
            ]))
    } else {
        print(
            "gpu-mlp 784-512-512-10 batch \(o.batch) Adam on \(CUDAContext.deviceName(index))"
                + String(format: ": %.0f samples/s, %.3f ms/step, loss %.4f", samplesPerSecond, msPerStep, lastLoss))
    }
}
