import CLearner

/// The device primitives the GPU convolution schedule is built from. ``CUDABackend`` supplies
/// CUDA kernels and cuBLAS; ``HostConvPrimitives`` supplies the CPU kernels, so that tests run
/// the very same schedule (strides, chunking, groups) on a machine without a GPU.
///
/// Pointers are the primitives' own memory (device pointers for CUDA); counts are floats.
protocol ConvPrimitives {
    /// Uninitialised storage of `count` floats on the primitives' device.
    func alloc(_ count: Int) -> Storage
    /// Row-major strided-batched C_b = op(A_b)·op(B_b) + beta·C_b for b < batch (X_b = X + b·strideX).
    func batchedGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        a: UnsafeMutablePointer<Float>, lda: Int, strideA: Int,
        b: UnsafeMutablePointer<Float>, ldb: Int, strideB: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, batch: Int)
    /// col [images, C·kH·kW, OH·OW] = im2col of x [images, C, H, W].
    func im2col(_ x: UnsafeMutablePointer<Float>, window: tl_window2d, images: Int, _ col: UnsafeMutablePointer<Float>)
    /// x [images, C, H, W] = col2im(col), overwriting x.
    func col2im(_ col: UnsafeMutablePointer<Float>, window: tl_window2d, images: Int, _ x: UnsafeMutablePointer<Float>)
    /// out [batch, channels, plane] += bias[channel].
    func channelBiasAdd(_ out: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>, batch: Int, channels: Int, plane: Int)
    /// out [inner] = Σ_m x [mid, inner].
    func sumRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, _ out: UnsafeMutablePointer<Float>)
    /// y [n] += x [n].
    func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, count: Int)
}

/// im2col convolutions as batched sgemms, for a device where launches are cheap and many
/// images' column matrices fit in memory at once (the GPU).
///
/// For each group, one strided-batched sgemm over a chunk of images multiplies the group's
/// weight matrix (stride 0) by every image's column matrix [C/groups·kH·kW, OH·OW], writing
/// each image's NCHW output in place. The column buffer holds as many images as fit in
/// `scratchBudget` floats; a pointwise convolution (1×1, stride 1, no padding) needs none, the
/// image being its own column matrix. The input gradient is Wᵀ·g per image, then col2im (a
/// gather that overwrites). The weight gradient computes one partial per image with the same
/// batched sgemm and sums the partials over the chunk, then over chunks.
struct ConvSchedule<P: ConvPrimitives> {
    let p: P
    /// Floats of scratch (column matrices, weight-gradient partials) one call may hold at once.
    var scratchBudget = 64 << 20

    /// Images per chunk when each image needs `perImage` floats of scratch.
    private func chunk(_ g: Conv2DGeometry, perImage: Int) -> Int {
        Swift.max(1, Swift.min(g.batch, scratchBudget / Swift.max(perImage, 1)))
    }

    func conv2d(_ x: Storage, weight: Storage, bias: Storage?, geometry g: Conv2DGeometry) -> Storage {
        let out = p.alloc(ShapeMath.count(g.outputShape))
        let l = g.layout
        let (plane, rows, outPerGroup) = (l.plane, l.rows, l.outPerGroup)
        let (inImage, outImage, groupInput, colImage) = (l.inImage, l.outImage, l.groupInput, l.colImage)
        if g.window.isPointwise {
            // y[n, grp] [outPerGroup, plane] = W[grp] [outPerGroup, rows] · x[n, grp] [rows, plane], all n at once.
            for grp in 0..<g.groups {
                p.batchedGemm(
                    transA: false, transB: false, m: outPerGroup, n: plane, k: rows,
                    a: weight.pointer + grp * outPerGroup * rows, lda: rows, strideA: 0,
                    b: x.pointer + grp * groupInput, ldb: plane, strideB: inImage, beta: 0,
                    c: out.pointer + grp * outPerGroup * plane, ldc: plane, strideC: outImage, batch: g.batch)
            }
        } else {
            let chunk = chunk(g, perImage: colImage)
            let columns = p.alloc(chunk * colImage)
            var start = 0
            while start < g.batch {
                let count = Swift.min(chunk, g.batch - start)
                p.im2col(x.pointer + start * inImage, window: g.window.c, images: count, columns.pointer)
                for grp in 0..<g.groups {
                    // y[n, grp] [outPerGroup, plane] = W[grp] [outPerGroup, rows] · col[n, grp] [rows, plane]
                    p.batchedGemm(
                        transA: false, transB: false, m: outPerGroup, n: plane, k: rows,
                        a: weight.pointer + grp * outPerGroup * rows, lda: rows, strideA: 0,
                        b: columns.pointer + grp * rows * plane, ldb: plane, strideB: colImage, beta: 0,
                        c: out.pointer + start * outImage + grp * outPerGroup * plane, ldc: plane,
                        strideC: outImage, batch: count)
                }
                start += count
            }
            withExtendedLifetime(columns) {}
        }
        if let bias { p.channelBiasAdd(out.pointer, bias.pointer, batch: g.batch, channels: g.outChannels, plane: plane) }
        return out
    }

