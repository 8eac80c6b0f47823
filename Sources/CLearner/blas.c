// OpenBLAS entry points. The prototypes are declared here rather than taken from <cblas.h>
// because Debian installs that header under a multiarch/alternatives path that a SwiftPM
// target cannot add without unsafeFlags; the ABI of cblas_sgemm is fixed by the CBLAS standard.
#include "clearner.h"

enum { CblasRowMajor = 101 };
enum { CblasNoTrans = 111, CblasTrans = 112 };

extern void cblas_sgemm(int order, int transA, int transB, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);

void tl_sgemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void tl_blas_set_threads(int n) { openblas_set_num_threads(n); }
int tl_blas_get_threads(void) { return openblas_get_num_threads(); }
