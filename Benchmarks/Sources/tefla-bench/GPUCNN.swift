// Convolutional training throughput on a GPU, the rows Benchmarks/peers/torch_cuda_cnn.py runs
// in PyTorch on the same GPU:
//
//   tefla-bench gpu-cnn [ROW...] [--device N] [--rounds N] [--quick] [--profile] [--precision fp32|bf16|fp16] [--json]
//
// Rows: small-b64 (the small CNN, 1×28×28, batch 64), resnet18-64-b32 (ResNet-18, 3×64×64,
// batch 32, 10 classes), resnet18-224-b128 (ResNet-18, 3×224×224, batch 128, 1000 classes),
// resnet50-224-b64 (ResNet-50, 3×224×224, batch 64, 1000 classes). Each step is
// `trainStep(inputs:labels:)` (forward, softmax cross-entropy, backward, SGD momentum 0.9,
// the loss read back, as PyTorch's loss.item()) on a pool of 8 random batches already on the
// GPU; the median of the rounds after the warm-up. The first step's time (kernels compiled or
// loaded from the disk cache, cuDNN's algorithm searches) and the allocator's peak are reported.
// `--profile` then runs more steps with the device-time profile on (each kernel, cuBLAS and
// cuDNN call timed with events) and prints where a step's device time goes.
import CLearner
import Foundation
import Learner

struct GPUCNNRow {
    let name: String
    let spec: String  // model
    let inputShape: [Int]
    let batch: Int, classes: Int
    let steps: Int, warmup: Int
    let make: @Sendable () -> Module
}

let gpuCNNRows: [GPUCNNRow] = [
    GPUCNNRow(
        name: "small-b64", spec: "small", inputShape: [1, 28, 28], batch: 64, classes: 10, steps: 200, warmup: 20,
        make: { cnnSpecs["small"]!.make() }),
    GPUCNNRow(
        name: "resnet18-64-b32", spec: "resnet18", inputShape: [3, 64, 64], batch: 32, classes: 10, steps: 100, warmup: 10,
        make: { Zoo.resnet18(classes: 10) }),
    GPUCNNRow(
        name: "resnet18-224-b128", spec: "resnet18", inputShape: [3, 224, 224], batch: 128, classes: 1000, steps: 20,
        warmup: 10, make: { Zoo.resnet18(classes: 1000) }),
    GPUCNNRow(
        name: "resnet50-224-b64", spec: "resnet50", inputShape: [3, 224, 224], batch: 64, classes: 1000, steps: 20,
        warmup: 10, make: { Zoo.resnet50(classes: 1000) }),
]

func runGPUCNN(_ o: Options) {
    let index = gpuIndex(o)
    let device = Device.cuda(index)
    let names = o.positional.isEmpty ? gpuCNNRows.map(\.name) : o.positional
    for name in names {
        guard let row = gpuCNNRows.first(where: { $0.name == name }) else {
            fail("gpu-cnn: unknown row \(name) (\(gpuCNNRows.map(\.name).joined(separator: ", ")))")
        }
        runGPUCNNRow(row, device: device, o)
        // The next row starts from an empty pool, so that its peak is its own.
        _ = tl_cuda_empty_cache()
        _ = tl_cuda_reset_peak_memory()
    }
}

