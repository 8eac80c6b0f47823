import Foundation
import TestSupport
import XCTest

@testable import Learner

/// Mixed precision through the CPU backend: the 16-bit rounding against independent references,
/// the ops' policy (operands, results and gradients rounded; fp32 accumulation), fp16's loss
/// scaling (GradScaler's rules, its checkpointed state), and training to the fp32 run's accuracy.
final class MixedPrecisionTests: XCTestCase {
    /// Floats over every binade a 16-bit format meets, with exact ties and the edges of range.
    func sampleFloats() -> [Float] {
        var random = RandomGenerator(seed: 41)
        var values: [Float] = [
            0, -0, 1, -1, .pi, 65504, 65519.996, 65520, 65536, 1e6, .greatestFiniteMagnitude, .infinity, -.infinity,
            Float(bitPattern: 0x7F7F_8000), Float(bitPattern: 0x7F7F_7FFF), .leastNonzeroMagnitude,
            Float.ulpOfOne, 1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 0x1p-14, 0x1p-24, 0x1p-25, 3 * 0x1p-25,
            0x1p-26, 5.9e-8, 6.1e-5, 6.0e-5,
        ]
        for _ in 0..<20000 {
            // Exponents from 2^-30 to 2^20 with random significands, half of them exact ties of
            // one of the two formats (the low bits 1000…0).
            let exponent = UInt32(97 + random.next() % 50) << 23
            var significand = UInt32(random.next() & 0x7F_FFFF)
            switch random.next() % 4 {
            case 0: significand = (significand & ~0xFFFF) | 0x8000
            case 1: significand = (significand & ~0x1FFF) | 0x1000
            default: break
            }
            let sign: UInt32 = random.next() % 2 == 0 ? 0 : 0x8000_0000
            values.append(Float(bitPattern: sign | exponent | significand))
        }
        return values
    }

    func testFP16RoundingEqualsSwiftsFloat16Conversion() {
        let values = sampleFloats()
        let rounded = Tensor(values).rounded(to: .fp16).scalars
        var mismatches = 0
        for (x, r) in zip(values, rounded) {
            let reference = Float(Float16(x))
            if r.bitPattern != reference.bitPattern {
                mismatches += 1
                if mismatches < 5 { XCTFail("fp16(\(x)) = \(r), Float16 gives \(reference)") }
            }
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertEqual(Tensor([65504, 65519.996, 65520, -70000]).rounded(to: .fp16).scalars, [65504, 65504, .infinity, -.infinity])
        // Subnormal halves are multiples of 2^-24, ties to even: 2^-25 → 0, 3·2^-25 → 2^-23.
        XCTAssertEqual(Tensor([0x1p-25, 3 * 0x1p-25, 0x1p-24]).rounded(to: .fp16).scalars, [0, 0x1p-23, 0x1p-24])
        XCTAssertTrue(Tensor([.nan]).rounded(to: .fp16).scalar.isNaN)
    }

    func testBF16RoundingIsNearestWithTiesToEven() {
        let values = sampleFloats()
        let rounded = Tensor(values).rounded(to: .bf16).scalars
        for (x, r) in zip(values, rounded) {
            // The two bf16 neighbours of x by truncation, compared as exact doubles; the one past
            // the largest finite bf16 stands for 2^128 (rounding there overflows to infinity).
            let below = x.bitPattern & 0xFFFF_0000
            guard x.isFinite else {
                XCTAssertEqual(r.bitPattern, x.bitPattern)
                continue
            }
            let down = Double(Float(bitPattern: below))
            let upBits = below &+ 0x1_0000
            let upIsInfinity = upBits & 0x7FFF_FFFF == 0x7F80_0000
            let up = upIsInfinity ? (x < 0 ? -0x1p128 : 0x1p128) : Double(Float(bitPattern: upBits))
            let dDown = Swift.abs(Double(x) - down), dUp = Swift.abs(up - Double(x))
            let expected: UInt32 =
                dDown < dUp ? below : dUp < dDown ? upBits : ((below >> 16) & 1 == 0 ? below : upBits)
            XCTAssertEqual(r.bitPattern & 0xFFFF, 0, "bf16(\(x)) has low bits")
            XCTAssertEqual(r.bitPattern, expected, "bf16(\(x)) = \(r)")
        }
        // PyTorch: torch.tensor([3.14159265, 1 + 2**-8, 1 + 3 * 2**-8]).bfloat16().float()
        XCTAssertEqual(Tensor([.pi, 1 + 0x1p-8, 1 + 3 * 0x1p-8]).rounded(to: .bf16).scalars, [3.140625, 1, 1 + 0x1p-6])
        XCTAssertTrue(Tensor([.nan]).rounded(to: .bf16).scalar.isNaN)
        XCTAssertEqual(Precision.bf16.greatestFiniteMagnitude, Tensor([3.3895e38]).rounded(to: .bf16).scalar)
    }

    func testPrecisionIsPerThreadAndRestored() {
        XCTAssertEqual(Precision.current, .fp32)
        withComputePrecision(.bf16) {
            XCTAssertEqual(Precision.current, .bf16)
            withComputePrecision(.fp16) { XCTAssertEqual(Precision.current, .fp16) }
            XCTAssertEqual(Precision.current, .bf16)
            let other = Locked<Precision?>(nil)
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                other.withLock { $0 = Precision.current }
                done.signal()
            }
            done.wait()
            XCTAssertEqual(other.withLock { $0 }, .fp32, "another thread keeps its own precision")
        }
        XCTAssertEqual(Precision.current, .fp32)
    }

