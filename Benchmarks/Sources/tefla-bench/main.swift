// tefla-bench: training throughput of an MLP and sgemm GFLOP/s, for the side-by-side run
// against PyTorch and NumPy in `Benchmarks/run`.
//
//   tefla-bench mlp [--steps N] [--warmup N] [--rounds N] [--batch B] [--threads T] [--json] [--phases]
//   tefla-bench sgemm N [--reps N] [--threads T] [--json]
//   tefla-bench gemms [--batch B] [--json]   the sgemm calls of one MLP step, each timed alone
//   tefla-bench adam [--json]       the MLP's Adam update alone
//   tefla-bench conv [--batch N]    a 64→64 3×3 convolution's forward and backward (Conv.swift)
//   tefla-bench cnn [--model small|resnet18] [--profile]   CNN training steps (CNN.swift)
//   tefla-bench pipeline-train DIR  ResNet-18 fed by the image pipeline vs from memory (PipelineTrain.swift)
//   tefla-bench all [--json]        MLP first (so its peak RSS is its own), then sgemm 512/1024/2048
//                                   and the step's GEMMs
//
// The MLP is 784-512-512-10 with ReLU, softmax cross-entropy, Adam (lr 1e-3), batch 128, on a
// pool of 64 pre-generated random batches (so data cost is excluded, as in peers/torch_mlp.py).
// Each step is `SupervisedLearner.trainStep(inputs:labels:)`: forward, loss, backward, Adam,
// and the loss read back to the host, as PyTorch's loop does with `loss.item()`.
import CLearner
import Foundation
import Learner

// MARK: - Arguments

struct Options {
    var command = "all"
    var positional: [String] = []
    var steps = 50
    var warmup = 20
    var rounds = 5
    var batch = 128
    var threads = 2
    var reps = 0
    var json = false
    var phases = false
    var profile = false
    var model = "small"
    var device = 0
    var quick = false
    var workers = 2
    /// `--precision fp32|bf16|fp16`: the learner's mixed precision (cnn and gpu-cnn).
    var precision = Precision.fp32
}

func parseOptions() -> Options {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    if let first = args.first, !first.hasPrefix("-") { o.command = first; args.removeFirst() }
    var i = 0
    func value() -> Int {
        i += 1
        guard i < args.count, let v = Int(args[i]) else { fail("\(args[i - 1]) needs an integer") }
        return v
    }
    while i < args.count {
        switch args[i] {
        case "--steps": o.steps = value()
        case "--warmup": o.warmup = value()
        case "--rounds": o.rounds = value()
        case "--batch": o.batch = value()
        case "--threads": o.threads = value()
        case "--reps": o.reps = value()
        case "--json": o.json = true
        case "--quick": o.quick = true
        case "--device": o.device = value()
        case "--workers": o.workers = value()
        case "--phases": o.phases = true
        case "--profile": o.profile = true
        case "--precision":
            i += 1
            guard i < args.count, let p = Precision(rawValue: args[i]) else { fail("--precision needs fp32, bf16 or fp16") }
            o.precision = p
        case "--model":
            i += 1
            guard i < args.count else { fail("--model needs a name (small, resnet18)") }
            o.model = args[i]
        case "-h", "--help":
            print(
                """
                usage: tefla-bench mlp [--steps N] [--warmup N] [--rounds N] [--batch B] [--threads T] [--json] [--phases]
                       tefla-bench sgemm N [--reps N] [--threads T] [--json]
                       tefla-bench gemms [--batch B] [--json]
                       tefla-bench adam [--json]
                       tefla-bench cnn [--model small|resnet18|unet] [--precision fp32|bf16|fp16] [--batch B] [--steps N] [--warmup N] [--rounds N] [--json] [--profile]
                       tefla-bench pipeline-train DIR [--batch B] [--steps N] [--warmup N] [--workers W] [--threads T] [--json]
                       tefla-bench all [--json]
                """)
            exit(0)
        default:
            if args[i].hasPrefix("-") { fail("unknown option \(args[i])") }
            o.positional.append(args[i])
        }
        i += 1
    }
    return o
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(("tefla-bench: " + message + "\n").data(using: .utf8)!)
    exit(2)
}

