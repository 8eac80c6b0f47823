// Convolutional training throughput: whole optimizer steps of a small CNN or ResNet-18 on
// synthetic images, as Benchmarks/peers/torch_cnn.py runs them in PyTorch.
//
//   tefla-bench cnn [--model small|resnet18] [--batch B] [--steps N] [--warmup N] [--rounds N]
//                   [--threads T] [--json] [--profile]
//
// small: 28×28×1 → conv32 3×3 pad 1 → ReLU → maxpool 2 → conv64 3×3 pad 1 → ReLU → maxpool 2
//        → flatten → dense 128 → ReLU → dense 10; batch 64.
// resnet18: Zoo.resnet18 (torchvision's ImageNet layout) with 10 classes on 64×64 RGB; batch 32.
// unet: UNet depth 4, base 32 filters, batch norm, transposed convolutions, 2 classes per pixel on
//       128×128 RGB; batch 8.
// Both: softmax cross-entropy, SGD lr 0.01 momentum 0.9, each step
// `SupervisedLearner.trainStep(inputs:labels:)` (forward, loss, backward, update, loss read back).
// `--profile` then runs more steps with KernelProfile on and prints the time per kernel kind
// against the step and the sgemm GFLOP/s reached inside the step.
import CLearner
import Foundation
import Learner

struct CNNSpec: Sendable {
    let name: String
    let inputShape: [Int]  // one image, [C, H, W]
    let defaultBatch: Int
    let defaultSteps: Int, defaultWarmup: Int
    let make: @Sendable () -> Module
}

let cnnSpecs: [String: CNNSpec] = [
    "small": CNNSpec(name: "small", inputShape: [1, 28, 28], defaultBatch: 64, defaultSteps: 20, defaultWarmup: 10) {
        Sequential([
            Conv2D(inputChannels: 1, outputChannels: 32, kernelSize: 3, padding: 1, activation: .relu, seed: 1),
            MaxPool2D(kernelSize: 2),
            Conv2D(inputChannels: 32, outputChannels: 64, kernelSize: 3, padding: 1, activation: .relu, seed: 2),
            MaxPool2D(kernelSize: 2),
            Flatten(),
            Dense(inputSize: 64 * 7 * 7, units: 128, activation: .relu, seed: 3),
            Dense(inputSize: 128, units: 10, seed: 4),
        ])
    },
    "resnet18": CNNSpec(name: "resnet18", inputShape: [3, 64, 64], defaultBatch: 32, defaultSteps: 4, defaultWarmup: 3) {
        Zoo.resnet18(classes: 10)
    },
    // Segmentation: per-pixel softmax cross-entropy over 2 classes, labels [N, 128, 128].
    "unet": CNNSpec(name: "unet", inputShape: [3, 128, 128], defaultBatch: 8, defaultSteps: 3, defaultWarmup: 2) {
        UNet(inputChannels: 3, outputChannels: 2, depth: 4, baseFilters: 32, seed: 1)
    },
]

func runCNN(_ o: Options, model modelName: String) {
    guard let spec = cnnSpecs[modelName] else { fail("cnn: unknown model \(modelName) (small, resnet18)") }
    // Options' defaults are the MLP's: a value left at its default takes the model's own.
    let defaults = Options()
    let batch = o.batch == defaults.batch ? spec.defaultBatch : o.batch
    let steps = o.steps == defaults.steps ? spec.defaultSteps : o.steps
    let warmup = o.warmup == defaults.warmup ? spec.defaultWarmup : o.warmup
    let model = spec.make()
    let learner = SupervisedLearner(
        model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.01, momentum: 0.9),
        seed: 0)
    learner.options.verbose = 0
    learner.options.precision = o.precision
    var g = RandomGenerator(seed: 7)
    let pool: [(Tensor, Tensor)] = (0..<8).map { _ in
        (
            Tensor.randomNormal([batch] + spec.inputShape, generator: &g),
            spec.name == "unet"
                ? Tensor(shape: [batch, 128, 128], scalars: (0..<(batch * 128 * 128)).map { _ in Float(g.next() % 2) })
                : Tensor(shape: [batch], scalars: (0..<batch).map { _ in Float(g.next() % 10) })
        )
    }
    var run = o
    (run.batch, run.steps, run.warmup) = (batch, steps, warmup)
    let (imagesPerSecond, lastLoss) = timeTrainSteps(learner, pool: pool, run)
    let msPerStep = 1000 * Double(batch) / imagesPerSecond
    var k = 0
    let profile =
        o.profile
        ? profileCNN(steps: max(steps, 3)) {
            let (x, y) = pool[k % pool.count]
            k += 1
            _ = benchStep(learner, x, y)
        } : nil
    let fields: [(String, Any)] = [
        ("bench", "cnn"), ("impl", "tefla"), ("model", spec.name), ("batch", batch), ("precision", o.precision.rawValue),
        ("steps", steps), ("rounds", o.rounds), ("warmup", warmup),
        ("images_per_s", imagesPerSecond), ("ms_per_step", msPerStep),
        ("threads", CPUParallel.threadCount), ("peak_rss_mib", peakRSSMiB()),
        ("final_loss", Double(lastLoss)),
    ]
    if o.json {
        print(jsonLine(fields))
        for row in profile ?? [] {
            print(
                jsonLine([
                    ("bench", "cnn_kernel"), ("impl", "tefla"), ("model", spec.name), ("kind", row.kind),
                    ("ms", row.ms), ("calls", row.calls), ("gflops", row.gflops ?? .nan),
                ]))
        }
    } else {
        print(
            String(
                format: "cnn %@ batch %d SGD momentum: %.1f images/s, %.2f ms/step, peak RSS %.1f MiB, loss %.4f",
                spec.name, batch, imagesPerSecond, msPerStep, peakRSSMiB(), lastLoss))
        for row in profile ?? [] {
            let rate = row.gflops.map { String(format: "  %6.1f GFLOP/s", $0) } ?? ""
            print(
                "  " + row.kind.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + String(format: " %9.2f ms/step %6d calls/step", row.ms, row.calls) + rate)
        }
    }
}

/// Runs `steps` more steps with KernelProfile on; returns ms per step and calls per step of
/// each kernel kind, the sgemm rate where it applies, then the step as a whole and the untimed rest.
func profileCNN(steps: Int, _ step: () -> Void) -> [(kind: String, ms: Double, calls: Int, gflops: Double?)] {
    KernelProfile.reset()
    KernelProfile.isEnabled = true
    let t0 = now()
    for _ in 0..<steps { step() }
    let total = now() - t0
    KernelProfile.isEnabled = false
    var rows: [(kind: String, ms: Double, calls: Int, gflops: Double?)] = []
    var timed = 0.0
    for kind in KernelProfile.Kind.allCases {
        let e = KernelProfile.entries[kind.rawValue]
        guard e.calls > 0 else { continue }
        timed += e.seconds
        rows.append((kind.name, 1000 * e.seconds / Double(steps), e.calls / steps, e.flops > 0 ? e.flops / e.seconds / 1e9 : nil))
    }
    rows.append(("rest (tape, alloc)", 1000 * (total - timed) / Double(steps), 0, nil))
    rows.append(("whole step", 1000 * total / Double(steps), 0, nil))
    return rows
}
