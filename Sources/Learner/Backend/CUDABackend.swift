import CLearner

/// NVIDIA GPUs through the C shim's CUDA layer: cuBLAS for matrix products, NVRTC-compiled
/// kernels for element-wise work, reductions, the fused softmax cross-entropy and the
/// optimizer updates. Work is queued on the device's stream; the host waits only where a
/// value comes back (a loss for logging, arg-max for accuracy).
///
/// Ops that have no kernel yet (general permutes, max reductions, label smoothing, sigmoid
/// cross-entropy) run through a host round trip: correct on every device, and named
/// in ``hostFallbacks`` so that a profile shows where a kernel would pay.
public struct CUDABackend: Backend {
    public let index: Int
    public var device: Device { .cuda(index) }

    static func forDevice(_ index: Int) -> CUDABackend { CUDABackend(index: index) }

    /// Ops that ran through the host since start-up, by name (for profiling and tests).
    nonisolated(unsafe) public private(set) static var hostFallbacks: [String: Int] = [:]

    private func check(_ status: Int32, _ what: @autoclosure () -> String) { CUDAContext.check(status, what()) }

    private func make(_ count: Int) -> Storage { Storage(count: count, device: device) }

    private func toHost(_ s: Storage) -> Storage {
        let h = Storage(count: s.count)
        DeviceCopy.copy(from: s, to: h)
        return h
    }

    private func toDevice(_ s: Storage) -> Storage {
        let d = make(s.count)
        DeviceCopy.copy(from: s, to: d)
        return d
    }

    private func viaHost(_ name: String, _ body: () -> Storage) -> Storage {
        CUDABackend.hostFallbacks[name, default: 0] += 1
        return toDevice(body())
    }

    /// A one-element device storage holding `value`.
    private func scalar(_ value: Float) -> Storage {
        let s = make(1)
        fill(s, value: value)
        return s
    }

    /// Element count of `shape` when it is a trailing suffix of `outShape` (leading 1s
    /// dropped), which the kernel broadcasts as `x[i % count]`; nil otherwise.
    private func trailingCount(_ shape: [Int], _ outShape: [Int]) -> Int? {
        let trimmed = Array(shape.drop(while: { $0 == 1 }))
        guard trimmed.count <= outShape.count, Array(outShape.suffix(trimmed.count)) == trimmed else { return nil }
        return max(ShapeMath.count(trimmed), 1)
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, outShape: [Int]) -> Storage {
        let n = ShapeMath.count(outShape)
        if let an = trailingCount(a.shape, outShape), let bn = trailingCount(b.shape, outShape) {
            let out = make(n)
            check(tl_cuda_binary(op.rawValue, a.storage.pointer, an, b.storage.pointer, bn, out.pointer, n), "binary op \(op)")
            return out
        }
        return viaHost("binary-broadcast") {
            CPUBackend.shared.binary(op, Tensor(shape: a.shape, storage: toHost(a.storage)),
                                     Tensor(shape: b.shape, storage: toHost(b.storage)), outShape: outShape)
        }
    }

    public func unary(_ op: UnaryOp, _ x: Storage) -> Storage {
        let out = make(x.count)
        check(tl_cuda_unary(op.rawValue, x.pointer, out.pointer, x.count), "unary op \(op)")
        return out
    }

    public func unaryBackward(_ op: UnaryOp, x: Storage, y: Storage, gradient: Storage) -> Storage {
        let out = make(x.count)
        check(tl_cuda_unary_backward(op.rawValue, x.pointer, y.pointer, gradient.pointer, out.pointer, x.count), "unary backward \(op)")
        return out
    }

    public func affine(_ x: Storage, scale: Float, shift: Float) -> Storage {
        let out = make(x.count)
        check(tl_cuda_affine(x.pointer, scale, shift, out.pointer, x.count), "affine")
        return out
    }

    public func pow(_ x: Storage, _ exponent: Float) -> Storage {
        let out = make(x.count)
        let e = scalar(exponent)
        check(tl_cuda_binary(BinaryOp.pow.rawValue, x.pointer, x.count, e.pointer, 1, out.pointer, x.count), "pow")
        return out
    }