// MARK: - Measurement helpers

@inline(__always) func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// Peak resident set size (VmHWM) of this process in MiB, from /proc/self/status.
func peakRSSMiB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return .nan }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? .nan
        return kb / 1024
    }
    return .nan
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func jsonLine(_ fields: [(String, Any)]) -> String {
    let body = fields.map { key, value -> String in
        switch value {
        case let s as String: return "\"\(key)\": \"\(s)\""
        case let d as Double: return "\"\(key)\": \(d.isFinite ? String(format: "%.6g", d) : "null")"
        default: return "\"\(key)\": \(value)"
        }
    }
    return "{" + body.joined(separator: ", ") + "}"
}

/// The engine's threads: its kernels and its sgemm slices (OpenBLAS itself stays single-threaded).
func setThreads(_ n: Int) { CPUParallel.threadCount = n }

/// OpenBLAS's kernel family (SkylakeX, Haswell, ...).
let blasCore = String(cString: tl_blas_core_name())

// MARK: - sgemm

/// Median GFLOP/s of C = A·B (row-major N×N, float32) over `reps` calls after one warm-up call.
func sgemmGFLOPs(n: Int, reps requested: Int) -> (gflops: Double, reps: Int) {
    var g = RandomGenerator(seed: 42)
    let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    let b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    for i in 0..<(n * n) { a[i] = g.nextUniform() - 0.5; b[i] = g.nextUniform() - 0.5; c[i] = 0 }
    func once() -> Double {
        let t0 = now()
        CPUGemm.sgemm(false, false, m: n, n: n, k: n, a, lda: n, b, ldb: n, beta: 0, c, ldc: n)
        return now() - t0
    }
    let first = once()
    // About a second of work unless told otherwise, at least 5 calls.
    let reps = requested > 0 ? requested : max(5, min(200, Int(1.0 / max(first, 1e-6))))
    let times = (0..<reps).map { _ in once() }
    return (2.0 * Double(n) * Double(n) * Double(n) / median(times) / 1e9, reps)
}

func runSgemm(_ n: Int, _ o: Options) {
    let r = sgemmGFLOPs(n: n, reps: o.reps)
    if o.json {
        print(
            jsonLine([
                ("bench", "sgemm"), ("impl", "tefla"), ("n", n), ("gflops", r.gflops), ("reps", r.reps),
                ("threads", CPUParallel.threadCount), ("blas_core", blasCore),
            ]))
    } else {
        print(
            String(format: "sgemm %5d: %7.1f GFLOP/s (median of %d, %d threads, ", n, r.gflops, r.reps, CPUParallel.threadCount)
                + "OpenBLAS \(blasCore))")
    }
}