    /// Each product's operands and result are rounded, its accumulation is fp32, and its
    /// backward pass rounds the incoming gradient and the gradients it returns, also when the
    /// gradients are taken outside the scope.
    func testProductsRoundOperandsResultsAndGradients() {
        var random = RandomGenerator(seed: 5)
        let a = Tensor(shape: [7, 33], scalars: (0..<231).map { _ in Float.random(in: -2...2, using: &random) })
        let b = Tensor(shape: [33, 5], scalars: (0..<165).map { _ in Float.random(in: -2...2, using: &random) })
        let upstream = Tensor(shape: [7, 5], scalars: (0..<35).map { _ in Float.random(in: -1...1, using: &random) })
        for precision in [Precision.bf16, .fp16] {
            let ra = a.rounded(to: precision), rb = b.rounded(to: precision)
            let expected = ra.matmul(rb).rounded(to: precision)
            let (value, grads) = withComputePrecision(precision) {
                valueAndGradient(at: [a, b]) { ($0[0].matmul($0[1]) * upstream).sum() }
            }
            _ = value
            let y = withComputePrecision(precision) { a.matmul(b) }
            XCTAssertEqual(y.scalars, expected.scalars, "\(precision) matmul")
            XCTAssertNotEqual(y.scalars, a.matmul(b).scalars, "\(precision) differs from fp32")
            // dA = round(round(G)·round(B)ᵀ), dB = round(round(A)ᵀ·round(G)).
            let g = upstream.rounded(to: precision)
            XCTAssertEqual(grads[0].scalars, g.matmul(rb, transposeOther: true).rounded(to: precision).scalars, "\(precision) dA")
            XCTAssertEqual(grads[1].scalars, ra.matmul(g, transposeSelf: true).rounded(to: precision).scalars, "\(precision) dB")
            // Recorded in the scope, differentiated outside it: the same gradients.
            let (x, w) = (a.trainable(), b.trainable())
            let out = withComputePrecision(precision) { (x.matmul(w) * upstream).sum() }
            let late = gradients(of: out, wrt: [x, w])
            XCTAssertEqual(late[0].scalars, grads[0].scalars)
            XCTAssertEqual(late[1].scalars, grads[1].scalars)

            // linear and batchedMatmul follow the same rule.
            let wt = b.transposed()
            let bias = Tensor((0..<5).map { Float($0) * 0.1 + 0.01 })
            XCTAssertEqual(
                withComputePrecision(precision) { a.linear(weight: wt, bias: bias) }.scalars,
                ra.linear(weight: wt.rounded(to: precision), bias: bias).rounded(to: precision).scalars, "\(precision) linear")
            let a3 = a.reshaped(to: [1, 7, 33]), b3 = b.reshaped(to: [1, 33, 5])
            XCTAssertEqual(
                withComputePrecision(precision) { a3.batchedMatmul(b3) }.scalars, expected.scalars, "\(precision) batchedMatmul")
        }
    }

