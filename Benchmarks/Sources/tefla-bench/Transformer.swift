// A transformer encoder block's forward and backward pass, as Benchmarks/peers/torch_transformer.py
// runs PyTorch's nn.TransformerEncoderLayer.
//
//   tefla-bench transformer [--batch B] [--steps N] [--warmup N] [--rounds N] [--threads T] [--json] [--profile]
//
// Batch 32 (default) of 128 tokens, width 256, 4 heads, feed-forward 1024, ReLU, post-norm,
// dropout 0.1, training mode. A step: forward, loss = Σ y ⊙ R (R fixed random), the gradients
// of every parameter and of the input, the loss read back. The median of `rounds` rounds of
// `steps` steps after `warmup` steps.
import Foundation
import Learner

func runTransformer(_ o: Options) {
    let defaults = Options()
    let batch = o.batch == defaults.batch ? 32 : o.batch
    let steps = o.steps == defaults.steps ? 5 : o.steps
    let warmup = o.warmup == defaults.warmup ? 2 : o.warmup
    let (tokens, width, heads, feedForward) = (128, 256, 4, 1024)
    let block = TransformerEncoderBlock(
        embedDimension: width, heads: heads, feedForwardDimension: feedForward, dropout: 0.1, seed: 1)
    block.train()
    var g = RandomGenerator(seed: 7)
    let pool = (0..<4).map { _ in Tensor.randomNormal([batch, tokens, width], generator: &g) }
    let upstream = Tensor.randomNormal([batch, tokens, width], generator: &g)
    let parameters = block.parameters.map(\.value)
    var k = 0
    var lastLoss: Float = 0
    func step() {
        block.setRandomKey(seed: 1, step: UInt64(k))
        let x = pool[k % pool.count].trainable()
        k += 1
        let loss = (block(x) * upstream).sum()
        let grads = gradients(of: loss, wrt: parameters + [x])
        precondition(grads.count == parameters.count + 1)
        lastLoss = loss.scalar
    }
    for _ in 0..<warmup { step() }
    var rates: [Double] = []
    for _ in 0..<o.rounds {
        let t0 = now()
        for _ in 0..<steps { step() }
        rates.append(Double(steps * batch) / (now() - t0))
    }
    let samplesPerSecond = median(rates)
    let profile = o.profile ? profileCNN(steps: max(steps, 3)) { step() } : nil
    let fields: [(String, Any)] = [
        ("bench", "transformer"), ("impl", "tefla"), ("batch", batch), ("tokens", tokens), ("width", width), ("heads", heads),
        ("feed_forward", feedForward), ("steps", steps), ("rounds", o.rounds), ("warmup", warmup),
        ("sequences_per_s", samplesPerSecond), ("ms_per_step", 1000 * Double(batch) / samplesPerSecond),
        ("threads", CPUParallel.threadCount), ("peak_rss_mib", peakRSSMiB()), ("final_loss", Double(lastLoss)),
    ]
    if o.json {
        print(jsonLine(fields))
        for row in profile ?? [] {
            print(
                jsonLine([
                    ("bench", "transformer_kernel"), ("impl", "tefla"), ("kind", row.kind), ("ms", row.ms), ("calls", row.calls),
                    ("gflops", row.gflops ?? .nan),
                ]))
        }
    } else {
        print(
            String(
                format: "transformer block batch %d×%d width %d heads %d: %.1f sequences/s, %.1f ms/step, peak RSS %.1f MiB",
                batch, tokens, width, heads, samplesPerSecond, 1000 * Double(batch) / samplesPerSecond, peakRSSMiB()))
        for row in profile ?? [] {
            let rate = row.gflops.map { String(format: "  %6.1f GFLOP/s", $0) } ?? ""
            print(
                "  " + row.kind.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + String(format: " %9.2f ms/step %6d calls/step", row.ms, row.calls) + rate)
        }
    }
}