/// The sgemm calls of one MLP training step, each timed alone (median of many calls): their
/// sum is the step's floor if everything around the GEMMs cost nothing.
func runStepGemms(_ o: Options) {
    let b = o.batch
    // (name, transA, transB, M, N, K, beta): Dense's forward is x·Wᵀ accumulated onto the bias
    // rows; its backward is gx = g·W and gW = gᵀ·x (no gx for the first layer).
    let calls: [(String, Int32, Int32, Int, Int, Int, Float)] = [
        ("fwd1 x·W1ᵀ", 0, 1, b, 512, 784, 1), ("fwd2 h·W2ᵀ", 0, 1, b, 512, 512, 1), ("fwd3 h·W3ᵀ", 0, 1, b, 10, 512, 1),
        ("bwd3 g·W3", 0, 0, b, 512, 10, 0), ("bwd3 gᵀ·h", 1, 0, 10, 512, b, 0),
        ("bwd2 g·W2", 0, 0, b, 512, 512, 0), ("bwd2 gᵀ·h", 1, 0, 512, 512, b, 0),
        ("bwd1 gᵀ·x", 1, 0, 512, 784, b, 0),
    ]
    var total = 0.0, flops = 0.0
    for (name, ta, tb, m, n, k, beta) in calls {
        let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
        let bm = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { a.deallocate(); bm.deallocate(); c.deallocate() }
        a.initialize(repeating: 0.01, count: m * k); bm.initialize(repeating: 0.02, count: k * n); c.initialize(repeating: 0, count: m * n)
        let lda = ta != 0 ? m : k, ldb = tb != 0 ? k : n
        var times: [Double] = []
        for r in 0..<220 {
            let t0 = now()
            CPUGemm.sgemm(ta != 0, tb != 0, m: m, n: n, k: k, a, lda: lda, bm, ldb: ldb, beta: beta, c, ldc: n)
            if r >= 20 { times.append(now() - t0) }
        }
        let t = median(times)
        let f = 2.0 * Double(m * n * k)
        total += t
        flops += f
        if o.json {
            print(
                jsonLine([
                    ("bench", "step_gemm"), ("impl", "tefla"), ("name", name), ("m", m), ("n", n), ("k", k),
                    ("us", t * 1e6), ("gflops", f / t / 1e9),
                ]))
        } else {
            print(
                name.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + String(format: " %4d×%4d×%4d  %8.1f µs  %6.1f GFLOP/s", m, n, k, t * 1e6, f / t / 1e9))
        }
    }
    if o.json {
        print(jsonLine([("bench", "step_gemms"), ("impl", "tefla"), ("ms", total * 1e3), ("gflops", flops / total / 1e9)]))
    } else {
        print(String(format: "all GEMMs of a step: %.3f ms, %.1f GFLOP/s", total * 1e3, flops / total / 1e9))
    }
}

/// The Adam update of the MLP's parameters alone (fixed gradients), median of many steps: the
/// optimizer's share of a step without the GEMMs around it.
func runAdamAlone(_ o: Options) {
    let model = makeModel()
    let parameters = model.parameters
    var g = RandomGenerator(seed: 3)
    for p in parameters { p.gradient = Tensor.randomNormal(p.shape, standardDeviation: 0.01, generator: &g) }
    let adam = Adam(learningRate: 1e-3)
    var times: [Double] = []
    for r in 0..<(o.warmup + o.steps * o.rounds) {
        let t0 = now()
        adam.step(parameters)
        if r >= o.warmup { times.append(now() - t0) }
    }
    let n = parameters.map { $0.value.scalarCount }.reduce(0, +)
    let t = median(times)
    // Adam reads w, g, m, v and writes w, m, v: 7 floats per parameter.
    let gbps = Double(7 * 4 * n) / t / 1e9
    if o.json {
        print(jsonLine([("bench", "adam"), ("impl", "tefla"), ("parameters", n), ("ms", t * 1e3), ("gb_per_s", gbps)]))
    } else {
        print(String(format: "Adam step alone, %d parameters: %.3f ms (%.1f GB/s of w, g, m, v traffic)", n, t * 1e3, gbps))
    }
}

// MARK: - MLP

let layerSizes = [784, 512, 512, 10]

/// 6·B·Σ(in·out): forward 2·B·in·out per layer plus backward 4·B·in·out (the convention
/// PyTorch and papers use for "model FLOPs").
func modelFLOPs(batch: Int) -> Double {
    let macs = zip(layerSizes, layerSizes.dropFirst()).map { Double($0 * $1) }.reduce(0, +)
    return 6 * Double(batch) * macs
}

/// The FLOPs the GEMMs actually execute: the first layer's input gradient is never formed
/// (the input needs no gradient), neither here nor in PyTorch.
func executedFLOPs(batch: Int) -> Double {
    modelFLOPs(batch: batch) - 2 * Double(batch) * Double(layerSizes[0] * layerSizes[1])
}

