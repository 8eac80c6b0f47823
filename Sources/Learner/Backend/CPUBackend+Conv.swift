import CLearner
import Foundation

/// The CPU's convolution, pooling and batch-normalisation kernels.
///
/// Convolutions run as im2col + OpenBLAS sgemm (Chellapilla et al. 2006), one sgemm per group
/// over a whole chunk of images rather than one per image: the chunk's column matrices sit side
/// by side in one matrix [C·kH·kW, images·OH·OW] (im2col with a row stride), so that the deep
/// layers, whose planes are a few pixels, still give OpenBLAS wide products. The product is in
/// the GEMM layout [outC, images, OH·OW]; one pass swaps it into NCHW (adding the bias), and
/// the backward passes swap the NCHW gradient the other way. im2col and col2im are gathers
/// through offset tables made once per geometry (conv_gather.c): no per-row range arithmetic,
/// which dominated when the deep layers' planes made every row copy a few floats long. They
/// and the swaps run split over channels across cores (CPUParallel), the sgemms sliced over the
/// same worker pool (CPUGemm).
extension CPUBackend {
    /// Floats of column matrix one call may build at once.
    static var columnBudget: Int {
        get { columnBudgetSetting.value }
        set { columnBudgetSetting.value = newValue }
    }
    private static let columnBudgetSetting = AtomicSetting(1 << 23)
    /// Columns (images × OH·OW) one sgemm should get: enough that OpenBLAS's kernels run wide
    /// and the weights are packed once for many images, few enough that a chunk's column
    /// matrix stays near the caches rather than streaming the whole batch's through memory.
    static let targetColumns = 1024

    /// Images per chunk.
    private func chunkSize(_ g: Conv2DGeometry) -> Int {
        let l = g.layout
        let wide = (CPUBackend.targetColumns + l.plane - 1) / Swift.max(l.plane, 1)
        // The gather tables hold offsets into the chunk's input as Int32.
        let addressable = Int(Int32.max) / Swift.max(l.inImage, 1)
        return Swift.max(1, Swift.min(g.batch, wide, addressable, CPUBackend.columnBudget / Swift.max(l.colImage, 1)))
    }

    /// Row stride of a chunk's column matrix and GEMM-layout buffers for rows of `columns`
    /// floats: 16 more when the rows are a multiple of 256 bytes. Rows 1,024 floats apart fall
    /// into the same few cache sets, and OpenBLAS's packing, which walks down them, then misses:
    /// the padding gave the forward sgemms 5–10 % (64×1024×576: 157 → 168 GFLOP/s, 64×1024×147:
    /// 163 → 179–187; standalone, 2 threads).
    static func rowStride(_ columns: Int) -> Int { columns % 64 == 0 ? columns + 16 : columns }

    /// col [rows·groups, count·plane] (rows `ld` apart) = im2col of images start..<start+count,
    /// image i's columns at i·plane; split over rows across cores.
    private func im2col(
        _ x: Storage, _ g: Conv2DGeometry, start: Int, count: Int, into col: UnsafeMutablePointer<Float>,
        ld: Int
    ) {
        let l = g.layout, window = g.window.c, rows = g.window.columnRows
        KernelProfile.measure(.im2col) {
            let taps = g.window.gatherTable(images: count)
            taps.withUnsafeBufferPointer { taps in
                // Split over rows, not channels: an RGB input's three channels do not share two cores evenly.
                CPUParallel.forItems(rows, itemSize: count * l.plane, minimumChunk: 1 << 13) { s, e in
                    var w = window
                    tl_im2col_gather(x.pointer + start * l.inImage, &w, taps.baseAddress!, count, s, e, ld, col)
                }
            }
        }
    }

    /// dst [b, a, plane] = src [a, b, plane] (+ bias per a), split over a across cores; src's rows
    /// (per a) and dst's (per b) at the given strides.
    private func swapOuter(
        _ src: UnsafePointer<Float>, a: Int, b: Int, plane: Int, srcStride: Int, dstStride: Int,
        bias: Storage?, into dst: UnsafeMutablePointer<Float>
    ) {
        KernelProfile.measure(.copy) {
            CPUParallel.forItems(a, itemSize: b * plane) { s, e in
                tl_swap_outer(src, a, b, plane, srcStride, dstStride, bias?.pointer, s, e, dst)
            }
        }
    }

    /// Images start..<start+count of the output gradient in the GEMM layout [outC, count, plane]
    /// and its row stride: swapped into `scratch` (padded rows), or the image itself when count is 1.
    private func gradientColumns(
        _ gradient: Storage, _ g: Conv2DGeometry, start: Int, count: Int,
        scratch: Storage
    ) -> (UnsafeMutablePointer<Float>, Int) {
        let l = g.layout
        if count == 1 { return (gradient.pointer + start * l.outImage, l.plane) }
        let ld = CPUBackend.rowStride(count * l.plane)
        swapOuter(
            gradient.pointer + start * l.outImage, a: count, b: g.outChannels, plane: l.plane, srcStride: l.outImage,
            dstStride: ld, bias: nil, into: scratch.pointer)
        return (scratch.pointer, ld)
    }