    func testConvolutionsRoundOperandsResultsAndGradients() {
        var random = RandomGenerator(seed: 9)
        let x = Tensor(shape: [2, 3, 6, 6], scalars: (0..<216).map { _ in Float.random(in: -2...2, using: &random) })
        let w = Tensor(shape: [4, 3, 3, 3], scalars: (0..<108).map { _ in Float.random(in: -1...1, using: &random) })
        let upstream = Tensor(shape: [2, 4, 6, 6], scalars: (0..<288).map { _ in Float.random(in: -1...1, using: &random) })
        let precision = Precision.bf16
        let (rx, rw, rg) = (x.rounded(to: precision), w.rounded(to: precision), upstream.rounded(to: precision))
        let y = withComputePrecision(precision) { x.conv2d(weight: w, padding: .same) }
        XCTAssertEqual(y.scalars, rx.conv2d(weight: rw, padding: .same).rounded(to: precision).scalars)
        let grads = withComputePrecision(precision) {
            valueAndGradient(at: [x, w]) { ($0[0].conv2d(weight: $0[1], padding: .same) * upstream).sum() }.1
        }
        let reference = valueAndGradient(at: [rx, rw]) { ($0[0].conv2d(weight: $0[1], padding: .same) * rg).sum() }.1
        XCTAssertEqual(grads[0].scalars, reference[0].rounded(to: precision).scalars, "dx")
        XCTAssertEqual(grads[1].scalars, reference[1].rounded(to: precision).scalars, "dw")
        // The transposed convolution is the same convolution's adjoint, rounded alike.
        let t = withComputePrecision(precision) { upstream.convTranspose2d(weight: w, padding: 1) }
        XCTAssertEqual(t.scalars, rg.convTranspose2d(weight: rw, padding: 1).rounded(to: precision).scalars)
    }

    /// Why fp16 needs loss scaling: a gradient below half of 2^-24 vanishes in an fp16 product,
    /// and survives when the loss is scaled first; values beyond 65504 become infinite.
    func testFP16UnderflowAndOverflowInProducts() {
        let x = Tensor(shape: [4, 8], scalars: (0..<32).map { Float($0 % 5) - 2 })
        let w = Tensor(shape: [8, 3], scalars: (0..<24).map { Float($0 % 7) * 0.25 })
        let tiny: Float = 1e-8
        let plain = withComputePrecision(.fp16) { valueAndGradient(at: [w]) { x.matmul($0[0]).sum() * tiny }.1[0] }
        XCTAssertTrue(plain.scalars.allSatisfy { $0 == 0 }, "unscaled fp16 gradients underflow: \(plain.scalars)")
        let scaled = withComputePrecision(.fp16) { valueAndGradient(at: [w]) { x.matmul($0[0]).sum() * (tiny * 65536) }.1[0] }
        let fp32 = valueAndGradient(at: [w]) { x.matmul($0[0]).sum() * tiny }.1[0]
        for (s, r) in zip(scaled.scalars, fp32.scalars) { XCTAssertEqual(s / 65536, r, accuracy: Swift.abs(r) * 1e-3 + 1e-12) }
        XCTAssertTrue(fp32.scalars.contains { $0 != 0 })

        let big = Tensor(shape: [1, 2], scalars: [300, 300])
        XCTAssertEqual(withComputePrecision(.fp16) { big.matmul(big.transposed()) }.scalar, .infinity)
        XCTAssertEqual(withComputePrecision(.bf16) { big.matmul(big.transposed()) }.scalar, 180_224)
    }