func makeModel() -> Sequential {
    Sequential([
        Dense(inputSize: 784, units: 512, activation: .relu, seed: 1),
        Dense(inputSize: 512, units: 512, activation: .relu, seed: 2),
        Dense(inputSize: 512, units: 10, seed: 3),
    ])
}

/// A pool of `count` random batches: inputs N(0, 1), labels uniform in 0..<10.
func makePool(batch: Int, count: Int = 64) -> [(Tensor, Tensor)] {
    var g = RandomGenerator(seed: 7)
    return (0..<count).map { _ in
        let x = Tensor.randomNormal([batch, 784], generator: &g)
        let y = Tensor(shape: [batch], scalars: (0..<batch).map { _ in Float(g.next() % 10) })
        return (x, y)
    }
}

/// One training step of a benchmark, whose failure ends the run.
func benchStep(_ learner: SupervisedLearner, _ x: Tensor, _ y: Tensor) -> Float {
    do {
        return try learner.trainStep(inputs: x, labels: y).loss
    } catch {
        fatalError("tefla-bench: training step failed: \(error)")
    }
}

/// Times `learner.trainStep` over the pool: warm-up steps, then `rounds` rounds of `steps`
/// steps; returns the median samples/s and the last loss. `synchronize` runs at the end of each
/// round (a GPU finishes its queued work there).
func timeTrainSteps(
    _ learner: SupervisedLearner, pool: [(Tensor, Tensor)], _ o: Options,
    synchronize: () -> Void = {}
) -> (samplesPerSecond: Double, lastLoss: Float) {
    var k = 0
    var lastLoss: Float = 0
    func step() {
        let (x, y) = pool[k % pool.count]
        k += 1
        lastLoss = benchStep(learner, x, y)
    }
    for _ in 0..<o.warmup { step() }
    var roundRates: [Double] = []
    for _ in 0..<o.rounds {
        let t0 = now()
        for _ in 0..<o.steps { step() }
        synchronize()
        roundRates.append(Double(o.steps * o.batch) / (now() - t0))
    }
    return (median(roundRates), lastLoss)
}

func runMLP(_ o: Options) {
    let model = makeModel()
    let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-3), seed: 0)
    learner.options.verbose = 0
    let pool = makePool(batch: o.batch)
    let (samplesPerSecond, lastLoss) = timeTrainSteps(learner, pool: pool, o)
    let msPerStep = 1000 * Double(o.batch) / samplesPerSecond
    let gflops = modelFLOPs(batch: o.batch) / (msPerStep / 1000) / 1e9
    let executedGflops = executedFLOPs(batch: o.batch) / (msPerStep / 1000) / 1e9
    let rss = peakRSSMiB()
    if o.json {
        print(
            jsonLine([
                ("bench", "mlp"), ("impl", "tefla"), ("batch", o.batch), ("steps", o.steps), ("rounds", o.rounds),
                ("warmup", o.warmup), ("samples_per_s", samplesPerSecond), ("ms_per_step", msPerStep),
                ("gflops", gflops), ("gflops_executed", executedGflops), ("peak_rss_mib", rss),
                ("threads", CPUParallel.threadCount), ("blas_core", blasCore), ("final_loss", Double(lastLoss)),
            ]))
    } else {
        print(
            String(
                format:
                    "mlp 784-512-512-10 batch %d Adam: %.0f samples/s, %.3f ms/step, %.1f GFLOP/s (6BΣ), %.1f GFLOP/s executed, peak RSS %.1f MiB, loss %.4f",
                o.batch, samplesPerSecond, msPerStep, gflops, executedGflops, rss, lastLoss))
    }
    if o.phases { runPhases(model: model, learner: learner, pool: pool, o) }
}