    public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: Storage, b: Storage, into c: Storage,
                     accumulate: Bool) {
        check(tl_cuda_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1, a.pointer,
                            Int32(transA ? m : k), b.pointer, Int32(transB ? k : n), accumulate ? 1 : 0, c.pointer, Int32(n)),
              "sgemm \(m)×\(n)×\(k)")
    }

    public func reduce(sum: Bool, _ x: Storage, outer: Int, mid: Int, inner: Int) -> (Storage, [Int32]?) {
        if sum {
            let out = make(outer * inner)
            check(tl_cuda_sum_mid(x.pointer, outer, mid, inner, out.pointer), "sum")
            return (out, nil)
        }
        CUDABackend.hostFallbacks["max", default: 0] += 1
        let (values, idx) = CPUBackend.shared.reduce(sum: false, toHost(x), outer: outer, mid: mid, inner: inner)
        return (toDevice(values), idx)
    }

    public func softmax(_ x: Storage, rows: Int, columns: Int, log: Bool) -> Storage {
        let out = make(x.count)
        check(tl_cuda_softmax_rows(x.pointer, out.pointer, rows, columns, log ? 1 : 0), "softmax")
        return out
    }

    public func permute(_ x: Storage, shape: [Int], permutation: [Int]) -> Storage {
        viaHost("permute") { CPUBackend.shared.permute(toHost(x), shape: shape, permutation: permutation) }
    }

    public func sumAll(_ x: Storage) -> Float {
        let out = make(1)
        check(tl_cuda_sum_mid(x.pointer, 1, x.count, 1, out.pointer), "sum")
        let host = toHost(out)
        return withExtendedLifetime(host) { host.pointer[0] }
    }

    public func gatherRows(_ x: Storage, rowSize: Int, indices: [Int32]) -> Storage {
        let out = make(indices.count * rowSize)
        check(tl_cuda_gather_rows(x.pointer, x.count / max(rowSize, 1), rowSize, indices, indices.count, out.pointer), "row gather")
        return out
    }

    public func scatterAddRows(_ g: Storage, rowSize: Int, indices: [Int32], rows: Int) -> Storage {
        let out = make(rows * rowSize)
        check(tl_cuda_scatter_add_rows(g.pointer, rowSize, indices, indices.count, rows, out.pointer), "row scatter-add")
        return out
    }

    public func fill(_ s: Storage, value: Float) { check(tl_cuda_fill(s.pointer, value, s.count), "fill") }

    public func linear(_ x: Storage, _ w: Storage, _ b: Storage?, m: Int, n: Int, k: Int) -> Storage {
        let out = make(m * n)
        gemm(transA: false, transB: true, m: m, n: n, k: k, a: x, b: w, into: out, accumulate: false)
        if let b {
            check(tl_cuda_binary(BinaryOp.add.rawValue, out.pointer, m * n, b.pointer, n, out.pointer, m * n), "bias add")
        }
        return out
    }

    public func copyRows(from src: Storage, offset srcOffset: Int, stride srcStride: Int,
                         to dst: Storage, offset dstOffset: Int, stride dstStride: Int, rows: Int, rowLength: Int) {
        if srcStride == rowLength && dstStride == rowLength {
            check(tl_cuda_memcpy_dtod(dst.pointer + dstOffset, src.pointer + srcOffset, rows * rowLength * 4), "copy")
            return
        }
        for r in 0..<rows {
            check(tl_cuda_memcpy_dtod(dst.pointer + dstOffset + r * dstStride, src.pointer + srcOffset + r * srcStride,
                                      rowLength * 4), "copy")
        }
    }

    public func argmax(_ x: Storage, outer: Int, mid: Int, inner: Int) -> [Int32] {
        CPUBackend.shared.argmax(toHost(x), outer: outer, mid: mid, inner: inner)
    }

    public func softmaxCrossEntropy(_ logits: Storage, labels: Storage, weights: Storage?, smoothing: Float,
                                    rows: Int, columns: Int) -> Storage {
        guard smoothing == 0 else {
            return viaHost("softmaxCrossEntropy-smoothing") {
                CPUBackend.shared.softmaxCrossEntropy(toHost(logits), labels: toHost(labels), weights: weights.map(toHost),
                                                      smoothing: smoothing, rows: rows, columns: columns)
            }
        }
        let perRow = make(rows)
        check(tl_cuda_softmax_xent_forward(logits.pointer, labels.pointer, perRow.pointer, rows, columns), "cross-entropy")
        if let weights {
            check(tl_cuda_binary(BinaryOp.multiply.rawValue, perRow.pointer, rows, weights.pointer, rows, perRow.pointer, rows),
                  "weighted cross-entropy")
        }
        let total = make(1)
        check(tl_cuda_sum_mid(perRow.pointer, 1, rows, 1, total.pointer), "cross-entropy sum")
        return affine(total, scale: 1 / Float(rows), shift: 0)
    }

    public func softmaxCrossEntropyBackward(_ logits: Storage, labels: Storage, weights: Storage?, smoothing: Float,
                                            scale: Float, rows: Int, columns: Int) -> Storage {
        guard smoothing == 0 else {
            return viaHost("softmaxCrossEntropy-smoothing") {
                CPUBackend.shared.softmaxCrossEntropyBackward(toHost(logits), labels: toHost(labels), weights: weights.map(toHost),
                                                              smoothing: smoothing, scale: scale, rows: rows, columns: columns)
            }
        }
        let grad = make(rows * columns)
        check(tl_cuda_softmax_xent_backward(logits.pointer, labels.pointer, weights?.pointer, scale, grad.pointer, rows, columns),
              "cross-entropy backward")
        return grad
    }

    public func sigmoidCrossEntropy(_ logits: Storage, targets: Storage, weights: Storage?, perRow: Int) -> Storage {
        viaHost("sigmoidCrossEntropy") {
            CPUBackend.shared.sigmoidCrossEntropy(toHost(logits), targets: toHost(targets), weights: weights.map(toHost), perRow: perRow)
        }
    }

    public func sigmoidCrossEntropyBackward(_ logits: Storage, targets: Storage, weights: Storage?, perRow: Int,
                                            scale: Float) -> Storage {
        viaHost("sigmoidCrossEntropy") {
            CPUBackend.shared.sigmoidCrossEntropyBackward(toHost(logits), targets: toHost(targets), weights: weights.map(toHost),
                                                          perRow: perRow, scale: scale)
        }
    }

    public func dropoutMask(count: Int, rate: Float, key: UInt64, step: UInt64) -> Storage {
        let out = make(count)
        check(tl_cuda_dropout_mask(out.pointer, count, key, step, rate, 1 / (1 - rate)), "dropout mask")
        return out
    }

    public func sgdUpdate(_ w: Storage, _ g: Storage, momentum buffer: Storage?, learningRate: Float, momentum: Float,
                          dampening: Float, weightDecay: Float, nesterov: Bool, firstStep: Bool) {
        check(tl_cuda_sgd_update(w.pointer, g.pointer, buffer?.pointer, w.count, learningRate, momentum, dampening, weightDecay,
                                 nesterov ? 1 : 0, firstStep ? 1 : 0), "SGD update")
    }

    public func adamUpdate(_ w: Storage, _ g: Storage, _ m: Storage, _ v: Storage, learningRate: Float, beta1: Float,
                           beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool, biasCorrection1: Float,
                           biasCorrection2: Float) {
        check(tl_cuda_adam_update(w.pointer, g.pointer, m.pointer, v.pointer, w.count, learningRate, beta1, beta2, epsilon,
                                  weightDecay, decoupled ? 1 : 0, biasCorrection1, biasCorrection2), "Adam update")
    }

    public func rmspropUpdate(_ w: Storage, _ g: Storage, square: Storage, momentum buffer: Storage, average: Storage,
                              learningRate: Float, alpha: Float, epsilon: Float, weightDecay: Float, momentum: Float,
                              centered: Bool) {
        check(tl_cuda_rmsprop_update(w.pointer, g.pointer, square.pointer, buffer.pointer, average.pointer, w.count, learningRate,
                                     alpha, epsilon, weightDecay, momentum, centered ? 1 : 0), "RMSProp update")
    }
}

