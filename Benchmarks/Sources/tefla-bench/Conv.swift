// Convolution timing: a ResNet-like 3×3 layer, forward and both backward products.
//
//   tefla-bench conv [--batch N] [--steps N] [--warmup N] [--threads T] [--json]
//
// Input [N, 64, 32, 32], weight [64, 64, 3, 3], stride 1, padding 1 (N = 32 by default, as
// Benchmarks/peers/torch_conv.py): the forward pass, the input gradient and the weight
// gradient, each timed on its own (median over steps) and as one forward+backward step.
import CLearner
import Foundation
import Learner

func runConvBench(_ o: Options) {
    let n = o.batch == 128 ? 32 : o.batch  // 128 is the MLP's default: use the layer's own
    let c = 64, hw = 32
    var g = RandomGenerator(seed: 1)
    let x = Tensor.randomNormal([n, c, hw, hw], generator: &g)
    let w = Tensor.randomNormal([c, c, 3, 3], standardDeviation: 0.05, generator: &g)
    let upstream = Tensor.randomNormal([n, c, hw, hw], generator: &g)
    guard let window = Window2D(channels: c, height: hw, width: hw, kernel: 3, stride: 1, padding: 1, dilation: 1) else {
        fail("conv: bad geometry")
    }
    let geometry = Conv2DGeometry(batch: n, window: window, outChannels: c, groups: 1)
    let backend = CPUBackend.shared
    func time(_ body: () -> Void) -> Double {
        for _ in 0..<max(o.warmup / 10, 2) { body() }
        var samples: [Double] = []
        for _ in 0..<max(o.steps / 5, 5) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        return median(samples)
    }
    let forward = time { _ = backend.conv2d(x.storage, weight: w.storage, bias: nil, geometry: geometry) }
    let input = time { _ = backend.conv2dBackwardInput(upstream.storage, weight: w.storage, geometry: geometry) }
    let weight = time { _ = backend.conv2dBackwardWeight(upstream.storage, input: x.storage, geometry: geometry) }
    let step = time {
        _ = backend.conv2d(x.storage, weight: w.storage, bias: nil, geometry: geometry)
        _ = backend.conv2dBackwardInput(upstream.storage, weight: w.storage, geometry: geometry)
        _ = backend.conv2dBackwardWeight(upstream.storage, input: x.storage, geometry: geometry)
    }
    let flops = 2.0 * Double(n * c * hw * hw * c * 9)
    if o.json {
        print(
            jsonLine([
                ("bench", "conv"), ("batch", n), ("threads", o.threads), ("forward_ms", forward),
                ("backward_input_ms", input), ("backward_weight_ms", weight), ("step_ms", step),
                ("step_gflops", 3 * flops / step / 1e6),
            ]))
    } else {
        print(
            String(
                format: "conv N=%d 64→64 32×32 3×3, %d threads: forward %.1f ms (%.0f GFLOP/s), dX %.1f ms, dW %.1f ms, "
                    + "forward+backward %.1f ms (%.0f GFLOP/s)", n, o.threads, forward, flops / forward / 1e6, input, weight,
                step, 3 * flops / step / 1e6))
    }
}
