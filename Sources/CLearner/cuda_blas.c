// cuBLAS: row-major sgemm and strided-batched sgemm on the current device's stream, FP32 math
// unless TF32 is allowed.
#include "cuda_internal.h"


static int tf32_enabled; // global switch read at each sgemm

int tl_cuda_set_tf32(int enabled) {
    __atomic_store_n(&tf32_enabled, enabled ? 1 : 0, __ATOMIC_RELAXED);
    return TL_CUDA_OK;
}

// The device's cuBLAS handle on its stream, with the math mode asked for.
static int ensure_cublas(tl_cuda_device *d) {
    int s = tl_cuda_ensure_cublas();
    if (s) return s;
    pthread_mutex_lock(&d->lock);
    if (!d->cublas) {
        cublasHandle_t h = NULL;
        s = TL_CUBLAS(tl_cublas.cublasCreate(&h));
        if (!s) s = TL_CUBLAS(tl_cublas.cublasSetStream(h, d->stream));
        // FP32 math: no TF32 tensor cores unless asked (tl_cuda_set_tf32).
        if (!s) s = TL_CUBLAS(tl_cublas.cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
        if (!s) {
            d->cublas = h;
            d->cublas_tf32 = 0;
        } else if (h) {
            tl_cublas.cublasDestroy(h);
        }
    }
    int want = __atomic_load_n(&tf32_enabled, __ATOMIC_RELAXED);
    if (!s && want != d->cublas_tf32) {
        s = TL_CUBLAS(tl_cublas.cublasSetMathMode(d->cublas, want ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
        if (!s) d->cublas_tf32 = want;
    }
    pthread_mutex_unlock(&d->lock);
    return s;
}

int tl_cuda_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    if (M < 0 || N < 0 || K < 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_sgemm: negative size");
    // Row-major leading dimensions, as BLAS checks them.
    int rowsA = transA ? K : M, colsA = transA ? M : K;
    int colsB = transB ? K : N;
    (void)rowsA;
    if (lda < (colsA > 1 ? colsA : 1) || ldb < (colsB > 1 ? colsB : 1) || ldc < (N > 1 ? N : 1))
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_sgemm: leading dimension too small (lda=%d ldb=%d ldc=%d)",
                            lda, ldb, ldc);
    if (M == 0 || N == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    int s = ensure_cublas(d);
    if (s) return s;
    // A row-major matrix X with leading dimension ld is the column-major X^T with the same ld.
    // So row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands
    // and the M/N sizes, keep each operand's transpose flag.
    cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    int timed = tl_profile_begin(d);
    int st = TL_CUBLAS(tl_cublas.cublasSgemm(d->cublas, opB, opA, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
    if (timed) tl_profile_end(d, TLP_SGEMM);
    return st;
}

int tl_cuda_sgemm_strided_batched(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                                  int lda, long long strideA, const float *B, int ldb, long long strideB,
                                  float beta, float *C, int ldc, long long strideC, int batch) {
    if (batch < 0 || M < 0 || N < 0 || K < 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_sgemm_strided_batched: negative size");
    int colsA = transA ? M : K, colsB = transB ? K : N;
    if (lda < (colsA > 1 ? colsA : 1) || ldb < (colsB > 1 ? colsB : 1) || ldc < (N > 1 ? N : 1))
        return tl_cuda_fail(TL_CUDA_ERR_INVALID,
                            "tl_cuda_sgemm_strided_batched: leading dimension too small (lda=%d ldb=%d ldc=%d)", lda, ldb, ldc);
    if (batch == 0 || M == 0 || N == 0) return TL_CUDA_OK;
    if (batch == 1) return tl_cuda_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    TL_DEVICE(d);
    int s = ensure_cublas(d);
    if (s) return s;
    if (!tl_cublas.cublasSgemmStridedBatched) {
        for (int b = 0; b < batch && !s; b++)
            s = tl_cuda_sgemm(transA, transB, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
                              C + b * strideC, ldc);
        return s;
    }
    // Row-major to column-major as in tl_cuda_sgemm: swap the operands and M/N.
    cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    int timed = tl_profile_begin(d);
    int st = TL_CUBLAS(tl_cublas.cublasSgemmStridedBatched(d->cublas, opB, opA, N, M, K, &alpha, B, ldb, strideB, A,
                                                           lda, strideA, &beta, C, ldc, strideC, batch));
    if (timed) tl_profile_end(d, TLP_SGEMM_BATCHED);
    return st;
}

// Checks a window the way Window2D builds it: positive sizes, an output that fits.