    /// Row-major C = op(A)·op(B) (+ C when beta is 1), counted as convolution sgemm.
    private func sgemm(
        _ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int,
        _ b: UnsafePointer<Float>, ldb: Int, beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        KernelProfile.gemm(.convGemm, m: m, n: n, k: k) {
            CPUGemm.sgemm(transA, transB, m: m, n: n, k: k, a, lda: lda, b, ldb: ldb, beta: beta, c, ldc: ldc)
        }
    }

    public func conv2d(_ x: Storage, weight: Storage, bias: Storage?, geometry g: Conv2DGeometry) -> Storage {
        let out = Storage(count: ShapeMath.count(g.outputShape))
        let l = g.layout, chunk = chunkSize(g), widest = CPUBackend.rowStride(chunk * l.plane)
        let col = Storage(count: g.window.columnRows * widest), y = Storage(count: chunk > 1 ? g.outChannels * widest : 0)
        for start in stride(from: 0, to: g.batch, by: chunk) {
            let count = Swift.min(chunk, g.batch - start), n = count * l.plane, ld = CPUBackend.rowStride(n)
            // One image's product is already its NCHW output: no swap, the bias written first.
            let direct = count == 1
            let target = direct ? out.pointer + start * l.outImage : y.pointer, ldc = direct ? n : ld
            if direct, let bias {
                for o in 0..<g.outChannels { (target + o * l.plane).update(repeating: bias.pointer[o], count: l.plane) }
            }
            im2col(x, g, start: start, count: count, into: col.pointer, ld: ld)
            for grp in 0..<g.groups {
                // y[group] [outPerGroup, count·plane] = W[group] [outPerGroup, rows] · col[group] [rows, count·plane]
                sgemm(
                    false, false, m: l.outPerGroup, n: n, k: l.rows, weight.pointer + grp * l.outPerGroup * l.rows, lda: l.rows,
                    col.pointer + grp * l.rows * ld, ldb: ld, beta: direct && bias != nil ? 1 : 0,
                    target + grp * l.outPerGroup * ldc, ldc: ldc)
            }
            if !direct {
                swapOuter(
                    y.pointer, a: g.outChannels, b: count, plane: l.plane, srcStride: ld, dstStride: l.outImage, bias: bias,
                    into: out.pointer + start * l.outImage)
            }
        }
        return out
    }

    public func conv2dBackwardInput(_ gradient: Storage, weight: Storage, geometry g: Conv2DGeometry) -> Storage {
        conv2dBackward(gradient, input: nil, weight: weight, geometry: g).input!
    }

    public func conv2dBackwardWeight(_ gradient: Storage, input x: Storage, geometry g: Conv2DGeometry) -> Storage {
        conv2dBackward(gradient, input: x, weight: nil, geometry: g).weight!
    }

    /// Both gradients chunk by chunk, the chunk's gradient swapped into the GEMM layout once.
    public func conv2dBackward(_ gradient: Storage, input x: Storage?, weight: Storage?, geometry g: Conv2DGeometry)
        -> (input: Storage?, weight: Storage?)
    {
        let l = g.layout, chunk = chunkSize(g), window = g.window.c, widest = CPUBackend.rowStride(chunk * l.plane)
        let dx = weight != nil ? Storage(count: ShapeMath.count(g.inputShape)) : nil
        let dw = x != nil ? Storage(count: ShapeMath.count(g.weightShape)) : nil
        // The input gradient's columns, then the weight gradient's im2col, in one buffer.
        let col = Storage(count: g.window.columnRows * widest), gtScratch = Storage(count: chunk > 1 ? g.outChannels * widest : 0)
        for start in stride(from: 0, to: g.batch, by: chunk) {
            let count = Swift.min(chunk, g.batch - start), n = count * l.plane, ld = CPUBackend.rowStride(n)
            let (gt, ldg) = gradientColumns(gradient, g, start: start, count: count, scratch: gtScratch)
            if let dx, let weight {
                for grp in 0..<g.groups {
                    // dcol[group] [rows, count·plane] = W[group]ᵀ [rows, outPerGroup] · g[group] [outPerGroup, count·plane]
                    sgemm(
                        true, false, m: l.rows, n: n, k: l.outPerGroup, weight.pointer + grp * l.outPerGroup * l.rows,
                        lda: l.rows, gt + grp * l.outPerGroup * ldg, ldb: ldg, beta: 0, col.pointer + grp * l.rows * ld, ldc: ld)
                }
                KernelProfile.measure(.col2im) {
                    g.window.gatherTable(images: count, inverse: true).withUnsafeBufferPointer { sources in
                        CPUParallel.forItems(
                            g.window.channels, itemSize: count * l.colImage / g.window.channels,
                            minimumChunk: 1 << 13
                        ) { s, e in
                            var w = window
                            tl_col2im_gather(col.pointer, &w, sources.baseAddress!, count, s, e, ld, dx.pointer + start * l.inImage)
                        }
                    }
                }
            }
            if let x, let dw {
                im2col(x, g, start: start, count: count, into: col.pointer, ld: ld)
                for grp in 0..<g.groups {
                    // dW[group] [outPerGroup, rows] (+)= g[group] [outPerGroup, count·plane] · col[group]ᵀ [count·plane, rows]
                    sgemm(
                        false, true, m: l.outPerGroup, n: l.rows, k: n, gt + grp * l.outPerGroup * ldg, lda: ldg,
                        col.pointer + grp * l.rows * ld, ldb: ld, beta: start == 0 ? 0 : 1,
                        dw.pointer + grp * l.outPerGroup * l.rows, ldc: l.rows)
                }
            }
        }
        return (dx, dw)
    }