    func conv2dBackwardInput(_ gradient: Storage, weight: Storage, geometry g: Conv2DGeometry) -> Storage {
        let dx = p.alloc(ShapeMath.count(g.inputShape))
        let l = g.layout
        let (plane, rows, outPerGroup) = (l.plane, l.rows, l.outPerGroup)
        let (inImage, outImage, groupInput, colImage) = (l.inImage, l.outImage, l.groupInput, l.colImage)
        if g.window.isPointwise {
            // dx[n, grp] [rows, plane] = W[grp]ᵀ [rows, outPerGroup] · g[n, grp] [outPerGroup, plane], straight into dx.
            for grp in 0..<g.groups {
                p.batchedGemm(
                    transA: true, transB: false, m: rows, n: plane, k: outPerGroup,
                    a: weight.pointer + grp * outPerGroup * rows, lda: rows, strideA: 0,
                    b: gradient.pointer + grp * outPerGroup * plane, ldb: plane, strideB: outImage, beta: 0,
                    c: dx.pointer + grp * groupInput, ldc: plane, strideC: inImage, batch: g.batch)
            }
            return dx
        }
        let chunk = chunk(g, perImage: colImage)
        let columns = p.alloc(chunk * colImage)
        var start = 0
        while start < g.batch {
            let count = Swift.min(chunk, g.batch - start)
            for grp in 0..<g.groups {
                // dcol[n, grp] [rows, plane] = W[grp]ᵀ [rows, outPerGroup] · g[n, grp] [outPerGroup, plane]
                p.batchedGemm(
                    transA: true, transB: false, m: rows, n: plane, k: outPerGroup,
                    a: weight.pointer + grp * outPerGroup * rows, lda: rows, strideA: 0,
                    b: gradient.pointer + start * outImage + grp * outPerGroup * plane, ldb: plane,
                    strideB: outImage, beta: 0,
                    c: columns.pointer + grp * rows * plane, ldc: plane, strideC: colImage, batch: count)
            }
            // Overwrites the chunk's images of dx: no zeroing needed.
            p.col2im(columns.pointer, window: g.window.c, images: count, dx.pointer + start * inImage)
            start += count
        }
        withExtendedLifetime(columns) {}
        return dx
    }

