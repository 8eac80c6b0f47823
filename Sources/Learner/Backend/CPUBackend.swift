import CLearner

/// OpenBLAS for matrix products; C vector loops, split across cores, for everything else.
public struct CPUBackend: Backend {
    public static let shared = CPUBackend()
    public var device: Device { .cpu }

    public func binary(
        _ op: BinaryOp, _ a: Storage, shape aShape: [Int], _ b: Storage, shape bShape: [Int],
        outShape: [Int]
    ) -> Storage {
        KernelProfile.measure(.elementwise) { binaryKernel(op, a, aShape, b, bShape, outShape: outShape) }
    }

    private func binaryKernel(_ op: BinaryOp, _ a: Storage, _ aShape: [Int], _ b: Storage, _ bShape: [Int], outShape: [Int]) -> Storage {
        let n = ShapeMath.count(outShape)
        let out = Storage(count: n)
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        if aShape == bShape, op.rawValue <= BinaryOp.divide.rawValue {
            CPUParallel.forRanges(n) { s, e in
                switch op {
                case .add: tl_add(pa + s, pb + s, po + s, e - s)
                case .subtract: tl_sub(pa + s, pb + s, po + s, e - s)
                case .multiply: tl_mul(pa + s, pb + s, po + s, e - s)
                default: tl_div(pa + s, pb + s, po + s, e - s)
                }
            }
            return out
        }
        // Collapse to [outer, inner] rows and split rows across cores.
        let sa = ShapeMath.broadcastStrides(aShape, to: outShape).map { Int64($0) }
        let sb = ShapeMath.broadcastStrides(bShape, to: outShape).map { Int64($0) }
        let shape64 = outShape.map { Int64($0) }
        if outShape.isEmpty {
            tl_binary_strided(op.rawValue, 0, shape64, pa, sa, pb, sb, po)
            return out
        }
        let inner = outShape[outShape.count - 1]
        let outer = n / max(inner, 1)
        let rank = Int32(outShape.count)
        if outer > 1 && n >= CPUParallel.minimumChunk && outShape.count >= 2 {
            // Split over the first axis: each part is the same strided problem on a slab.
            let first = outShape[0]
            let perFirst = n / first
            CPUParallel.forRanges(first, minimumChunk: max(1, CPUParallel.minimumChunk / max(perFirst, 1))) { s, e in
                var sub = shape64
                sub[0] = Int64(e - s)
                tl_binary_strided(
                    op.rawValue, rank, sub, pa + s * Int(sa[0]), sa, pb + s * Int(sb[0]), sb,
                    po + s * perFirst)
            }
        } else {
            tl_binary_strided(op.rawValue, rank, shape64, pa, sa, pb, sb, po)
        }
        return out
    }

    public func unary(_ op: UnaryOp, _ x: Storage) -> Storage {
        let out = Storage(count: x.count)
        let px = x.pointer, po = out.pointer
        KernelProfile.measure(.elementwise) { CPUParallel.forRanges(x.count) { s, e in tl_unary(op.rawValue, px + s, po + s, e - s) } }
        return out
    }

    public func unaryBackward(_ op: UnaryOp, x: Storage?, y: Storage?, gradient: Storage) -> Storage {
        let out = Storage(count: gradient.count)
        let px = x?.pointer, py = y?.pointer, pg = gradient.pointer, po = out.pointer
        KernelProfile.measure(.elementwise) {
            CPUParallel.forRanges(gradient.count) { s, e in
                tl_unary_backward(op.rawValue, px.map { $0 + s }, py.map { $0 + s }, pg + s, po + s, e - s)
            }
        }
        return out
    }

    public func affine(_ x: Storage, scale: Float, shift: Float) -> Storage {
        let out = Storage(count: x.count)
        let px = x.pointer, po = out.pointer
        KernelProfile.measure(.elementwise) { CPUParallel.forRanges(x.count) { s, e in tl_affine(px + s, scale, shift, po + s, e - s) } }
        return out
    }

    public func pow(_ x: Storage, _ exponent: Float) -> Storage {
        let out = Storage(count: x.count)
        let px = x.pointer, po = out.pointer
        CPUParallel.forRanges(x.count) { s, e in tl_pow_scalar(px + s, exponent, po + s, e - s) }
        return out
    }

    public func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: Storage, b: Storage, into c: Storage,
        accumulate: Bool
    ) {
        KernelProfile.gemm(.denseGemm, m: m, n: n, k: k) {
            CPUGemm.sgemm(
                transA, transB, m: m, n: n, k: k, a.pointer, lda: transA ? m : k, b.pointer, ldb: transB ? k : n,
                beta: accumulate ? 1 : 0, c.pointer, ldc: n)
        }
    }

    public func gemmBatched(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, batch: Int, a: Storage, b: Storage, into c: Storage,
        accumulate: Bool
    ) {
        KernelProfile.gemm(.denseGemm, m: m * batch, n: n, k: k) {
            CPUGemm.sgemmBatched(transA, transB, m: m, n: n, k: k, batch: batch, a.pointer, b.pointer, beta: accumulate ? 1 : 0, c.pointer)
        }
    }

    public func reduce(sum: Bool, _ x: Storage, outer: Int, mid: Int, inner: Int) -> (Storage, [Int32]?) {
        let out = Storage(count: outer * inner)
        if sum {
            KernelProfile.measure(.reduction) { tl_reduce_mid(0, x.pointer, outer, mid, inner, out.pointer, nil) }
            return (out, nil)
        }
        var idx = [Int32](repeating: 0, count: outer * inner)
        idx.withUnsafeMutableBufferPointer { tl_reduce_mid(1, x.pointer, outer, mid, inner, out.pointer, $0.baseAddress) }
        return (out, idx)
    }

    public func softmax(_ x: Storage, rows: Int, columns: Int, log: Bool) -> Storage {
        let out = Storage(count: x.count)
        let px = x.pointer, po = out.pointer
        CPUParallel.forRanges(rows, minimumChunk: max(1, CPUParallel.minimumChunk / max(columns, 1))) { s, e in
            tl_softmax_rows(px + s * columns, po + s * columns, e - s, columns, log ? 1 : 0)
        }
        return out
    }

    public func permute(_ x: Storage, shape: [Int], permutation: [Int]) -> Storage {
        let strides = ShapeMath.strides(shape)
        let outShape = permutation.map { Int64(shape[$0]) }
        let permStrides = permutation.map { Int64(strides[$0]) }
        let out = Storage(count: x.count)
        KernelProfile.measure(.copy) { tl_permute(Int32(shape.count), outShape, x.pointer, permStrides, out.pointer) }
        return out
    }

    public func sumAll(_ x: Storage) -> Float { Float(tl_sum(x.pointer, x.count)) }

    public func gatherRows(_ x: Storage, rowSize: Int, indices: [Int32]) -> Storage {
        let out = Storage(count: indices.count * rowSize)
        for (i, r) in indices.enumerated() {
            (out.pointer + i * rowSize).update(from: x.pointer + Int(r) * rowSize, count: rowSize)
        }
        return out
    }

    public func scatterAddRows(_ g: Storage, rowSize: Int, indices: [Int32], rows: Int) -> Storage {
        let out = Storage(zeros: rows * rowSize)
        for (i, r) in indices.enumerated() {
            tl_axpy(1, g.pointer + i * rowSize, out.pointer + Int(r) * rowSize, rowSize)
        }
        return out
    }
}