/// Convolution, pooling and batch normalisation on a CUDA device: host fallbacks for now (no
/// CUDA kernels yet). Each copies its operands to the host, runs the CPU kernel and copies the
/// result back: correct on the GPU, counted in ``CUDABackend/hostFallbacks`` under its name.
extension CUDABackend {
    private func viaHost2(_ name: String, _ body: () -> (Storage, Storage)) -> (Storage, Storage) {
        CUDABackend.hostFallbacks[name, default: 0] += 1
        let (a, b) = body()
        return (toDevice(a), toDevice(b))
    }

    public func conv2d(_ x: Storage, weight: Storage, bias: Storage?, geometry: Conv2DGeometry) -> Storage {
        viaHost("conv2d") { CPUBackend.shared.conv2d(toHost(x), weight: toHost(weight), bias: bias.map(toHost), geometry: geometry) }
    }

    public func conv2dBackwardInput(_ gradient: Storage, weight: Storage, geometry: Conv2DGeometry) -> Storage {
        viaHost("conv2dBackwardInput") {
            CPUBackend.shared.conv2dBackwardInput(toHost(gradient), weight: toHost(weight), geometry: geometry)
        }
    }

    public func conv2dBackwardWeight(_ gradient: Storage, input: Storage, geometry: Conv2DGeometry) -> Storage {
        viaHost("conv2dBackwardWeight") {
            CPUBackend.shared.conv2dBackwardWeight(toHost(gradient), input: toHost(input), geometry: geometry)
        }
    }