    func conv2dBackwardWeight(_ gradient: Storage, input x: Storage, geometry g: Conv2DGeometry) -> Storage {
        let weightCount = ShapeMath.count(g.weightShape)
        let dw = p.alloc(weightCount)
        let l = g.layout
        let (plane, rows, outPerGroup) = (l.plane, l.rows, l.outPerGroup)
        let (inImage, outImage, groupInput, colImage) = (l.inImage, l.outImage, l.groupInput, l.colImage)
        let pointwise = g.window.isPointwise
        let chunk = chunk(g, perImage: (pointwise ? 0 : colImage) + weightCount)
        let columns = pointwise ? nil : p.alloc(chunk * colImage)
        // One dW partial per image of a chunk, [count, outC, rows]; a chunk of one image
        // writes its partial straight where the chunk's total goes.
        let partials = chunk > 1 ? p.alloc(chunk * weightCount) : nil
        let chunkTotal = g.batch > chunk ? p.alloc(weightCount) : nil
        var start = 0
        while start < g.batch {
            let count = Swift.min(chunk, g.batch - start)
            if let columns { p.im2col(x.pointer + start * inImage, window: g.window.c, images: count, columns.pointer) }
            // The first chunk's total is dw itself; later ones go to chunkTotal, then into dw.
            let total = start == 0 ? dw : chunkTotal!
            let target = count > 1 ? partials! : total
            for grp in 0..<g.groups {
                // dW_n[grp] [outPerGroup, rows] = g[n, grp] [outPerGroup, plane] · col[n, grp]ᵀ [plane, rows]
                let col = columns.map { $0.pointer + grp * rows * plane } ?? (x.pointer + start * inImage + grp * groupInput)
                p.batchedGemm(
                    transA: false, transB: true, m: outPerGroup, n: rows, k: plane,
                    a: gradient.pointer + start * outImage + grp * outPerGroup * plane, lda: plane, strideA: outImage,
                    b: col, ldb: plane, strideB: columns == nil ? inImage : colImage, beta: 0,
                    c: target.pointer + grp * outPerGroup * rows, ldc: rows, strideC: weightCount, batch: count)
            }
            if count > 1 { p.sumRows(target.pointer, rows: count, columns: weightCount, total.pointer) }
            if start > 0 { p.addInPlace(dw.pointer, total.pointer, count: weightCount) }
            start += count
        }
        withExtendedLifetime((columns, partials, chunkTotal)) {}
        return dw
    }
}

/// The schedule's primitives on the CPU (tl_sgemm, tl_im2col, ...): for tests of the schedule.
struct HostConvPrimitives: ConvPrimitives {
    func alloc(_ count: Int) -> Storage {
        let s = Storage(count: count)
        s.pointer.update(repeating: .nan, count: count)  // uninitialised, as device memory: reads show up
        return s
    }

    func batchedGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        a: UnsafeMutablePointer<Float>, lda: Int, strideA: Int,
        b: UnsafeMutablePointer<Float>, ldb: Int, strideB: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, batch: Int
    ) {
        for i in 0..<batch {
            let ci = c + i * strideC
            // beta 0 must not read C (it may hold NaN), as in BLAS.
            if beta == 0 { for r in 0..<m { (ci + r * ldc).update(repeating: 0, count: n) } }
            tl_sgemm(
                transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1, a + i * strideA, Int32(lda),
                b + i * strideB, Int32(ldb), beta == 0 ? 0 : beta, ci, Int32(ldc))
        }
    }

    func im2col(_ x: UnsafeMutablePointer<Float>, window: tl_window2d, images: Int, _ col: UnsafeMutablePointer<Float>) {
        var w = window
        let inImage = Int(w.channels * w.height * w.width)
        let colImage = Int(w.channels * w.kernel_h * w.kernel_w * w.out_h * w.out_w)
        for i in 0..<images { tl_im2col(x + i * inImage, &w, col + i * colImage) }
    }

    func col2im(_ col: UnsafeMutablePointer<Float>, window: tl_window2d, images: Int, _ x: UnsafeMutablePointer<Float>) {
        var w = window
        let inImage = Int(w.channels * w.height * w.width)
        let colImage = Int(w.channels * w.kernel_h * w.kernel_w * w.out_h * w.out_w)
        x.update(repeating: 0, count: images * inImage)
        for i in 0..<images { tl_col2im(col + i * colImage, &w, x + i * inImage) }
    }

    func channelBiasAdd(_ out: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>, batch: Int, channels: Int, plane: Int) {
        for e in 0..<(batch * channels * plane) { out[e] += bias[(e / plane) % channels] }
    }

    func sumRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, _ out: UnsafeMutablePointer<Float>) {
        tl_reduce_mid(0, x, 1, rows, columns, out, nil)
    }

    func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, count: Int) {
        tl_axpy(1, x, y, count)
    }
}
