// The build with TL_FORCE_NO_CUDA: every entry point that needs a toolkit type
// reports TL_CUDA_ERR_NOT_BUILT (the loader's and the allocator's are in cuda_loader.c and
// cuda_alloc.c). The op launchers need none of these stubs: they are compiled in both builds
// and fail at their launch (tl_cuda_launch*, below).
#include "cuda_internal.h"

#if !TL_CUDA_ENABLED

// Said while building, so that a CPU-only build is never a surprise.
#pragma message("tefla: the CUDA layer is not compiled in (TL_FORCE_NO_CUDA is defined)")

#define TL_NOT_BUILT return tl_cuda_fail(TL_CUDA_ERR_NOT_BUILT, TL_NOT_BUILT_MSG)

// Entry points with nothing to report but the status, each with its parameter list.
#define TL_NOT_BUILT_ENTRY_POINTS(X)                                                                                  \
    X(tl_cuda_launch, (int kernel, unsigned gx, unsigned gy, unsigned bx, unsigned by, void **args))                 \
    X(tl_cuda_launch_items, (int kernel, unsigned long long work, void **args))                                      \
    X(tl_cuda_launch_rows, (int kernel, size_t rows, size_t cols, void **args))                                      \
    X(tl_cuda_memcpy_htod, (void *dst, const void *src, size_t bytes))                                               \
    X(tl_cuda_memcpy_dtoh, (void *dst, const void *src, size_t bytes))                                               \
    X(tl_cuda_memcpy_dtod, (void *dst, const void *src, size_t bytes))                                               \
    X(tl_cuda_synchronize, (void))                                                                                   \
    X(tl_cuda_timer_start, (void))                                                                                   \
    X(tl_cuda_set_tf32, (int enabled))                                                                               \
    X(tl_cuda_profile, (int on))                                                                                     \
    X(tl_cuda_sgemm, (int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,            \
                      const float *B, int ldb, float beta, float *C, int ldc))                                       \
    X(tl_cuda_sgemm_strided_batched,                                                                                 \
      (int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, long long strideA,        \
       const float *B, int ldb, long long strideB, float beta, float *C, int ldc, long long strideC, int batch))

#define TL_NOT_BUILT_DEFINE(name, params) \
    int name params { TL_NOT_BUILT; }
TL_NOT_BUILT_ENTRY_POINTS(TL_NOT_BUILT_DEFINE)
#undef TL_NOT_BUILT_DEFINE

int tl_cuda_profile_slots(void) { return 0; }
const char *tl_cuda_profile_name(int slot) {
    (void)slot;
    return "";
}

// Entry points with outputs, which are cleared so that a caller never reads garbage.
int tl_cuda_profile_read(int slot, double *ms, long long *calls) {
    (void)slot;
    if (ms) *ms = 0;
    if (calls) *calls = 0;
    TL_NOT_BUILT;
}

int tl_cuda_timer_stop(float *ms) {
    if (ms) *ms = 0;
    TL_NOT_BUILT;
}

int tl_cuda_compile_check(const char *arch, char *log, size_t loglen) {
    (void)arch;
    tl_cuda_copy_message(log, loglen, TL_NOT_BUILT_MSG);
    TL_NOT_BUILT;
}

int tl_cuda_prepare_kernels(int *cache_hit, double *millis, char *path, size_t pathlen) {
    if (cache_hit) *cache_hit = 0;
    if (millis) *millis = 0;
    tl_cuda_copy_message(path, pathlen, "");
    TL_NOT_BUILT;
}

int tl_cuda_kernel_cache_dir(char *buf, size_t len) {
    tl_cuda_copy_message(buf, len, "");
    TL_NOT_BUILT;
}

#endif // !TL_CUDA_ENABLED
