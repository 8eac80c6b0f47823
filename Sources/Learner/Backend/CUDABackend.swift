import CLearner

/// NVIDIA GPUs through the C shim's CUDA layer: cuBLAS for matrix products, NVRTC-compiled
/// kernels for element-wise work, reductions, the fused softmax cross-entropy and the
/// optimizer updates. Work is queued on the device's stream; the host waits only where a
/// value comes back (a loss for logging, arg-max for accuracy).
///
/// Convolutions, pooling and batch normalisation are in the extension below. The one op left
/// without a kernel (a broadcast of rank > 8) runs through a host round trip: correct on every
/// device, and named in ``hostFallbacks`` so that a profile shows where a kernel would pay.
public struct CUDABackend: Backend {
    public let index: Int
    public var device: Device { .cuda(index) }

    static func forDevice(_ index: Int) -> CUDABackend { CUDABackend(index: index) }

    /// Ops that ran through the host since start-up, by name (for profiling and tests).
    public static var hostFallbacks: [String: Int] { hostFallbackCounts.current }
    private static let hostFallbackCounts = Locked<[String: Int]>([:])

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
        CUDABackend.hostFallbackCounts.withLock { $0[name, default: 0] += 1 }
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

    public func binary(
        _ op: BinaryOp, _ a: Storage, shape aShape: [Int], _ b: Storage, shape bShape: [Int],
        outShape: [Int]
    ) -> Storage {
        let n = ShapeMath.count(outShape)
        if let an = trailingCount(aShape, outShape), let bn = trailingCount(bShape, outShape) {
            let out = make(n)
            check(tl_cuda_binary(op.rawValue, a.pointer, an, b.pointer, bn, out.pointer, n), "binary op \(op.name)")
            return out
        }
        if outShape.count <= 8 {
            // Any other broadcast: strided indexing (stride 0 on broadcast axes), as tl_binary_strided.
            let sa = ShapeMath.broadcastStrides(aShape, to: outShape).map { Int64($0) }
            let sb = ShapeMath.broadcastStrides(bShape, to: outShape).map { Int64($0) }
            let out = make(n)
            check(
                tl_cuda_binary_strided(
                    op.rawValue, Int32(outShape.count), outShape.map { Int64($0) }, a.pointer, sa,
                    b.pointer, sb, out.pointer), "broadcast binary op \(op.name)")
            return out
        }
        return viaHost("binary-broadcast") {
            CPUBackend.shared.binary(op, toHost(a), shape: aShape, toHost(b), shape: bShape, outShape: outShape)
        }
    }

    public func unary(_ op: UnaryOp, _ x: Storage) -> Storage {
        let out = make(x.count)
        check(tl_cuda_unary(op.rawValue, x.pointer, out.pointer, x.count), "unary op \(op.name)")
        return out
    }

    public func unaryBackward(_ op: UnaryOp, x: Storage?, y: Storage?, gradient: Storage) -> Storage {
        let out = make(gradient.count)
        check(
            tl_cuda_unary_backward(op.rawValue, x?.pointer, y?.pointer, gradient.pointer, out.pointer, gradient.count),
            "unary backward \(op.name)")
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

    public func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: Storage, b: Storage, into c: Storage,
        accumulate: Bool
    ) {
        check(
            tl_cuda_sgemm(
                transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1, a.pointer,
                Int32(transA ? m : k), b.pointer, Int32(transB ? k : n), accumulate ? 1 : 0, c.pointer, Int32(n)),
            "sgemm \(m)×\(n)×\(k)")
    }

    public func gemmBatched(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, batch: Int, a: Storage, b: Storage, into c: Storage,
        accumulate: Bool
    ) {
        batchedGemm(
            transA: transA, transB: transB, m: m, n: n, k: k, a: a.pointer, lda: transA ? m : k, strideA: m * k,
            b: b.pointer, ldb: transB ? k : n, strideB: k * n, beta: accumulate ? 1 : 0, c: c.pointer, ldc: n, strideC: m * n,
            batch: batch)
    }