    /// Splits `planes` planes (or channels) of `perPlane` elements into ranges across cores.
    private func forPlanes(_ kind: KernelProfile.Kind, _ planes: Int, perPlane: Int, _ body: (Int, Int) -> Void) {
        KernelProfile.measure(kind) { CPUParallel.forItems(planes, itemSize: perPlane, body) }
    }

    public func maxPool2d(_ x: Storage, window: Window2D, planes: Int) -> (output: Storage, argmax: Storage) {
        let out = Storage(count: planes * window.outputPlane), idx = Storage(count: planes * window.outputPlane)
        let inPlane = window.inputPlane, outPlane = window.outputPlane
        let taps = window.gatherTable()
        taps.withUnsafeBufferPointer { taps in
            forPlanes(.pooling, planes, perPlane: inPlane) { s, e in
                var w = window.c
                tl_maxpool2d_forward(
                    x.pointer + s * inPlane, &w, taps.baseAddress!, e - s, out.pointer + s * outPlane,
                    idx.pointer + s * outPlane)
            }
        }
        return (out, idx)
    }

    public func maxPool2dBackward(_ gradient: Storage, argmax: Storage, window: Window2D, planes: Int) -> Storage {
        let dx = Storage(count: planes * window.inputPlane)
        let inPlane = window.inputPlane, outPlane = window.outputPlane
        forPlanes(.pooling, planes, perPlane: inPlane) { s, e in
            var w = window.c
            tl_maxpool2d_backward(gradient.pointer + s * outPlane, argmax.pointer + s * outPlane, &w, e - s, dx.pointer + s * inPlane)
        }
        return dx
    }

    public func avgPool2d(_ x: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage {
        let out = Storage(count: planes * window.outputPlane)
        let inPlane = window.inputPlane, outPlane = window.outputPlane
        forPlanes(.pooling, planes, perPlane: inPlane) { s, e in
            var w = window.c
            tl_avgpool2d_forward(x.pointer + s * inPlane, &w, e - s, countIncludePad ? 1 : 0, out.pointer + s * outPlane)
        }
        return out
    }

    public func avgPool2dBackward(_ gradient: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage {
        let dx = Storage(count: planes * window.inputPlane)
        let inPlane = window.inputPlane, outPlane = window.outputPlane
        forPlanes(.pooling, planes, perPlane: inPlane) { s, e in
            var w = window.c
            tl_avgpool2d_backward(gradient.pointer + s * outPlane, &w, e - s, countIncludePad ? 1 : 0, dx.pointer + s * inPlane)
        }
        return dx
    }

    public func batchNormStatistics(_ x: Storage, batch: Int, channels: Int, spatial: Int) -> (mean: Storage, variance: Storage) {
        let mean = Storage(count: channels), variance = Storage(count: channels)
        forPlanes(.batchNorm, channels, perPlane: batch * spatial) { s, e in
            tl_batchnorm_stats(x.pointer, batch, channels, spatial, s, e, mean.pointer, variance.pointer)
        }
        return (mean, variance)
    }

    public func batchNorm(
        _ x: Storage, mean: Storage, variance: Storage, weight: Storage, bias: Storage, epsilon: Float,
        batch: Int, channels: Int, spatial: Int
    ) -> Storage {
        let y = Storage(count: x.count)
        forPlanes(.batchNorm, channels, perPlane: batch * spatial) { s, e in
            tl_batchnorm_forward(
                x.pointer, batch, channels, spatial, s, e, mean.pointer, variance.pointer, epsilon,
                weight.pointer, bias.pointer, y.pointer)
        }
        return y
    }

    public func batchNormBackward(
        _ gradient: Storage, input: Storage, mean: Storage, variance: Storage, weight: Storage,
        epsilon: Float, batchStatistics: Bool, batch: Int, channels: Int, spatial: Int
    )
        -> (input: Storage, weight: Storage, bias: Storage)
    {
        let dx = Storage(count: input.count), dw = Storage(count: channels), db = Storage(count: channels)
        forPlanes(.batchNorm, channels, perPlane: batch * spatial) { s, e in
            tl_batchnorm_backward(
                gradient.pointer, input.pointer, batch, channels, spatial, s, e, mean.pointer, variance.pointer,
                epsilon, weight.pointer, batchStatistics ? 1 : 0, dx.pointer, dw.pointer, db.pointer)
        }
        return (dx, dw, db)
    }
}
