import CLearner

/// The CPU's sgemm: OpenBLAS, single-threaded, called once per core on a slice of the product.
///
/// OpenBLAS's own threads spin for ~0.1 s after every call, so on a machine of few cores the
/// element-wise, im2col and batch-norm passes between two sgemms ran beside a spinning BLAS
/// thread. With the slices on the engine's one pool (pool.c) nothing spins but the pool itself:
/// ResNet-18 training took 7.9 % less time a step, the small CNN 19 % (Benchmarks/RESULTS.md).
public enum CPUGemm {
    /// Below this many multiply-adds a product runs whole on the calling thread.
    static let parallelThreshold = 1 << 20

    /// Row-major C[m, n] = op(A)·op(B) + beta·C, split over the rows of C when it has more rows
    /// than columns, else over its columns: each slice packs its own part of the operand it cuts
    /// and the whole of the other, so cutting the larger side duplicates the less packing.
    public static func sgemm(
        _ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int,
        _ b: UnsafePointer<Float>, ldb: Int, beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let byRows = m > n, side = byRows ? m : n
        // At least 32 rows or columns a slice: a narrower one leaves the micro-kernels idle.
        let slices = Swift.min(CPUParallel.threadCount, side / 32)
        if slices <= 1 || m * n * k < parallelThreshold {
            call(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let chunk = ((side + slices - 1) / slices + 15) & ~15
        CPUParallel.perform(slices) { s in
            let start = s * chunk, end = Swift.min(side, start + chunk)
            guard start < end else { return }
            if byRows {
                call(transA, transB, end - start, n, k, a + (transA ? start : start * lda), lda, b, ldb, beta, c + start * ldc, ldc)
            } else {
                call(transA, transB, m, end - start, k, a, lda, b + (transB ? start * ldb : start), ldb, beta, c + start, ldc)
            }
        }
    }

    /// `batch` products C_i = op(A_i)·op(B_i) + beta·C_i of matrices stored one after another.
    /// Many small products run one per core, each single-threaded (attention's per-head
    /// scores); large ones run one after another, each split over the cores.
    public static func sgemmBatched(
        _ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int, batch: Int, _ a: UnsafePointer<Float>,
        _ b: UnsafePointer<Float>, beta: Float, _ c: UnsafeMutablePointer<Float>
    ) {
        let lda = transA ? m : k, ldb = transB ? k : n
        if batch == 1 || m * n * k >= parallelThreshold * 4 {
            for i in 0..<batch {
                sgemm(transA, transB, m: m, n: n, k: k, a + i * m * k, lda: lda, b + i * k * n, ldb: ldb, beta: beta, c + i * m * n, ldc: n)
            }
            return
        }
        let workers = Swift.min(CPUParallel.threadCount, batch)
        CPUParallel.perform(workers) { w in
            for i in stride(from: w, to: batch, by: workers) {
                call(transA, transB, m, n, k, a + i * m * k, lda, b + i * k * n, ldb, beta, c + i * m * n, n)
            }
        }
    }

    @inline(__always)
    private static func call(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
        _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        tl_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