    public func reduce(sum: Bool, _ x: Storage, outer: Int, mid: Int, inner: Int) -> (Storage, [Int32]?) {
        if sum {
            let out = make(outer * inner)
            check(tl_cuda_sum_mid(x.pointer, outer, mid, inner, out.pointer), "sum")
            return (out, nil)
        }
        // Values stay on the device; the arg-max indices come back to the host (the signature's
        // [Int32]), which waits for the kernel.
        let out = make(outer * inner)
        var idx = [Int32](repeating: 0, count: outer * inner)
        let status = idx.withUnsafeMutableBufferPointer { tl_cuda_max_mid(x.pointer, outer, mid, inner, out.pointer, $0.baseAddress) }
        check(status, "max")
        return (out, idx)
    }

    public func softmax(_ x: Storage, rows: Int, columns: Int, log: Bool) -> Storage {
        let out = make(x.count)
        check(tl_cuda_softmax_rows(x.pointer, out.pointer, rows, columns, log ? 1 : 0), "softmax")
        return out
    }

    public func permute(_ x: Storage, shape: [Int], permutation: [Int]) -> Storage {
        precondition(shape.count <= 8, "permute: rank \(shape.count) > 8")
        let strides = ShapeMath.strides(shape)
        let outShape = permutation.map { Int64(shape[$0]) }
        let permStrides = permutation.map { Int64(strides[$0]) }
        let out = make(x.count)
        check(tl_cuda_permute(Int32(shape.count), outShape, x.pointer, permStrides, out.pointer), "permute")
        return out
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

    public func copyRows(
        from src: Storage, offset srcOffset: Int, stride srcStride: Int,
        to dst: Storage, offset dstOffset: Int, stride dstStride: Int, rows: Int, rowLength: Int
    ) {
        if srcStride == rowLength && dstStride == rowLength {
            check(tl_cuda_memcpy_dtod(dst.pointer + dstOffset, src.pointer + srcOffset, rows * rowLength * 4), "copy")
            return
        }
        for r in 0..<rows {
            check(
                tl_cuda_memcpy_dtod(
                    dst.pointer + dstOffset + r * dstStride, src.pointer + srcOffset + r * srcStride,
                    rowLength * 4), "copy")
        }
    }

    public func argmax(_ x: Storage, outer: Int, mid: Int, inner: Int) -> [Int32] {
        reduce(sum: false, x, outer: outer, mid: mid, inner: inner).1 ?? []
    }

    public func softmaxCrossEntropy(
        _ logits: Storage, labels: Storage, weights: Storage?, smoothing: Float,
        rows: Int, columns: Int
    ) -> Storage {
        let perRow = make(rows)
        check(
            tl_cuda_softmax_xent_smooth_forward(logits.pointer, labels.pointer, perRow.pointer, rows, columns, smoothing),
            "cross-entropy")
        if let weights {
            check(
                tl_cuda_binary(BinaryOp.multiply.rawValue, perRow.pointer, rows, weights.pointer, rows, perRow.pointer, rows),
                "weighted cross-entropy")
        }
        let total = make(1)
        check(tl_cuda_sum_mid(perRow.pointer, 1, rows, 1, total.pointer), "cross-entropy sum")
        return affine(total, scale: 1 / Float(rows), shift: 0)
    }

    public func softmaxCrossEntropyBackward(
        _ logits: Storage, labels: Storage, weights: Storage?, smoothing: Float,
        scale: Float, rows: Int, columns: Int
    ) -> Storage {
        let grad = make(rows * columns)
        check(
            tl_cuda_softmax_xent_smooth_backward(
                logits.pointer, labels.pointer, weights?.pointer, scale, smoothing,
                grad.pointer, rows, columns), "cross-entropy backward")
        return grad
    }

    public func sigmoidCrossEntropy(_ logits: Storage, targets: Storage, weights: Storage?, perRow: Int) -> Storage {
        let n = logits.count
        let perElement = make(n)
        check(
            tl_cuda_sigmoid_xent(logits.pointer, targets.pointer, weights?.pointer, perRow, perElement.pointer, n, 0, 1),
            "sigmoid cross-entropy")
        let total = make(1)
        check(tl_cuda_sum_mid(perElement.pointer, 1, n, 1, total.pointer), "sigmoid cross-entropy sum")
        return affine(total, scale: 1 / Float(n), shift: 0)
    }

    public func sigmoidCrossEntropyBackward(
        _ logits: Storage, targets: Storage, weights: Storage?, perRow: Int,
        scale: Float
    ) -> Storage {
        let grad = make(logits.count)
        check(
            tl_cuda_sigmoid_xent(
                logits.pointer, targets.pointer, weights?.pointer, perRow, grad.pointer, logits.count, 1,
                scale), "sigmoid cross-entropy backward")
        return grad
    }

    public func dropoutMask(count: Int, rate: Float, key: UInt64, step: UInt64) -> Storage {
        let out = make(count)
        check(tl_cuda_dropout_mask(out.pointer, count, key, step, rate, 1 / (1 - rate)), "dropout mask")
        return out
    }

    public func sgdUpdate(
        _ w: Storage, _ g: Storage, momentum buffer: Storage?, learningRate: Float, momentum: Float,
        dampening: Float, weightDecay: Float, nesterov: Bool, firstStep: Bool
    ) {
        check(
            tl_cuda_sgd_update(
                w.pointer, g.pointer, buffer?.pointer, w.count, learningRate, momentum, dampening, weightDecay,
                nesterov ? 1 : 0, firstStep ? 1 : 0), "SGD update")
    }

    public func adamUpdate(
        _ w: Storage, _ g: Storage, _ m: Storage, _ v: Storage, learningRate: Float, beta1: Float,
        beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool, biasCorrection1: Float,
        biasCorrection2: Float
    ) {
        check(
            tl_cuda_adam_update(
                w.pointer, g.pointer, m.pointer, v.pointer, w.count, learningRate, beta1, beta2, epsilon,
                weightDecay, decoupled ? 1 : 0, biasCorrection1, biasCorrection2), "Adam update")
    }

    public func rmspropUpdate(
        _ w: Storage, _ g: Storage, square: Storage, momentum buffer: Storage, average: Storage,
        learningRate: Float, alpha: Float, epsilon: Float, weightDecay: Float, momentum: Float,
        centered: Bool
    ) {
        check(
            tl_cuda_rmsprop_update(
                w.pointer, g.pointer, square.pointer, buffer.pointer, average.pointer, w.count, learningRate,
                alpha, epsilon, weightDecay, momentum, centered ? 1 : 0), "RMSProp update")
    }
}

/// Convolution, pooling and batch normalisation on a CUDA device, with the CPU kernels'
/// semantics (CPUBackend+Conv.swift, conv.c): convolutions go through cuDNN where it is
/// installed (CUDABackend+cuDNN.swift), else ``ConvSchedule`` over im2col/col2im kernels and
/// cuBLAS strided-batched sgemm; pooling and batch norm are one or
/// two kernels each. Nothing here goes through the host.
extension CUDABackend: ConvPrimitives {
    /// Floats of scratch (im2col columns, weight-gradient partials) one convolution call may
    /// hold on the device: 64 Mi floats (256 MiB) by default. Larger batches run in chunks of
    /// images; a smaller value trades memory for more, smaller sgemms.
    public static var convolutionScratchFloats: Int {
        get { convolutionScratchSetting.value }
        set { convolutionScratchSetting.value = newValue }
    }
    private static let convolutionScratchSetting = AtomicSetting(64 << 20)

