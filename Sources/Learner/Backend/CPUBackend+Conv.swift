import CLearner
import Foundation

/// The CPU's convolution, pooling and batch-normalisation kernels.
///
/// Convolutions run as im2col + OpenBLAS sgemm (Chellapilla et al. 2006): NCHW activations
/// make one image's column matrix [C·kH·kW, OH·OW] the right operand of a row-major sgemm
/// whose result is already that image's NCHW output. Images go in chunks of one per core:
/// the chunk's im2col/col2im run in parallel (CPUParallel.forItems), the sgemms one after the
/// other with OpenBLAS's own threads. One column buffer per call, reused for every chunk; a
/// pointwise convolution (1×1, stride 1, no padding) needs none, the image being its own
/// column matrix.
extension CPUBackend {
    /// Images per chunk: one per core, so that a chunk's im2col/col2im keep every core busy.
    private func chunkSize(_ g: Conv2DGeometry) -> Int { Swift.min(g.batch, Swift.max(CPUParallel.threadCount, 1)) }

    /// Runs `body(i)` for the `count` images of a chunk, split across cores when worth it.
    private func eachImage(_ count: Int, _ g: Conv2DGeometry, _ body: (Int) -> Void) {
        CPUParallel.forItems(count, itemSize: g.window.columnRows * g.window.outputPlane, minimumChunk: 1 << 13) { s, e in
            for i in s..<e { body(i) }
        }
    }

    /// The column buffer of one chunk of images, or nil for a pointwise convolution.
    private func columnBuffer(_ g: Conv2DGeometry) -> Storage? {
        g.window.isPointwise ? nil : Storage(count: chunkSize(g) * g.layout.colImage)
    }

    /// Calls `body(n, group, columns)` for every image and group with that group's column
    /// matrix [rows, plane] of the input: im2col'ed per chunk of images (in parallel), or the
    /// image itself for a pointwise convolution. The forward pass and the weight gradient.
    private func forEachInputColumns(_ x: Storage, _ g: Conv2DGeometry, _ body: (Int, Int, UnsafePointer<Float>) -> Void) {
        let l = g.layout, chunk = chunkSize(g)
        let window = g.window.c
        let columns = columnBuffer(g)
        var start = 0
        while start < g.batch {
            let count = Swift.min(chunk, g.batch - start)
            if let columns {
                eachImage(count, g) { i in
                    var w = window
                    tl_im2col(x.pointer + (start + i) * l.inImage, &w, columns.pointer + i * l.colImage)
                }
            }
            for i in 0..<count {
                let n = start + i
                for grp in 0..<g.groups {
                    let col: UnsafePointer<Float> = columns.map { UnsafePointer($0.pointer + i * l.colImage + grp * l.rows * l.plane) }
                        ?? UnsafePointer(x.pointer + n * l.inImage + grp * l.groupInput)
                    body(n, grp, col)
                }
            }
            start += count
        }
    }

    public func conv2d(_ x: Storage, weight: Storage, bias: Storage?, geometry g: Conv2DGeometry) -> Storage {
        let out = Storage(count: ShapeMath.count(g.outputShape))
        let l = g.layout
        if let bias {
            for n in 0..<g.batch {
                for o in 0..<g.outChannels { (out.pointer + n * l.outImage + o * l.plane).update(repeating: bias.pointer[o], count: l.plane) }
            }
        }
        let beta: Float = bias == nil ? 0 : 1
        forEachInputColumns(x, g) { n, grp, col in
            // y[n, group] [outPerGroup, plane] = W[group] [outPerGroup, rows] · col[group] [rows, plane]
            tl_sgemm(0, 0, Int32(l.outPerGroup), Int32(l.plane), Int32(l.rows), 1,
                     weight.pointer + grp * l.outPerGroup * l.rows, Int32(l.rows), col, Int32(l.plane),
                     beta, out.pointer + n * l.outImage + grp * l.outPerGroup * l.plane, Int32(l.plane))
        }
        return out
    }

    public func conv2dBackwardInput(_ gradient: Storage, weight: Storage, geometry g: Conv2DGeometry) -> Storage {
        let dx = Storage(count: ShapeMath.count(g.inputShape))
        let l = g.layout
        let window = g.window.c, chunk = chunkSize(g)
        let columns = columnBuffer(g)
        var start = 0
        while start < g.batch {
            let count = Swift.min(chunk, g.batch - start)
            for i in 0..<count {
                let n = start + i
                for grp in 0..<g.groups {
                    // dcol[group] [rows, plane] = W[group]ᵀ [rows, outPerGroup] · g[n, group] [outPerGroup, plane]
                    let dcol = columns.map { $0.pointer + i * l.colImage + grp * l.rows * l.plane }
                        ?? (dx.pointer + n * l.inImage + grp * l.groupInput)
                    tl_sgemm(1, 0, Int32(l.rows), Int32(l.plane), Int32(l.outPerGroup), 1,
                             weight.pointer + grp * l.outPerGroup * l.rows, Int32(l.rows),
                             gradient.pointer + n * l.outImage + grp * l.outPerGroup * l.plane, Int32(l.plane), 0, dcol, Int32(l.plane))
                }
            }
            if let columns {
                eachImage(count, g) { i in
                    var w = window
                    let image = dx.pointer + (start + i) * l.inImage
                    image.update(repeating: 0, count: l.inImage)
                    tl_col2im(columns.pointer + i * l.colImage, &w, image)
                }
            }
            start += count
        }
        return dx
    }