/// The same step split into phases, each timed on every step; the median per phase is
/// printed (medians resist the machine's noise better than sums). A coarse profile from inside.
func runPhases(model: Sequential, learner: SupervisedLearner, pool: [(Tensor, Tensor)], _ o: Options) {
    let optimizer = learner.optimizer
    let loss = learner.loss
    let names = ["forward", "loss", "backward", "optimizer", "readback"]
    var times = [[Double]](repeating: [], count: names.count)
    let steps = o.steps * o.rounds
    for s in 0..<steps {
        let (x, y) = pool[s % pool.count]
        let parameters = model.parameters
        let t0 = now()
        let out = model(x)
        let t1 = now()
        let value = loss(out, y)
        let t2 = now()
        let grads = gradients(of: value, wrt: parameters.map(\.value))
        let t3 = now()
        for (p, g) in zip(parameters, grads) { p.gradient = g }
        optimizer.step(parameters)
        for p in parameters { p.gradient = nil }
        let t4 = now()
        _ = value.scalar
        let t5 = now()
        for (i, d) in [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4].enumerated() { times[i].append(d) }
    }
    let medians = times.map(median)
    let total = medians.reduce(0, +)
    for (name, v) in zip(names, medians) {
        if o.json {
            print(jsonLine([("bench", "mlp_phase"), ("impl", "tefla"), ("phase", name), ("ms", v * 1e3)]))
        } else {
            print(
                "  " + name.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: " %8.3f ms/step  %5.1f%%", 1000 * v, 100 * v / total))
        }
    }
    // Whole steps: the spread shows how much of the mean is outliers (the machine's other work,
    // thread wake-ups) rather than the step itself.
    let whole = (0..<steps).map { i in times.map { $0[i] }.reduce(0, +) }.sorted()
    let pct = { (q: Double) in 1000 * whole[min(whole.count - 1, Int(q * Double(whole.count)))] }
    let mean = 1000 * whole.reduce(0, +) / Double(whole.count)
    if o.json {
        print(
            jsonLine([
                ("bench", "mlp_steps"), ("impl", "tefla"), ("p10_ms", pct(0.1)), ("p50_ms", pct(0.5)),
                ("p90_ms", pct(0.9)), ("max_ms", pct(1)), ("mean_ms", mean),
            ]))
    } else {
        print(
            String(
                format: "  sum of medians %.3f ms/step; whole steps p10 %.3f, p50 %.3f, p90 %.3f, max %.3f, mean %.3f ms",
                1000 * total, pct(0.1), pct(0.5), pct(0.9), pct(1), mean))
    }
}

// MARK: - Main

if let command = CommandLine.arguments.dropFirst().first, ["dp-check", "allreduce"].contains(command) { runParallelCommand(command) }
let options = parseOptions()
setThreads(options.threads)
switch options.command {
case "mlp":
    runMLP(options)
case "sgemm":
    let sizes = options.positional.isEmpty ? [512, 1024, 2048] : options.positional.map { Int($0) ?? 0 }
    for n in sizes {
        guard n > 0 else { fail("sgemm needs a positive size") }
        runSgemm(n, options)
    }
case "gemms":
    runStepGemms(options)
case "adam":
    runAdamAlone(options)
case "conv":
    runConvBench(options)
case "cnn":
    runCNN(options, model: options.model)
case "transformer":
    runTransformer(options)
case "pipeline-train":
    runPipelineTrain(options)
case "gpu-check":
    runGPUCheck(options)
case "gpu-mlp":
    runGPUMLP(options)
case "gpu-cnn":
    runGPUCNN(options)
case "all":
    runMLP(options)
    for n in [512, 1024, 2048] { runSgemm(n, options) }
    runStepGemms(options)
default:
    fail("unknown command \(options.command) (mlp, sgemm, gemms, adam, conv, cnn, pipeline-train, all, gpu-check, gpu-mlp, gpu-cnn)")
}