    private var schedule: ConvSchedule<CUDABackend> {
        ConvSchedule(p: self, scratchBudget: Swift.max(CUDABackend.convolutionScratchFloats, 1))
    }

    func alloc(_ count: Int) -> Storage { make(count) }

    func batchedGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        a: UnsafeMutablePointer<Float>, lda: Int, strideA: Int,
        b: UnsafeMutablePointer<Float>, ldb: Int, strideB: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, batch: Int
    ) {
        check(
            tl_cuda_sgemm_strided_batched(
                transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1,
                a, Int32(lda), Int64(strideA), b, Int32(ldb), Int64(strideB), beta,
                c, Int32(ldc), Int64(strideC), Int32(batch)),
            "batched sgemm \(m)×\(n)×\(k) ×\(batch)")
    }

    func im2col(_ x: UnsafeMutablePointer<Float>, window: tl_window2d, images: Int, _ col: UnsafeMutablePointer<Float>) {
        var w = window
        check(tl_cuda_im2col(x, &w, images, col), "im2col")
    }

    func col2im(_ col: UnsafeMutablePointer<Float>, window: tl_window2d, images: Int, _ x: UnsafeMutablePointer<Float>) {
        var w = window
        check(tl_cuda_col2im(col, &w, images, x), "col2im")
    }