    func testLossScalerFollowsGradScalersRules() {
        let scaler = LossScaler(LossScaling(initialScale: 1024, growthInterval: 3))
        scaler.update(gradientsFinite: true)
        scaler.update(gradientsFinite: true)
        XCTAssertEqual(scaler.scale, 1024)
        scaler.update(gradientsFinite: true)
        XCTAssertEqual(scaler.scale, 2048, "doubles after growthInterval clean steps")
        XCTAssertEqual(scaler.growthTracker, 0)
        scaler.update(gradientsFinite: true)
        scaler.update(gradientsFinite: false)
        XCTAssertEqual(scaler.scale, 1024, "halves on overflow")
        XCTAssertEqual(scaler.growthTracker, 0, "and restarts the count")
        XCTAssertEqual(scaler.skippedSteps, 1)

        let fixed = LossScaler(LossScaling(initialScale: 128, growthInterval: 1, dynamic: false))
        fixed.update(gradientsFinite: true)
        fixed.update(gradientsFinite: false)
        XCTAssertEqual(fixed.scale, 128)
        XCTAssertEqual(fixed.skippedSteps, 1)

        // Unscaling divides every gradient and reports a non-finite one anywhere.
        let p = Parameter(Tensor([1, 2])), q = Parameter(Tensor([3]))
        p.gradient = Tensor([2048, -4096])
        q.gradient = Tensor([1024])
        XCTAssertTrue(scaler.unscale([p, q]))
        XCTAssertEqual(p.gradient?.scalars, [2, -4])
        XCTAssertEqual(q.gradient?.scalars, [1])
        q.gradient = Tensor([.infinity])
        XCTAssertFalse(scaler.unscale([p, q]))
        q.gradient = Tensor([.nan])
        XCTAssertFalse(scaler.unscale([p, q]))
    }

    func mlp(seed: UInt64) -> Sequential {
        Sequential([
            Dense(inputSize: 64, units: 32, activation: .relu, seed: seed),
            Dense(inputSize: 32, units: 10, seed: seed + 1),
        ])
    }