private func runGPUCNNRow(_ row: GPUCNNRow, device: Device, _ o: Options) {
    let learner = SupervisedLearner(
        model: row.make(), loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.01, momentum: 0.9),
        seed: 0, device: device)
    learner.options.verbose = 0
    learner.options.precision = o.precision
    var g = RandomGenerator(seed: 7)
    let pool: [(Tensor, Tensor)] = (0..<8).map { _ in
        (
            Tensor.randomNormal([row.batch] + row.inputShape, generator: &g).to(device),
            Tensor(shape: [row.batch], scalars: (0..<row.batch).map { _ in Float(g.next() % UInt64(row.classes)) }).to(device)
        )
    }
    CUDAContext.synchronize()
    let t0 = now()
    _ = benchStep(learner, pool[0].0, pool[0].1)
    let firstStep = now() - t0
    let sinceStart = secondsSinceProcessStart()
    var run = o
    run.batch = row.batch
    run.steps = o.quick ? Swift.max(row.steps / 4, 2) : row.steps
    run.warmup = row.warmup
    let (imagesPerSecond, lastLoss) = timeTrainSteps(learner, pool: pool, run, synchronize: CUDAContext.synchronize)
    if o.profile {
        profileGPUSteps(row, steps: Swift.max(run.steps / 2, 3), o) { k in _ = benchStep(learner, pool[k % 8].0, pool[k % 8].1) }
    }
    var stats = tl_cuda_mem_stats()
    _ = tl_cuda_memory_stats(&stats)
    let peakMiB = Double(stats.peak_in_use) / 1_048_576
    let fields: [(String, Any)] = [
        ("bench", "gpu-cnn"), ("impl", "tefla"), ("row", row.name), ("model", row.spec), ("batch", row.batch),
        ("precision", o.precision.rawValue),
        ("device", CUDAContext.deviceName(gpuIndex(o))), ("engine", CUDABackend.convolutionEngine),
        ("tf32_conv", CUDABackend.convolutionAllowsTF32 ? "yes" : "no"), ("steps", run.steps), ("rounds", run.rounds),
        ("images_per_s", imagesPerSecond), ("ms_per_step", 1000 * Double(row.batch) / imagesPerSecond),
        ("first_step_s", firstStep), ("start_to_first_step_s", sinceStart), ("peak_mib", peakMiB), ("final_loss", Double(lastLoss)),
    ]
    if o.json {
        print(jsonLine(fields))
    } else {
        print(
            String(
                format: "gpu-cnn %@ batch %d: %.1f images/s, %.2f ms/step, first step %.2f s, peak %.0f MiB, loss %.4f (%@)",
                row.name, row.batch, imagesPerSecond, 1000 * Double(row.batch) / imagesPerSecond, firstStep, peakMiB,
                lastLoss, CUDABackend.convolutionEngine))
    }
    fflush(tl_stdout())
}

/// Runs `steps` steps with the device-time profile on; prints device ms per step of each
/// kernel and library call (the largest first), their sum and the profiled step's wall time.
private func profileGPUSteps(_ row: GPUCNNRow, steps: Int, _ o: Options, step: (Int) -> Void) {
    tl_cuda_profile(1)
    let t0 = now()
    for k in 0..<steps { step(k) }
    let wall = now() - t0
    tl_cuda_profile(0)
    var entries: [(name: String, ms: Double, calls: Int)] = []
    for slot in 0..<tl_cuda_profile_slots() {
        var ms = 0.0
        var calls: Int64 = 0
        tl_cuda_profile_read(slot, &ms, &calls)
        if calls > 0 { entries.append((String(cString: tl_cuda_profile_name(slot)), ms / Double(steps), Int(calls) / steps)) }
    }
    entries.sort { $0.ms > $1.ms }
    let device = entries.reduce(0) { $0 + $1.ms }
    for e in entries {
        if o.json {
            print(
                jsonLine([
                    ("bench", "gpu-cnn-profile"), ("impl", "tefla"), ("row", row.name), ("kernel", e.name),
                    ("ms_per_step", e.ms), ("calls_per_step", e.calls), ("share", e.ms / device),
                ]))
        } else {
            print(String(format: "  %-36@ %8.3f ms/step %5d calls %5.1f %%", e.name as NSString, e.ms, e.calls, 100 * e.ms / device))
        }
    }
    let summary = String(
        format: "profile %@: device time %.3f ms/step, profiled step %.3f ms wall (each call waited for)", row.name, device,
        1000 * wall / Double(steps))
    print(o.json ? jsonLine([("bench", "gpu-cnn-profile"), ("impl", "tefla"), ("row", row.name), ("device_ms", device)]) : summary)
}

/// Seconds since this process started (Linux's /proc: 10 ms resolution), nil where unknown.
func secondsSinceProcessStart() -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
        let uptime = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return .nan }
    // Fields after the command name: state is field 3, starttime field 22 (clock ticks since boot).
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 19, let ticks = Double(fields[19]), let up = Double(uptime.split(separator: " ")[0]) else { return .nan }
    return up - ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}