    public func conv2dBackwardWeight(_ gradient: Storage, input x: Storage, geometry g: Conv2DGeometry) -> Storage {
        let dw = Storage(zeros: ShapeMath.count(g.weightShape))
        let l = g.layout
        forEachInputColumns(x, g) { n, grp, col in
            // dW[group] [outPerGroup, rows] += g[n, group] [outPerGroup, plane] · col[group]ᵀ [plane, rows]
            tl_sgemm(0, 1, Int32(l.outPerGroup), Int32(l.rows), Int32(l.plane), 1,
                     gradient.pointer + n * l.outImage + grp * l.outPerGroup * l.plane, Int32(l.plane), col, Int32(l.plane),
                     1, dw.pointer + grp * l.outPerGroup * l.rows, Int32(l.rows))
        }
        return dw
    }

    /// Splits `planes` planes (or channels) of `perPlane` elements into ranges across cores.
    private func forPlanes(_ planes: Int, perPlane: Int, _ body: (Int, Int) -> Void) {
        CPUParallel.forItems(planes, itemSize: perPlane, body)
    }

    public func maxPool2d(_ x: Storage, window: Window2D, planes: Int) -> (output: Storage, argmax: Storage) {
        let out = Storage(count: planes * window.outputPlane), idx = Storage(count: planes * window.outputPlane)
        let inPlane = window.inputPlane, outPlane = window.outputPlane
        forPlanes(planes, perPlane: inPlane) { s, e in
            var w = window.c
            tl_maxpool2d_forward(x.pointer + s * inPlane, &w, e - s, out.pointer + s * outPlane, idx.pointer + s * outPlane)
        }
        return (out, idx)
    }

    public func maxPool2dBackward(_ gradient: Storage, argmax: Storage, window: Window2D, planes: Int) -> Storage {
        let dx = Storage(count: planes * window.inputPlane)
        let inPlane = window.inputPlane, outPlane = window.outputPlane
        forPlanes(planes, perPlane: inPlane) { s, e in
            var w = window.c
            tl_maxpool2d_backward(gradient.pointer + s * outPlane, argmax.pointer + s * outPlane, &w, e - s, dx.pointer + s * inPlane)
        }
        return dx
    }

    public func avgPool2d(_ x: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage {
        let out = Storage(count: planes * window.outputPlane)
        let inPlane = window.inputPlane, outPlane = window.outputPlane
        forPlanes(planes, perPlane: inPlane) { s, e in
            var w = window.c
            tl_avgpool2d_forward(x.pointer + s * inPlane, &w, e - s, countIncludePad ? 1 : 0, out.pointer + s * outPlane)
        }
        return out
    }

    public func avgPool2dBackward(_ gradient: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage {
        let dx = Storage(count: planes * window.inputPlane)
        let inPlane = window.inputPlane, outPlane = window.outputPlane
        forPlanes(planes, perPlane: inPlane) { s, e in
            var w = window.c
            tl_avgpool2d_backward(gradient.pointer + s * outPlane, &w, e - s, countIncludePad ? 1 : 0, dx.pointer + s * inPlane)
        }
        return dx
    }

    public func batchNormStatistics(_ x: Storage, batch: Int, channels: Int, spatial: Int) -> (mean: Storage, variance: Storage) {
        let mean = Storage(count: channels), variance = Storage(count: channels)
        forPlanes(channels, perPlane: batch * spatial) { s, e in
            tl_batchnorm_stats(x.pointer, batch, channels, spatial, s, e, mean.pointer, variance.pointer)
        }
        return (mean, variance)
    }

    public func batchNorm(_ x: Storage, mean: Storage, variance: Storage, weight: Storage, bias: Storage, epsilon: Float,
                          batch: Int, channels: Int, spatial: Int) -> Storage {
        let y = Storage(count: x.count)
        forPlanes(channels, perPlane: batch * spatial) { s, e in
            tl_batchnorm_forward(x.pointer, batch, channels, spatial, s, e, mean.pointer, variance.pointer, epsilon,
                                 weight.pointer, bias.pointer, y.pointer)
        }
        return y
    }

    public func batchNormBackward(_ gradient: Storage, input: Storage, mean: Storage, variance: Storage, weight: Storage,
                                  epsilon: Float, batchStatistics: Bool, batch: Int, channels: Int, spatial: Int)
        -> (input: Storage, weight: Storage, bias: Storage) {
        let dx = Storage(count: input.count), dw = Storage(count: channels), db = Storage(count: channels)
        forPlanes(channels, perPlane: batch * spatial) { s, e in
            tl_batchnorm_backward(gradient.pointer, input.pointer, batch, channels, spatial, s, e, mean.pointer, variance.pointer,
                                  epsilon, weight.pointer, batchStatistics ? 1 : 0, dx.pointer, dw.pointer, db.pointer)
        }
        return (dx, dw, db)
    }
}
