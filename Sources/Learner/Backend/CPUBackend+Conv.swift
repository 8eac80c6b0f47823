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

    public func conv2d(_ x: Storage, weight: Storage, bias: Storage?, geometry g: Conv2DGeometry) -> Storage {
        let out = Storage(count: ShapeMath.count(g.outputShape))
        let plane = g.window.outputPlane, rows = g.window.columnRows / g.groups
        let outPerGroup = g.outChannels / g.groups
        let inImage = g.window.channels * g.window.inputPlane, outImage = g.outChannels * plane
        let groupInput = g.window.channels / g.groups * g.window.inputPlane
        if let bias {
            for n in 0..<g.batch {
                for o in 0..<g.outChannels { (out.pointer + n * outImage + o * plane).update(repeating: bias.pointer[o], count: plane) }
            }
        }
        let beta: Float = bias == nil ? 0 : 1
        let window = g.window.c
        let pointwise = g.window.isPointwise
        let chunk = chunkSize(g)
        let columns = pointwise ? nil : Storage(count: chunk * g.window.columnRows * plane)
        let colImage = g.window.columnRows * plane
        var start = 0
        while start < g.batch {
            let count = Swift.min(chunk, g.batch - start)
            if let columns {
                eachImage(count, g) { i in
                    var w = window
                    tl_im2col(x.pointer + (start + i) * inImage, &w, columns.pointer + i * colImage)
                }
            }
            for i in 0..<count {
                let n = start + i
                for grp in 0..<g.groups {
                    // y[n, group] [outPerGroup, plane] = W[group] [outPerGroup, rows] · col[group] [rows, plane]
                    let col: UnsafePointer<Float> = columns.map { UnsafePointer($0.pointer + i * colImage + grp * rows * plane) }
                        ?? UnsafePointer(x.pointer + n * inImage + grp * groupInput)
                    tl_sgemm(0, 0, Int32(outPerGroup), Int32(plane), Int32(rows), 1,
                             weight.pointer + grp * outPerGroup * rows, Int32(rows), col, Int32(plane),
                             beta, out.pointer + n * outImage + grp * outPerGroup * plane, Int32(plane))
                }
            }
            start += count
        }
        return out
    }

    public func conv2dBackwardInput(_ gradient: Storage, weight: Storage, geometry g: Conv2DGeometry) -> Storage {
        let dx = Storage(count: ShapeMath.count(g.inputShape))
        let plane = g.window.outputPlane, rows = g.window.columnRows / g.groups
        let outPerGroup = g.outChannels / g.groups
        let inImage = g.window.channels * g.window.inputPlane, outImage = g.outChannels * plane
        let groupInput = g.window.channels / g.groups * g.window.inputPlane
        let window = g.window.c
        let pointwise = g.window.isPointwise
        let chunk = chunkSize(g)
        let columns = pointwise ? nil : Storage(count: chunk * g.window.columnRows * plane)
        let colImage = g.window.columnRows * plane
        var start = 0
        while start < g.batch {
            let count = Swift.min(chunk, g.batch - start)
            for i in 0..<count {
                let n = start + i
                for grp in 0..<g.groups {
                    // dcol[group] [rows, plane] = W[group]ᵀ [rows, outPerGroup] · g[n, group] [outPerGroup, plane]
                    let dcol = columns.map { $0.pointer + i * colImage + grp * rows * plane } ?? (dx.pointer + n * inImage + grp * groupInput)
                    tl_sgemm(1, 0, Int32(rows), Int32(plane), Int32(outPerGroup), 1,
                             weight.pointer + grp * outPerGroup * rows, Int32(rows),
                             gradient.pointer + n * outImage + grp * outPerGroup * plane, Int32(plane), 0, dcol, Int32(plane))
                }
            }
            if let columns {
                eachImage(count, g) { i in
                    var w = window
                    let image = dx.pointer + (start + i) * inImage
                    image.update(repeating: 0, count: inImage)
                    tl_col2im(columns.pointer + i * colImage, &w, image)
                }
            }
            start += count
        }
        return dx
    }

    public func conv2dBackwardWeight(_ gradient: Storage, input x: Storage, geometry g: Conv2DGeometry) -> Storage {
        let dw = Storage(zeros: ShapeMath.count(g.weightShape))
        let plane = g.window.outputPlane, rows = g.window.columnRows / g.groups
        let outPerGroup = g.outChannels / g.groups
        let inImage = g.window.channels * g.window.inputPlane, outImage = g.outChannels * plane
        let groupInput = g.window.channels / g.groups * g.window.inputPlane
        let window = g.window.c
        let pointwise = g.window.isPointwise
        let chunk = chunkSize(g)
        let columns = pointwise ? nil : Storage(count: chunk * g.window.columnRows * plane)
        let colImage = g.window.columnRows * plane
        var start = 0
        while start < g.batch {
            let count = Swift.min(chunk, g.batch - start)
            if let columns {
                eachImage(count, g) { i in
                    var w = window
                    tl_im2col(x.pointer + (start + i) * inImage, &w, columns.pointer + i * colImage)
                }
            }
            for i in 0..<count {
                let n = start + i
                for grp in 0..<g.groups {
                    // dW[group] [outPerGroup, rows] += g[n, group] [outPerGroup, plane] · col[group]ᵀ [plane, rows]
                    let col: UnsafePointer<Float> = columns.map { UnsafePointer($0.pointer + i * colImage + grp * rows * plane) }
                        ?? UnsafePointer(x.pointer + n * inImage + grp * groupInput)
                    tl_sgemm(0, 1, Int32(outPerGroup), Int32(rows), Int32(plane), 1,
                             gradient.pointer + n * outImage + grp * outPerGroup * plane, Int32(plane), col, Int32(plane),
                             1, dw.pointer + grp * outPerGroup * rows, Int32(rows))
                }
            }
            start += count
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