    func channelBiasAdd(_ out: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>, batch: Int, channels: Int, plane: Int) {
        check(tl_cuda_channel_bias_add(out, bias, batch, channels, plane), "channel bias")
    }

    func sumRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, _ out: UnsafeMutablePointer<Float>) {
        check(tl_cuda_sum_mid(x, 1, rows, columns, out), "sum")
    }

    func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, count: Int) {
        check(tl_cuda_binary(BinaryOp.add.rawValue, y, count, x, count, y, count), "add")
    }

    public func conv2d(_ x: Storage, weight: Storage, bias: Storage?, geometry g: Conv2DGeometry) -> Storage {
        cuDNNConv2d(x, weight: weight, bias: bias, geometry: g) ?? schedule.conv2d(x, weight: weight, bias: bias, geometry: g)
    }

    public func conv2dBackwardInput(_ gradient: Storage, weight: Storage, geometry g: Conv2DGeometry) -> Storage {
        cuDNNConv2dBackwardInput(gradient, weight: weight, geometry: g)
            ?? schedule.conv2dBackwardInput(gradient, weight: weight, geometry: g)
    }

    public func conv2dBackwardWeight(_ gradient: Storage, input x: Storage, geometry g: Conv2DGeometry) -> Storage {
        cuDNNConv2dBackwardWeight(gradient, input: x, geometry: g)
            ?? schedule.conv2dBackwardWeight(gradient, input: x, geometry: g)
    }

    public func maxPool2d(_ x: Storage, window: Window2D, planes: Int) -> (output: Storage, argmax: Storage) {
        let out = make(planes * window.outputPlane), idx = make(planes * window.outputPlane)
        var w = window.c
        check(tl_cuda_maxpool2d_forward(x.pointer, &w, planes, out.pointer, idx.pointer), "maxPool2d")
        return (out, idx)
    }

    public func maxPool2dBackward(_ gradient: Storage, argmax: Storage, window: Window2D, planes: Int) -> Storage {
        let dx = make(planes * window.inputPlane)
        var w = window.c
        check(tl_cuda_maxpool2d_backward(gradient.pointer, argmax.pointer, &w, planes, dx.pointer), "maxPool2d backward")
        return dx
    }

    public func avgPool2d(_ x: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage {
        let out = make(planes * window.outputPlane)
        var w = window.c
        check(tl_cuda_avgpool2d_forward(x.pointer, &w, planes, countIncludePad ? 1 : 0, out.pointer), "avgPool2d")
        return out
    }

    public func avgPool2dBackward(_ gradient: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage {
        let dx = make(planes * window.inputPlane)
        var w = window.c
        check(tl_cuda_avgpool2d_backward(gradient.pointer, &w, planes, countIncludePad ? 1 : 0, dx.pointer), "avgPool2d backward")
        return dx
    }

    public func batchNormStatistics(_ x: Storage, batch: Int, channels: Int, spatial: Int) -> (mean: Storage, variance: Storage) {
        let mean = make(channels), variance = make(channels)
        check(tl_cuda_batchnorm_stats(x.pointer, batch, channels, spatial, mean.pointer, variance.pointer), "batchNorm statistics")
        return (mean, variance)
    }

    public func batchNorm(
        _ x: Storage, mean: Storage, variance: Storage, weight: Storage, bias: Storage, epsilon: Float,
        batch: Int, channels: Int, spatial: Int
    ) -> Storage {
        let y = make(x.count)
        check(
            tl_cuda_batchnorm_forward(
                x.pointer, batch, channels, spatial, mean.pointer, variance.pointer, epsilon,
                weight.pointer, bias.pointer, y.pointer), "batchNorm")
        return y
    }

    public func batchNormBackward(
        _ gradient: Storage, input: Storage, mean: Storage, variance: Storage, weight: Storage,
        epsilon: Float, batchStatistics: Bool, batch: Int, channels: Int, spatial: Int
    )
        -> (input: Storage, weight: Storage, bias: Storage)
    {
        let dx = make(input.count), dw = make(channels), db = make(channels)
        check(
            tl_cuda_batchnorm_backward(
                gradient.pointer, input.pointer, batch, channels, spatial, mean.pointer,
                variance.pointer, epsilon, weight.pointer, batchStatistics ? 1 : 0, dx.pointer,
                dw.pointer, db.pointer), "batchNorm backward")
        return (dx, dw, db)
    }
}
