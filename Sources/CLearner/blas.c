// OpenBLAS entry points. The prototypes are declared here rather than taken from <cblas.h>
// because Debian installs that header under a multiarch/alternatives path that a SwiftPM
// target cannot add without unsafeFlags; the ABI of cblas_sgemm is fixed by the CBLAS standard.
#include "clearner.h"

enum { CblasRowMajor = 101 };
enum { CblasNoTrans = 111, CblasTrans = 112 };

extern void cblas_sgemm(int order, int transA, int transB, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
extern void openblas_set_num_threads(int n);

// ---------------------------------------------------------------- core selection
// A DYNAMIC_ARCH OpenBLAS picks its kernels from the CPU model when it loads, and an OpenBLAS
// older than the CPU does not know the model: Debian 12's 0.3.21 on a 5th-generation Xeon
// (family 6, model 207) falls back to its baseline "Prescott" SSE3 kernels and sgemm runs at a
// fifth of the AVX-512 speed (41 against 200 GFLOP/s on two cores). When that fallback was
// taken, the user set no OPENBLAS_CORETYPE, and the CPU has the instructions of a newer core
// type, the library is re-initialised once for that type, through the same entry points that
// honour OPENBLAS_CORETYPE at load time. The symbols are weak: an OpenBLAS built for one
// target (no DYNAMIC_ARCH) has neither and is left as it is.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char *openblas_get_corename(void) __attribute__((weak));
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

static const char *better_core(void) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    if (__builtin_cpu_supports("avx")) return "SandyBridge";
#endif
    return NULL;
}

static void select_core(void) {
    if (!openblas_get_corename || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
    if (getenv("OPENBLAS_CORETYPE")) return; // the user's choice stands
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott") != 0) return;
    const char *want = better_core();
    if (!want) return;
    // setenv moves `environ` to a heap copy; a program linked with the static Swift runtime
    // finds its argv by walking back from the original `environ` on the stack, so the original
    // pointer is put back afterwards (the variable is gone by then, as before the call).
    extern char **environ;
    char **original_environ = environ;
    setenv("OPENBLAS_CORETYPE", want, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
    environ = original_environ;
}

static pthread_once_t core_once = PTHREAD_ONCE_INIT;

// Runs when the program (or the library holding this shim) loads, after OpenBLAS's own
// initialisation, before any BLAS call; tl_blas_core_name() also calls it, through the once.
// OpenBLAS is kept single-threaded: the engine splits sgemms over its own worker pool (pool.c).
__attribute__((constructor)) static void tl_blas_select_core_at_load(void) {
    pthread_once(&core_once, select_core);
    openblas_set_num_threads(1);
}

const char *tl_blas_core_name(void) {
    pthread_once(&core_once, select_core);
    return openblas_get_corename ? openblas_get_corename() : "unknown";
}

void tl_sgemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