    public func maxPool2d(_ x: Storage, window: Window2D, planes: Int) -> (output: Storage, argmax: Storage) {
        let (o, a) = viaHost2("maxPool2d") {
            let r = CPUBackend.shared.maxPool2d(toHost(x), window: window, planes: planes)
            return (r.output, r.argmax)
        }
        return (o, a)
    }

    public func maxPool2dBackward(_ gradient: Storage, argmax: Storage, window: Window2D, planes: Int) -> Storage {
        viaHost("maxPool2dBackward") {
            CPUBackend.shared.maxPool2dBackward(toHost(gradient), argmax: toHost(argmax), window: window, planes: planes)
        }
    }

    public func avgPool2d(_ x: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage {
        viaHost("avgPool2d") { CPUBackend.shared.avgPool2d(toHost(x), window: window, planes: planes, countIncludePad: countIncludePad) }
    }

    public func avgPool2dBackward(_ gradient: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage {
        viaHost("avgPool2dBackward") {
            CPUBackend.shared.avgPool2dBackward(toHost(gradient), window: window, planes: planes, countIncludePad: countIncludePad)
        }
    }

    public func batchNormStatistics(_ x: Storage, batch: Int, channels: Int, spatial: Int) -> (mean: Storage, variance: Storage) {
        let (m, v) = viaHost2("batchNormStatistics") {
            let r = CPUBackend.shared.batchNormStatistics(toHost(x), batch: batch, channels: channels, spatial: spatial)
            return (r.mean, r.variance)
        }
        return (m, v)
    }

    public func batchNorm(_ x: Storage, mean: Storage, variance: Storage, weight: Storage, bias: Storage, epsilon: Float,
                          batch: Int, channels: Int, spatial: Int) -> Storage {
        viaHost("batchNorm") {
            CPUBackend.shared.batchNorm(toHost(x), mean: toHost(mean), variance: toHost(variance), weight: toHost(weight),
                                        bias: toHost(bias), epsilon: epsilon, batch: batch, channels: channels, spatial: spatial)
        }
    }

    public func batchNormBackward(_ gradient: Storage, input: Storage, mean: Storage, variance: Storage, weight: Storage,
                                  epsilon: Float, batchStatistics: Bool, batch: Int, channels: Int, spatial: Int)
        -> (input: Storage, weight: Storage, bias: Storage) {
        CUDABackend.hostFallbacks["batchNormBackward", default: 0] += 1
        let r = CPUBackend.shared.batchNormBackward(toHost(gradient), input: toHost(input), mean: toHost(mean),
                                                    variance: toHost(variance), weight: toHost(weight), epsilon: epsilon,
                                                    batchStatistics: batchStatistics, batch: batch, channels: channels,
                                                    spatial: spatial)
        return (toDevice(r.input), toDevice(r.weight), toDevice(r.bias))
    }
}