    /// A scale so large that the first steps' gradients overflow fp16: those steps leave the
    /// weights and the optimizer alone and halve the scale, until the gradients fit.
    func testOverflowingStepsAreSkippedAndTheScaleBacksOff() throws {
        let train = try DataSourceTests.digitsTrain()
        let learner = SupervisedLearner(model: mlp(seed: 2), loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-3), seed: 1)
        learner.options.verbose = 0
        learner.options.precision = .fp16
        learner.options.lossScaling = LossScaling(initialScale: 0x1p40)
        let before = learner.model.parameters.map { $0.value.scalars }
        let (inputs, labels) = learner.deviceBatch(train, Array(0..<64))
        try learner.trainStep(inputs: inputs, labels: labels)
        let scaler = try XCTUnwrap(learner.lossScaler)
        XCTAssertEqual(scaler.scale, 0x1p39)
        XCTAssertEqual(scaler.skippedSteps, 1)
        XCTAssertEqual(learner.optimizer.stepCount, 0)
        XCTAssertEqual(learner.model.parameters.map { $0.value.scalars }, before, "a skipped step changes no weight")
        var steps = 1
        while scaler.skippedSteps == steps && steps < 40 {
            try learner.trainStep(inputs: inputs, labels: labels)
            steps += 1
        }
        XCTAssertLessThan(steps, 40)
        XCTAssertEqual(learner.optimizer.stepCount, 1, "the first step whose gradients fit is taken")
        XCTAssertNotEqual(learner.model.parameters.map { $0.value.scalars }, before)
        XCTAssertEqual(scaler.scale, Float(0x1p40) / Float(1 << scaler.skippedSteps))
        print("fp16 loss scale settled at 2^\(Int(log2(scaler.scale))) after \(scaler.skippedSteps) skipped steps")
    }

    /// bf16 and fp16 training of the digits MLP and CNN end within one percentage point of the
    /// fp32 run's validation accuracy (the same seeds and batches).
    func testReducedPrecisionTrainsToTheFP32Accuracy() throws {
        let train = try DataSourceTests.digitsTrain()
        let validation = try DataSourceTests.digitsVal()
        func run(_ precision: Precision, cnn: Bool) throws -> (Float, SupervisedLearner) {
            let model: Module =
                cnn
                ? Sequential([
                    Lambda("to NCHW") { $0.reshaped(to: [-1, 1, 8, 8]) * (1 / 16) },
                    Zoo.smallCNN(inputChannels: 1, classes: 10),
                ]) : mlp(seed: 4)
            let learner = SupervisedLearner(
                model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: cnn ? 3e-3 : 1e-2), seed: 6)
            learner.options.verbose = 0
            learner.options.precision = precision
            let history = try learner.fit(training: train, validation: validation, epochs: 8, batchSize: 32)
            return (try XCTUnwrap(history.lastValidationAccuracy), learner)
        }
        for cnn in [false, true] {
            let (fp32, _) = try run(.fp32, cnn: cnn)
            let (bf16, _) = try run(.bf16, cnn: cnn)
            let (fp16, fp16Learner) = try run(.fp16, cnn: cnn)
            print(
                "\(cnn ? "small CNN" : "MLP") on the digits, validation accuracy: fp32 \(fp32), bf16 \(bf16), fp16 \(fp16) "
                    + "(loss scale \(fp16Learner.lossScaler?.scale ?? 0), \(fp16Learner.lossScaler?.skippedSteps ?? 0) skipped)")
            XCTAssertGreaterThan(fp32, 0.9)
            XCTAssertEqual(bf16, fp32, accuracy: 0.01, "bf16 against fp32")
            XCTAssertEqual(fp16, fp32, accuracy: 0.01, "fp16 against fp32")
            XCTAssertNotNil(fp16Learner.lossScaler)
        }
    }

    /// fp16 with a scale that moves (overflows at first, then growth every few steps): the loss
    /// scale and its count are checkpointed, so a resumed run ends bit for bit as the
    /// uninterrupted one.
    func testFP16RunResumesBitForBitWithItsLossScale() throws {
        let scratch = try Scratch.directory("tefla-fp16-resume", for: self).path
        let train = try DataSourceTests.digitsTrain()
        func learner(_ weights: String) -> SupervisedLearner {
            let l = SupervisedLearner(model: mlp(seed: 8), loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 2)
            l.options.verbose = 0
            l.options.precision = .fp16
            l.options.lossScaling = LossScaling(initialScale: 0x1p30, growthInterval: 7)
            l.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: weights))
            return l
        }
        let straight = learner(scratch + "/a")
        let full = try straight.fit(training: train, epochs: 4, batchSize: 64)
        let first = learner(scratch + "/b")
        _ = try first.fit(training: train, epochs: 2, batchSize: 64)
        let saved = try XCTUnwrap(first.lossScaler)
        XCTAssertGreaterThan(saved.skippedSteps, 0, "the run overflowed at first")
        let resumed = learner(scratch + "/b")
        XCTAssertEqual(try resumed.resumeEpoch(), 3)
        let state = try JSONDecoder().decode(
            TrainingState.self, from: Data(contentsOf: URL(fileURLWithPath: scratch + "/b/epoch-0002/state.json")))
        XCTAssertEqual(state.lossScale, saved.scale)
        XCTAssertEqual(state.lossScaleGrowthTracker, saved.growthTracker)
        let rest = try resumed.fit(training: train, startEpoch: 3, epochs: 4, batchSize: 64)
        XCTAssertEqual(rest.epochs.map(\.trainLoss), Array(full.epochs[2...].map(\.trainLoss)))
        XCTAssertEqual(resumed.lossScaler?.scale, straight.lossScaler?.scale)
        for (a, b) in zip(straight.model.parameters, resumed.model.parameters) { XCTAssertEqual(a.value.scalars, b.value.scalars) }
    }
}
