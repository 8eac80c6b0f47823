// CUDA operations: NVRTC compilation of the embedded kernels with an on-disk cache, kernel
// launches, copies, synchronisation, event timers and cuBLAS sgemm. See clearner_cuda.h.
#define _GNU_SOURCE
#include "cuda_internal.h"
#include "elementwise.h" // tl_unary_backward_reads

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// The kernel source, generated from cuda/kernels.cu by Scripts/embed-kernels.
#include "cuda_kernels.inc"

const char *tl_cuda_kernel_source(void) { return tl_cuda_kernels_source; }

#if !TL_CUDA_ENABLED
// ------------------------------------------------------------------ stubs
#define TL_STUB return tl_cuda_fail(TL_CUDA_ERR_NOT_BUILT, TL_NOT_BUILT_MSG)
int tl_cuda_compile_check(const char *arch, char *log, size_t loglen) {
    (void)arch;
    tl_cuda_copy_message(log, loglen, TL_NOT_BUILT_MSG);
    TL_STUB;
}
int tl_cuda_prepare_kernels(int *cache_hit, double *millis, char *path, size_t pathlen) {
    if (cache_hit) *cache_hit = 0;
    if (millis) *millis = 0;
    tl_cuda_copy_message(path, pathlen, "");
    TL_STUB;
}
int tl_cuda_kernel_cache_dir(char *buf, size_t len) {
    tl_cuda_copy_message(buf, len, "");
    TL_STUB;
}
int tl_cuda_memcpy_htod(void *dst, const void *src, size_t bytes) { (void)dst; (void)src; (void)bytes; TL_STUB; }
int tl_cuda_memcpy_dtoh(void *dst, const void *src, size_t bytes) { (void)dst; (void)src; (void)bytes; TL_STUB; }
int tl_cuda_memcpy_dtod(void *dst, const void *src, size_t bytes) { (void)dst; (void)src; (void)bytes; TL_STUB; }
int tl_cuda_synchronize(void) { TL_STUB; }
int tl_cuda_timer_start(void) { TL_STUB; }
int tl_cuda_timer_stop(float *ms) {
    if (ms) *ms = 0;
    TL_STUB;
}
int tl_cuda_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    (void)transA; (void)transB; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda;
    (void)B; (void)ldb; (void)beta; (void)C; (void)ldc;
    TL_STUB;
}
int tl_cuda_set_tf32(int enabled) { (void)enabled; TL_STUB; }
int tl_cuda_fill(float *out, float value, size_t n) { (void)out; (void)value; (void)n; TL_STUB; }
int tl_cuda_binary(int op, const float *a, size_t an, const float *b, size_t bn, float *out, size_t n) {
    (void)op; (void)a; (void)an; (void)b; (void)bn; (void)out; (void)n;
    TL_STUB;
}
int tl_cuda_unary(int op, const float *x, float *out, size_t n) { (void)op; (void)x; (void)out; (void)n; TL_STUB; }
int tl_cuda_unary_backward(int op, const float *x, const float *y, const float *g, float *out, size_t n) {
    (void)op; (void)x; (void)y; (void)g; (void)out; (void)n;
    TL_STUB;
}
int tl_cuda_affine(const float *x, float s, float t, float *out, size_t n) {
    (void)x; (void)s; (void)t; (void)out; (void)n;
    TL_STUB;
}
int tl_cuda_softmax_rows(const float *x, float *out, size_t rows, size_t cols, int log) {
    (void)x; (void)out; (void)rows; (void)cols; (void)log;
    TL_STUB;
}
int tl_cuda_softmax_xent_forward(const float *logits, const float *labels, float *loss, size_t rows, size_t cols) {
    (void)logits; (void)labels; (void)loss; (void)rows; (void)cols;
    TL_STUB;
}
int tl_cuda_softmax_xent_backward(const float *logits, const float *labels, const float *gloss, float scale,
                                  float *dlogits, size_t rows, size_t cols) {
    (void)logits; (void)labels; (void)gloss; (void)scale; (void)dlogits; (void)rows; (void)cols;
    TL_STUB;
}
int tl_cuda_softmax_xent_smooth_forward(const float *logits, const float *labels, float *loss, size_t rows,
                                        size_t cols, float eps) {
    (void)logits; (void)labels; (void)loss; (void)rows; (void)cols; (void)eps;
    TL_STUB;
}
int tl_cuda_softmax_xent_smooth_backward(const float *logits, const float *labels, const float *gloss, float scale,
                                         float eps, float *dlogits, size_t rows, size_t cols) {
    (void)logits; (void)labels; (void)gloss; (void)scale; (void)eps; (void)dlogits; (void)rows; (void)cols;
    TL_STUB;
}
int tl_cuda_sigmoid_xent(const float *x, const float *t, const float *w, size_t per_row, float *out, size_t n,
                         int backward, float scale) {
    (void)x; (void)t; (void)w; (void)per_row; (void)out; (void)n; (void)backward; (void)scale;
    TL_STUB;
}
int tl_cuda_binary_strided(int op, int rank, const int64_t *shape, const float *a, const int64_t *astride,
                           const float *b, const int64_t *bstride, float *out) {
    (void)op; (void)rank; (void)shape; (void)a; (void)astride; (void)b; (void)bstride; (void)out;
    TL_STUB;
}
int tl_cuda_sum_mid(const float *x, size_t outer, size_t mid, size_t inner, float *out) {
    (void)x; (void)outer; (void)mid; (void)inner; (void)out;
    TL_STUB;
}
int tl_cuda_sum_rows(const float *x, size_t rows, size_t cols, float *out) { (void)x; (void)rows; (void)cols; (void)out; TL_STUB; }
int tl_cuda_sum_cols(const float *x, size_t rows, size_t cols, float *out) { (void)x; (void)rows; (void)cols; (void)out; TL_STUB; }
int tl_cuda_sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum, float dampening,
                       float weight_decay, int nesterov, int first_step) {
    (void)w; (void)g; (void)buf; (void)n; (void)lr; (void)momentum; (void)dampening; (void)weight_decay;
    (void)nesterov; (void)first_step;
    TL_STUB;
}
int tl_cuda_adam_update(float *w, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                        float eps, float weight_decay, int adamw, float bc1, float bc2) {
    (void)w; (void)g; (void)m; (void)v; (void)n; (void)lr; (void)beta1; (void)beta2; (void)eps;
    (void)weight_decay; (void)adamw; (void)bc1; (void)bc2;
    TL_STUB;
}
int tl_cuda_rmsprop_update(float *w, const float *g, float *sq, float *mom, float *gavg, size_t n, float lr,
                           float alpha, float eps, float weight_decay, float momentum, int centered) {
    (void)w; (void)g; (void)sq; (void)mom; (void)gavg; (void)n; (void)lr; (void)alpha; (void)eps;
    (void)weight_decay; (void)momentum; (void)centered;
    TL_STUB;
}
int tl_cuda_dropout_mask(float *out, size_t n, uint64_t key, uint64_t step, float rate, float scale) {
    (void)out; (void)n; (void)key; (void)step; (void)rate; (void)scale;
    TL_STUB;
}
int tl_cuda_gather_rows(const float *x, size_t rows, size_t row, const int32_t *idx, size_t count, float *out) {
    (void)x; (void)rows; (void)row; (void)idx; (void)count; (void)out;
    TL_STUB;
}
int tl_cuda_scatter_add_rows(const float *g, size_t row, const int32_t *idx, size_t count, size_t rows, float *out) {
    (void)g; (void)row; (void)idx; (void)count; (void)rows; (void)out;
    TL_STUB;
}

int tl_cuda_sgemm_strided_batched(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                                  int lda, long long strideA, const float *B, int ldb, long long strideB,
                                  float beta, float *C, int ldc, long long strideC, int batch) {
    (void)transA; (void)transB; (void)M; (void)N; (void)K; (void)alpha; (void)A; (void)lda; (void)strideA;
    (void)B; (void)ldb; (void)strideB; (void)beta; (void)C; (void)ldc; (void)strideC; (void)batch;
    TL_STUB;
}
int tl_cuda_im2col(const float *x, const tl_window2d *w, size_t images, float *col) {
    (void)x; (void)w; (void)images; (void)col;
    TL_STUB;
}
int tl_cuda_col2im(const float *col, const tl_window2d *w, size_t images, float *x) {
    (void)col; (void)w; (void)images; (void)x;
    TL_STUB;
}
int tl_cuda_channel_bias_add(float *out, const float *bias, size_t batch, size_t channels, size_t plane) {
    (void)out; (void)bias; (void)batch; (void)channels; (void)plane;
    TL_STUB;
}
int tl_cuda_maxpool2d_forward(const float *x, const tl_window2d *w, size_t planes, float *out, float *argmax) {
    (void)x; (void)w; (void)planes; (void)out; (void)argmax;
    TL_STUB;
}
int tl_cuda_maxpool2d_backward(const float *g, const float *argmax, const tl_window2d *w, size_t planes, float *dx) {
    (void)g; (void)argmax; (void)w; (void)planes; (void)dx;
    TL_STUB;
}
int tl_cuda_avgpool2d_forward(const float *x, const tl_window2d *w, size_t planes, int include_pad, float *out) {
    (void)x; (void)w; (void)planes; (void)include_pad; (void)out;
    TL_STUB;
}
int tl_cuda_avgpool2d_backward(const float *g, const tl_window2d *w, size_t planes, int include_pad, float *dx) {
    (void)g; (void)w; (void)planes; (void)include_pad; (void)dx;
    TL_STUB;
}
int tl_cuda_batchnorm_stats(const float *x, size_t n, size_t c, size_t s, float *mean, float *var) {
    (void)x; (void)n; (void)c; (void)s; (void)mean; (void)var;
    TL_STUB;
}
int tl_cuda_batchnorm_forward(const float *x, size_t n, size_t c, size_t s, const float *mean, const float *var,
                              float eps, const float *weight, const float *bias, float *y) {
    (void)x; (void)n; (void)c; (void)s; (void)mean; (void)var; (void)eps; (void)weight; (void)bias; (void)y;
    TL_STUB;
}
int tl_cuda_batchnorm_backward(const float *g, const float *x, size_t n, size_t c, size_t s, const float *mean,
                               const float *var, float eps, const float *weight, int batch_stats, float *dx,
                               float *dweight, float *dbias) {
    (void)g; (void)x; (void)n; (void)c; (void)s; (void)mean; (void)var; (void)eps; (void)weight; (void)batch_stats;
    (void)dx; (void)dweight; (void)dbias;
    TL_STUB;
}
int tl_cuda_max_mid(const float *x, size_t outer, size_t mid, size_t inner, float *out, int32_t *idx) {
    (void)x; (void)outer; (void)mid; (void)inner; (void)out; (void)idx;
    TL_STUB;
}
int tl_cuda_permute(int rank, const int64_t *outshape, const float *x, const int64_t *xstride, float *out) {
    (void)rank; (void)outshape; (void)x; (void)xstride; (void)out;
    TL_STUB;
}

#else // TL_CUDA_ENABLED

const char *const tl_cuda_kernel_names[TLK_COUNT] = {
#define TL_K_NAME(name) #name,
    TL_CUDA_KERNELS(TL_K_NAME)
#undef TL_K_NAME
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

// ------------------------------------------------------------------ NVRTC compilation
typedef struct compiled {
    char *image;     // cubin (ELF) or PTX text, malloc'ed
    size_t size;
    int is_cubin;
    char arch[32];   // as passed to NVRTC: sm_90 or compute_90
} compiled;

// Option strings for an arch; `opts` must hold 4 pointers, `archopt` 64 bytes.
static int build_options(const char *arch, char *archopt, const char **opts) {
    snprintf(archopt, 64, "--gpu-architecture=%s", arch);
    opts[0] = archopt;
    opts[1] = "--fmad=true"; // NVRTC's default, stated: contractions stay within the CPU tolerance
    return 2;
}

// Compiles the embedded source for `arch`. On failure the NVRTC log is in the error message and,
// when log != NULL, in log.
static int nvrtc_compile(const char *arch, compiled *out, char *log, size_t loglen) {
    memset(out, 0, sizeof *out);
    tl_cuda_copy_message(log, loglen, "");
    int s = tl_cuda_ensure_nvrtc();
    if (s) return s;
    char archopt[64];
    const char *opts[4];
    int nopts = build_options(arch, archopt, opts);
    nvrtcProgram prog;
    if ((s = TL_NVRTC(tl_nvrtc.nvrtcCreateProgram(&prog, tl_cuda_kernels_source, "tefla_kernels.cu", 0, NULL, NULL))))
        return s;
    nvrtcResult cr = tl_nvrtc.nvrtcCompileProgram(prog, nopts, opts);
    size_t lsize = 0;
    char *plog = NULL;
    if (tl_nvrtc.nvrtcGetProgramLogSize(prog, &lsize) == NVRTC_SUCCESS && lsize > 1 && (plog = malloc(lsize))) {
        if (tl_nvrtc.nvrtcGetProgramLog(prog, plog) != NVRTC_SUCCESS) plog[0] = '\0';
        tl_cuda_copy_message(log, loglen, plog);
    }
    if (cr != NVRTC_SUCCESS) {
        s = tl_cuda_fail(TL_CUDA_ERR_NVRTC, "NVRTC %d.%d could not compile the kernels for %s: %s\n%s",
                         tl_nvrtc_major, tl_nvrtc_minor, arch,
                         tl_nvrtc.nvrtcGetErrorString(cr), plog ? plog : "");
        goto done;
    }
    int want_cubin = strncmp(arch, "sm_", 3) == 0 && tl_nvrtc.nvrtcGetCUBINSize && tl_nvrtc.nvrtcGetCUBIN;
    size_t size = 0;
    if (want_cubin) {
        if ((s = TL_NVRTC(tl_nvrtc.nvrtcGetCUBINSize(prog, &size)))) goto done;
    } else {
        if ((s = TL_NVRTC(tl_nvrtc.nvrtcGetPTXSize(prog, &size)))) goto done;
    }
    out->image = malloc(size ? size : 1);
    if (!out->image) {
        s = tl_cuda_fail(TL_CUDA_ERR_OUT_OF_MEMORY, "host out of memory for the compiled kernels");
        goto done;
    }
    s = want_cubin ? TL_NVRTC(tl_nvrtc.nvrtcGetCUBIN(prog, out->image)) : TL_NVRTC(tl_nvrtc.nvrtcGetPTX(prog, out->image));
    if (s) {
        free(out->image);
        out->image = NULL;
        goto done;
    }
    out->size = size;
    out->is_cubin = want_cubin;
    tl_cuda_copy_message(out->arch, sizeof out->arch, arch);
done:
    free(plog);
    tl_nvrtc.nvrtcDestroyProgram(&prog);
    return s;
}

// The NVRTC target for a device of compute capability cc (e.g. 90): "sm_90" when NVRTC knows
// that arch (a cubin, loaded as is), else "compute_XY" PTX for the newest arch it knows below
// cc, which the driver JIT-compiles for the device.
static int choose_arch(int cc, char *arch, size_t len) {
    if (tl_nvrtc.nvrtcGetNumSupportedArchs && tl_nvrtc.nvrtcGetSupportedArchs) {
        int n = 0;
        if (tl_nvrtc.nvrtcGetNumSupportedArchs(&n) == NVRTC_SUCCESS && n > 0 && n < 256) {
            int archs[256], best = 0;
            if (tl_nvrtc.nvrtcGetSupportedArchs(archs) == NVRTC_SUCCESS) {
                for (int i = 0; i < n; i++) {
                    if (archs[i] == cc) {
                        snprintf(arch, len, "sm_%d", cc);
                        return TL_CUDA_OK;
                    }
                    if (archs[i] < cc && archs[i] > best) best = archs[i];
                }
                if (best == 0)
                    return tl_cuda_fail(TL_CUDA_ERR_NVRTC,
                                        "NVRTC %d.%d supports no architecture at or below sm_%d (this GPU)",
                                        tl_nvrtc_major, tl_nvrtc_minor, cc);
                snprintf(arch, len, "compute_%d", best);
                return TL_CUDA_OK;
            }
        }
    }
    snprintf(arch, len, "sm_%d", cc); // old NVRTC without the query: try the device's own arch
    return TL_CUDA_OK;
}

// ------------------------------------------------------------------ disk cache
// FNV-1a, 64-bit.
static uint64_t fnv1a(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

// Creates every missing directory of `path` with mode 0700.
static int make_dirs(const char *path) {
    char buf[1024];
    if (strlen(path) >= sizeof buf) return -1;
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

// The cache directory: TEFLA_KERNEL_CACHE, else $XDG_CACHE_HOME/tefla/kernels, else
// ~/.cache/tefla/kernels. Returns 0 with the path in buf, 1 when the cache is off.
static int cache_dir(char *buf, size_t len) {
    const char *env = getenv("TEFLA_KERNEL_CACHE");
    if (env && *env) {
        if (!strcmp(env, "off") || !strcmp(env, "0") || !strcmp(env, "none")) return 1;
        snprintf(buf, len, "%s", env);
        return 0;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') {
        snprintf(buf, len, "%s/tefla/kernels", xdg);
        return 0;
    }
    const char *home = getenv("HOME");
    if (!home || home[0] != '/') {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || home[0] != '/') return 1;
    snprintf(buf, len, "%s/.cache/tefla/kernels", home);
    return 0;
}

// Makes the directory and checks it is ours and not writable by others (its files are loaded
// as GPU code). Returns 0 when usable.
static int cache_dir_ready(const char *dir) {
    if (make_dirs(dir) != 0) return -1;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return -1;
    if (st.st_uid != geteuid() || (st.st_mode & 022)) return -1;
    return 0;
}

static char *read_file(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size < (64 << 20) &&
        st.st_uid == geteuid() && (buf = malloc((size_t)st.st_size + 1))) {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got == (size_t)st.st_size) {
            buf[got] = '\0'; // PTX is loaded as a C string
            *size = got;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    close(fd);
    return buf;
}

// Writes atomically: a 0600 temporary file in the same directory, fsync, rename.
static int write_file_atomic(const char *dir, const char *path, const void *data, size_t size) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s/.tmp-kernels-XXXXXX", dir);
    int fd = mkstemp(tmp); // mode 0600
    if (fd < 0) return -1;
    fchmod(fd, 0600);
    const char *p = data;
    size_t left = size;
    int ok = 1;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            ok = 0;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (ok && fsync(fd) != 0) ok = 0;
    if (close(fd) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) unlink(tmp);
    return ok ? 0 : -1;
}

int tl_cuda_kernel_cache_dir(char *buf, size_t len) {
    char dir[1024];
    if (cache_dir(dir, sizeof dir) != 0) dir[0] = '\0';
    tl_cuda_copy_message(buf, len, dir);
    return TL_CUDA_OK;
}

// ------------------------------------------------------------------ module loading
static int load_module(tl_cuda_device *d, const char *image, int is_cubin) {
    CUmodule mod = NULL;
    int s;
    if (is_cubin) {
        s = TL_CU(tl_cu.cuModuleLoadData(&mod, image));
    } else {
        char jitlog[4096] = "";
        CUjit_option o[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
        void *v[2] = {jitlog, (void *)(uintptr_t)sizeof jitlog};
        s = TL_CU(tl_cu.cuModuleLoadDataEx(&mod, image, 2, o, v));
        if (s && jitlog[0]) {
            char msg[2048];
            tl_cuda_last_error(msg, sizeof msg);
            s = tl_cuda_fail(s, "%s\nPTX JIT log: %s", msg, jitlog);
        }
    }
    if (s) return s;
    for (int k = 0; k < TLK_COUNT; k++) {
        s = TL_CU(tl_cu.cuModuleGetFunction(&d->fn[k], mod, tl_cuda_kernel_names[k]));
        if (s) {
            tl_cu.cuModuleUnload(mod);
            return s;
        }
    }
    d->module = mod;
    return TL_CUDA_OK;
}

// Compiles or loads the kernels for device d once; later calls return at once.
int tl_cuda_ensure_kernels(tl_cuda_device *d) {
    if (__atomic_load_n(&d->kernels_ready, __ATOMIC_ACQUIRE)) return TL_CUDA_OK;
    pthread_mutex_lock(&d->lock);
    int s = TL_CUDA_OK;
    if (d->kernels_ready) goto done;
    double t0 = now_ms();
    if ((s = tl_cuda_ensure_nvrtc())) goto done;
    char arch[32];
    if ((s = choose_arch(d->cc_major * 10 + d->cc_minor, arch, sizeof arch))) goto done;
    int is_cubin = strncmp(arch, "sm_", 3) == 0 && tl_nvrtc.nvrtcGetCUBIN != NULL;

    // Cache key: source, options, arch and NVRTC version.
    char archopt[64], path[1024] = "", dir[1024] = "";
    const char *opts[4];
    int nopts = build_options(arch, archopt, opts);
    uint64_t h = fnv1a(0xcbf29ce484222325ull, tl_cuda_kernels_source, strlen(tl_cuda_kernels_source));
    for (int i = 0; i < nopts; i++) h = fnv1a(h, opts[i], strlen(opts[i]) + 1);
    int use_cache = cache_dir(dir, sizeof dir) == 0 && cache_dir_ready(dir) == 0;
    if (use_cache)
        snprintf(path, sizeof path, "%s/%016llx-%s-nvrtc%d.%d.%s", dir, (unsigned long long)h, arch, tl_nvrtc_major,
                 tl_nvrtc_minor, is_cubin ? "cubin" : "ptx");

    // 1. The disk cache. A file that does not load (truncated, other driver) is recompiled.
    if (use_cache) {
        size_t size = 0;
        char *image = read_file(path, &size);
        if (image) {
            s = load_module(d, image, is_cubin);
            free(image);
            if (s == TL_CUDA_OK) {
                d->kernels_cache_hit = 1;
                goto loaded;
            }
        }
    }
    // 2. NVRTC.
    compiled c;
    if ((s = nvrtc_compile(arch, &c, NULL, 0))) goto done;
    s = load_module(d, c.image, c.is_cubin);
    if (s == TL_CUDA_OK && use_cache && write_file_atomic(dir, path, c.image, c.size) != 0) path[0] = '\0';
    free(c.image);
    if (s) goto done;
    d->kernels_cache_hit = 0;
loaded:
    d->kernels_ms = now_ms() - t0;
    tl_cuda_copy_message(d->kernels_path, sizeof d->kernels_path, path);
    __atomic_store_n(&d->kernels_ready, 1, __ATOMIC_RELEASE);
done:
    pthread_mutex_unlock(&d->lock);
    return s;
}

int tl_cuda_prepare_kernels(int *cache_hit, double *millis, char *path, size_t pathlen) {
    tl_cuda_device *d;
    int s = tl_cuda_current(&d);
    if (!s) s = tl_cuda_ensure_kernels(d);
    if (cache_hit) *cache_hit = s ? 0 : d->kernels_cache_hit;
    if (millis) *millis = s ? 0 : d->kernels_ms;
    tl_cuda_copy_message(path, pathlen, s ? "" : d->kernels_path);
    return s;
}

// Finds ".entry NAME(" in PTX, or "NAME\0" in a cubin's string table.
static int image_has_kernel(const compiled *c, const char *name) {
    char pat[128];
    size_t n;
    if (c->is_cubin) {
        n = strlen(name) + 1; // includes the NUL
        memcpy(pat, name, n);
    } else {
        n = (size_t)snprintf(pat, sizeof pat, ".entry %s(", name);
    }
    return memmem(c->image, c->size, pat, n) != NULL;
}

int tl_cuda_compile_check(const char *arch, char *log, size_t loglen) {
    tl_cuda_copy_message(log, loglen, "");
    if (!arch || !*arch) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_compile_check: no arch given");
    char a[32];
    if (arch[0] >= '0' && arch[0] <= '9') snprintf(a, sizeof a, "sm_%s", arch);
    else snprintf(a, sizeof a, "%s", arch);
    char nvlog[8192] = "";
    compiled c;
    double t0 = now_ms();
    int s = nvrtc_compile(a, &c, nvlog, sizeof nvlog);
    double ms = now_ms() - t0;
    if (s) {
        tl_cuda_last_error(log, loglen);
        return s;
    }
    char missing[512] = "";
    for (int k = 0; k < TLK_COUNT; k++) {
        if (!image_has_kernel(&c, tl_cuda_kernel_names[k])) {
            size_t u = strlen(missing);
            snprintf(missing + u, sizeof missing - u, "%s%s", u ? ", " : "", tl_cuda_kernel_names[k]);
        }
    }
    free(c.image);
    if (missing[0]) {
        s = tl_cuda_fail(TL_CUDA_ERR_NVRTC, "compiled for %s, but these kernels are missing from the result: %s", a,
                         missing);
        tl_cuda_last_error(log, loglen);
        return s;
    }
    if (log && loglen) {
        snprintf(log, loglen, "NVRTC %d.%d (%s): %d kernels compiled for %s into %zu bytes of %s in %.0f ms%s%s",
                 tl_nvrtc_major, tl_nvrtc_minor, tl_cuda_library(1), (int)TLK_COUNT, a, c.size,
                 c.is_cubin ? "cubin" : "PTX", ms, nvlog[0] ? "\nNVRTC log:\n" : "", nvlog);
    }
    return TL_CUDA_OK;
}

// ------------------------------------------------------------------ launches
static int launch(tl_cuda_device *d, int k, unsigned gx, unsigned gy, unsigned bx, unsigned by, void **args) {
    int s = tl_cuda_ensure_kernels(d);
    if (s) return s;
    CUresult r = tl_cu.cuLaunchKernel(d->fn[k], gx, gy, 1, bx, by, 1, 0, d->stream, args, NULL);
    if (r != CUDA_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "cuLaunchKernel(%s)", tl_cuda_kernel_names[k]);
        return tl_cuda_check_cu(r, what, TL_FILE, __LINE__);
    }
    return TL_CUDA_OK;
}

#define TL_BLOCK 256u

// Blocks for a grid-stride loop over `work` items: enough to fill the GPU (8 blocks of 256
// threads per SM is the most that can be resident), never more than the work needs.
static unsigned grid_for(const tl_cuda_device *d, unsigned long long work) {
    unsigned long long blocks = (work + TL_BLOCK - 1) / TL_BLOCK;
    unsigned long long cap = (unsigned long long)(d->sm_count > 0 ? d->sm_count : 1) * 8;
    if (blocks > cap) blocks = cap;
    return blocks ? (unsigned)blocks : 1;
}

// Threads for one-block-per-row kernels: a power of two in [32, 512] covering `cols`.
static unsigned row_threads(size_t cols) {
    unsigned t = 32;
    while (t < 512 && t < cols) t <<= 1;
    return t;
}

// Blocks for one-block-per-row kernels (grid-stride over rows).
static unsigned row_grid(const tl_cuda_device *d, size_t rows) {
    unsigned long long cap = (unsigned long long)(d->sm_count > 0 ? d->sm_count : 1) * 32;
    return (unsigned)(rows < cap ? rows : cap);
}

static int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

#define TL_DEVICE(d)                 \
    tl_cuda_device *d;               \
    do {                             \
        int s_ = tl_cuda_current(&d); \
        if (s_) return s_;           \
    } while (0)

int tl_cuda_fill(float *out, float value, size_t n) {
    if (n == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    unsigned long long nn = n;
    int vec = aligned16(out);
    void *args[] = {&out, &value, &nn, &vec};
    return launch(d, TLK_tl_k_fill, grid_for(d, vec ? nn / 4 + 1 : nn), 1, TL_BLOCK, 1, args);
}

int tl_cuda_binary(int op, const float *a, size_t an, const float *b, size_t bn, float *out, size_t n) {
    if (op < 0 || op >= TL_BINARY_COUNT) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary: unknown op %d", op);
    if (n == 0) return TL_CUDA_OK;
    if (an == 0 || bn == 0 || n % an || n % bn)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary: an=%zu and bn=%zu must divide n=%zu", an, bn, n);
    TL_DEVICE(d);
    unsigned long long nn = n, a_n = an, b_n = bn;
    if (an == n && bn == n) {
        int vec = aligned16(a) && aligned16(b) && aligned16(out);
        void *args[] = {&op, &a, &b, &out, &nn, &vec};
        return launch(d, TLK_tl_k_binary, grid_for(d, vec ? nn / 4 + 1 : nn), 1, TL_BLOCK, 1, args);
    }
    void *args[] = {&op, &a, &a_n, &b, &b_n, &out, &nn};
    return launch(d, TLK_tl_k_binary_bcast, grid_for(d, nn), 1, TL_BLOCK, 1, args);
}

int tl_cuda_unary(int op, const float *x, float *out, size_t n) {
    if (op < 0 || op >= TL_UNARY_COUNT) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_unary: unknown op %d", op);
    if (n == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    unsigned long long nn = n;
    int vec = aligned16(x) && aligned16(out);
    void *args[] = {&op, &x, &out, &nn, &vec};
    return launch(d, TLK_tl_k_unary, grid_for(d, vec ? nn / 4 + 1 : nn), 1, TL_BLOCK, 1, args);
}

int tl_cuda_unary_backward(int op, const float *x, const float *y, const float *g, float *out, size_t n) {
    if (op < 0 || op >= TL_UNARY_COUNT)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_unary_backward: unknown op %d", op);
    // The operands the op's backward formula reads (the op table says which).
    int reads = tl_unary_backward_reads(op);
    if (!g || ((reads & TL_READS_X) && !x) || ((reads & TL_READS_Y) && !y))
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_unary_backward: %s needs g%s%s", tl_unary_name(op),
                            (reads & TL_READS_X) ? ", x" : "", (reads & TL_READS_Y) ? ", y" : "");
    if (n == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    unsigned long long nn = n;
    void *args[] = {&op, &x, &y, &g, &out, &nn};
    return launch(d, TLK_tl_k_unary_backward, grid_for(d, nn), 1, TL_BLOCK, 1, args);
}

int tl_cuda_affine(const float *x, float sc, float t, float *out, size_t n) {
    if (n == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    unsigned long long nn = n;
    int vec = aligned16(x) && aligned16(out);
    void *args[] = {&x, &sc, &t, &out, &nn, &vec};
    return launch(d, TLK_tl_k_affine, grid_for(d, vec ? nn / 4 + 1 : nn), 1, TL_BLOCK, 1, args);
}

int tl_cuda_softmax_rows(const float *x, float *out, size_t rows, size_t cols, int log) {
    if (rows == 0 || cols == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    unsigned long long r = rows, c = cols;
    void *args[] = {&x, &out, &r, &c, &log};
    return launch(d, TLK_tl_k_softmax_rows, row_grid(d, rows), 1, row_threads(cols), 1, args);
}

int tl_cuda_softmax_xent_smooth_forward(const float *logits, const float *labels, float *loss, size_t rows,
                                        size_t cols, float eps) {
    if (rows == 0) return TL_CUDA_OK;
    if (cols == 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_softmax_xent_forward: cols is 0");
    TL_DEVICE(d);
    unsigned long long r = rows, c = cols;
    void *args[] = {&logits, &labels, &loss, &r, &c, &eps};
    return launch(d, TLK_tl_k_xent_forward, row_grid(d, rows), 1, row_threads(cols), 1, args);
}

int tl_cuda_softmax_xent_forward(const float *logits, const float *labels, float *loss, size_t rows, size_t cols) {
    return tl_cuda_softmax_xent_smooth_forward(logits, labels, loss, rows, cols, 0.0f);
}

int tl_cuda_softmax_xent_smooth_backward(const float *logits, const float *labels, const float *gloss, float scale,
                                         float eps, float *dlogits, size_t rows, size_t cols) {
    if (rows == 0 || cols == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    unsigned long long r = rows, c = cols;
    void *args[] = {&logits, &labels, &gloss, &scale, &dlogits, &r, &c, &eps};
    return launch(d, TLK_tl_k_xent_backward, row_grid(d, rows), 1, row_threads(cols), 1, args);
}

int tl_cuda_softmax_xent_backward(const float *logits, const float *labels, const float *gloss, float scale,
                                  float *dlogits, size_t rows, size_t cols) {
    return tl_cuda_softmax_xent_smooth_backward(logits, labels, gloss, scale, 0.0f, dlogits, rows, cols);
}

int tl_cuda_sigmoid_xent(const float *x, const float *t, const float *w, size_t per_row, float *out, size_t n,
                         int backward, float scale) {
    if (n == 0) return TL_CUDA_OK;
    if (w && per_row == 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_sigmoid_xent: per_row is 0");
    TL_DEVICE(d);
    unsigned long long nn = n, pr = per_row ? per_row : 1;
    void *args[] = {&x, &t, &w, &pr, &out, &nn, &backward, &scale};
    return launch(d, TLK_tl_k_sigmoid_xent, grid_for(d, nn), 1, TL_BLOCK, 1, args);
}

// tl_k_binary_strided's parameter block, passed by value.
typedef struct tl_bcast_args {
    unsigned long long shape[8], astride[8], bstride[8];
} tl_bcast_args;

int tl_cuda_binary_strided(int op, int rank, const int64_t *shape, const float *a, const int64_t *astride,
                           const float *b, const int64_t *bstride, float *out) {
    if (op < 0 || op >= TL_BINARY_COUNT) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary_strided: unknown op %d", op);
    if (rank < 0 || rank > 8) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary_strided: rank %d is not in 0...8", rank);
    tl_bcast_args p;
    memset(&p, 0, sizeof p);
    unsigned long long n = 1;
    for (int k = 0; k < rank; k++) {
        if (shape[k] < 0 || astride[k] < 0 || bstride[k] < 0)
            return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_binary_strided: negative size or stride");
        p.shape[k] = (unsigned long long)shape[k];
        p.astride[k] = (unsigned long long)astride[k];
        p.bstride[k] = (unsigned long long)bstride[k];
        n *= p.shape[k];
    }
    if (n == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    void *args[] = {&op, &a, &b, &out, &n, &rank, &p};
    return launch(d, TLK_tl_k_binary_strided, grid_for(d, n), 1, TL_BLOCK, 1, args);
}

int tl_cuda_sum_mid(const float *x, size_t outer, size_t mid, size_t inner, float *out) {
    if (outer == 0 || inner == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    unsigned long long o = outer, m = mid, i = inner;
    if (inner == 1) {
        void *args[] = {&x, &out, &o, &m};
        return launch(d, TLK_tl_k_sum_inner1, row_grid(d, outer), 1, row_threads(mid), 1, args);
    }
    unsigned long long gx = (inner + 31) / 32;
    if (gx > 0x7fffffffull) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_sum_mid: inner=%zu too large", inner);
    unsigned gy = outer < 65535 ? (unsigned)outer : 65535u;
    void *args[] = {&x, &out, &o, &m, &i};
    return launch(d, TLK_tl_k_sum_mid, (unsigned)gx, gy, 32, 8, args);
}

int tl_cuda_sum_rows(const float *x, size_t rows, size_t cols, float *out) { return tl_cuda_sum_mid(x, 1, rows, cols, out); }
int tl_cuda_sum_cols(const float *x, size_t rows, size_t cols, float *out) { return tl_cuda_sum_mid(x, rows, cols, 1, out); }

int tl_cuda_sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum, float dampening,
                       float weight_decay, int nesterov, int first_step) {
    if (n == 0) return TL_CUDA_OK;
    if (momentum != 0.0f && !buf)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_sgd_update: momentum needs a buffer");
    TL_DEVICE(d);
    unsigned long long nn = n;
    int vec = aligned16(w) && aligned16(g) && (momentum == 0.0f || aligned16(buf));
    void *args[] = {&w, &g, &buf, &nn, &lr, &momentum, &dampening, &weight_decay, &nesterov, &first_step, &vec};
    return launch(d, TLK_tl_k_sgd, grid_for(d, vec ? nn / 4 + 1 : nn), 1, TL_BLOCK, 1, args);
}

int tl_cuda_adam_update(float *w, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                        float eps, float weight_decay, int adamw, float bc1, float bc2) {
    if (n == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    // The same derived scalars as tl_adam_update, computed the same way on the host.
    float step = lr / bc1;
    float inv_sqrt_bc2 = 1.0f / sqrtf(bc2);
    float decay = adamw ? 1.0f - lr * weight_decay : 1.0f;
    float l2 = adamw ? 0.0f : weight_decay;
    unsigned long long nn = n;
    int vec = aligned16(w) && aligned16(g) && aligned16(m) && aligned16(v);
    void *args[] = {&w, &g, &m, &v, &nn, &beta1, &beta2, &eps, &step, &inv_sqrt_bc2, &decay, &l2, &vec};
    return launch(d, TLK_tl_k_adam, grid_for(d, vec ? nn / 4 + 1 : nn), 1, TL_BLOCK, 1, args);
}

int tl_cuda_rmsprop_update(float *w, const float *g, float *sq, float *mom, float *gavg, size_t n, float lr,
                           float alpha, float eps, float weight_decay, float momentum, int centered) {
    if (n == 0) return TL_CUDA_OK;
    if ((momentum > 0.0f && !mom) || (centered && !gavg))
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_rmsprop_update: momentum/centered need their buffers");
    TL_DEVICE(d);
    unsigned long long nn = n;
    void *args[] = {&w, &g, &sq, &mom, &gavg, &nn, &lr, &alpha, &eps, &weight_decay, &momentum, &centered};
    return launch(d, TLK_tl_k_rmsprop, grid_for(d, nn), 1, TL_BLOCK, 1, args);
}

// ------------------------------------------------------------------ copies, sync, timers
int tl_cuda_memcpy_htod(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    return TL_CU(tl_cu.cuMemcpyHtoDAsync((CUdeviceptr)(uintptr_t)dst, src, bytes, d->stream));
}

int tl_cuda_memcpy_dtoh(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    int s = TL_CU(tl_cu.cuMemcpyDtoHAsync(dst, (CUdeviceptr)(uintptr_t)src, bytes, d->stream));
    if (s) return s;
    return TL_CU(tl_cu.cuStreamSynchronize(d->stream));
}

int tl_cuda_memcpy_dtod(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    return TL_CU(tl_cu.cuMemcpyDtoDAsync((CUdeviceptr)(uintptr_t)dst, (CUdeviceptr)(uintptr_t)src, bytes, d->stream));
}

int tl_cuda_synchronize(void) {
    TL_DEVICE(d);
    return TL_CU(tl_cu.cuStreamSynchronize(d->stream));
}

static int ensure_events(tl_cuda_device *d) {
    int s = TL_CUDA_OK;
    pthread_mutex_lock(&d->lock);
    if (!d->ev_start) s = TL_CU(tl_cu.cuEventCreate(&d->ev_start, CU_EVENT_DEFAULT));
    if (!s && !d->ev_stop) s = TL_CU(tl_cu.cuEventCreate(&d->ev_stop, CU_EVENT_DEFAULT));
    pthread_mutex_unlock(&d->lock);
    return s;
}

int tl_cuda_timer_start(void) {
    TL_DEVICE(d);
    int s = ensure_events(d);
    if (s) return s;
    return TL_CU(tl_cu.cuEventRecord(d->ev_start, d->stream));
}

int tl_cuda_timer_stop(float *ms) {
    if (ms) *ms = 0;
    TL_DEVICE(d);
    int s = ensure_events(d);
    if (!s) s = TL_CU(tl_cu.cuEventRecord(d->ev_stop, d->stream));
    if (!s) s = TL_CU(tl_cu.cuEventSynchronize(d->ev_stop));
    float t = 0;
    if (!s) s = TL_CU(tl_cu.cuEventElapsedTime(&t, d->ev_start, d->ev_stop));
    if (ms) *ms = t;
    return s;
}

// ------------------------------------------------------------------ cuBLAS
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
    return TL_CUBLAS(tl_cublas.cublasSgemm(d->cublas, opB, opA, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
}

int tl_cuda_dropout_mask(float *out, size_t n, uint64_t key, uint64_t step, float rate, float scale) {
    if (n == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    unsigned long long nn = n, k = key, st = step;
    void *args[] = {&out, &nn, &k, &st, &rate, &scale};
    return launch(d, TLK_tl_k_dropout_mask, grid_for(d, nn), 1, TL_BLOCK, 1, args);
}

// Copies host indices into a pooled device buffer (stream-ordered, so it may be freed as soon
// as the kernel is queued), after checking each against `rows`.
static int upload_indices(const int32_t *idx, size_t count, size_t rows, int **out, const char *what) {
    for (size_t i = 0; i < count; i++)
        if (idx[i] < 0 || (size_t)idx[i] >= rows)
            return tl_cuda_fail(TL_CUDA_ERR_INVALID, "%s: index %d at %zu is outside 0..<%zu", what, idx[i], i, rows);
    void *p = NULL;
    int s = tl_cuda_malloc(count * sizeof(int32_t), &p);
    if (s) return s;
    s = tl_cuda_memcpy_htod(p, idx, count * sizeof(int32_t));
    if (s) { tl_cuda_free(p); return s; }
    *out = (int *)p;
    return TL_CUDA_OK;
}

int tl_cuda_gather_rows(const float *x, size_t rows, size_t row, const int32_t *idx, size_t count, float *out) {
    if (count == 0 || row == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    int *didx = NULL;
    int s = upload_indices(idx, count, rows, &didx, "tl_cuda_gather_rows");
    if (s) return s;
    unsigned long long c = count, r = row;
    void *args[] = {&x, &didx, &c, &r, &out};
    s = launch(d, TLK_tl_k_gather_rows, grid_for(d, c * r), 1, TL_BLOCK, 1, args);
    tl_cuda_free(didx);
    return s;
}

int tl_cuda_scatter_add_rows(const float *g, size_t row, const int32_t *idx, size_t count, size_t rows, float *out) {
    int s = tl_cuda_fill(out, 0.0f, rows * row);
    if (s || count == 0 || row == 0) return s;
    TL_DEVICE(d);
    int *didx = NULL;
    s = upload_indices(idx, count, rows, &didx, "tl_cuda_scatter_add_rows");
    if (s) return s;
    unsigned long long c = count, r = row;
    void *args[] = {&g, &didx, &c, &r, &out};
    s = launch(d, TLK_tl_k_scatter_add_rows, grid_for(d, c * r), 1, TL_BLOCK, 1, args);
    tl_cuda_free(didx);
    return s;
}

// ------------------------------------------------------------------ convolution, pooling, batch norm
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
    return TL_CUBLAS(tl_cublas.cublasSgemmStridedBatched(d->cublas, opB, opA, N, M, K, &alpha, B, ldb, strideB, A, lda,
                                                         strideA, &beta, C, ldc, strideC, batch));
}

// Checks a window the way Window2D builds it: positive sizes, an output that fits.
static int check_window(const tl_window2d *w, const char *what) {
    if (!w || w->channels <= 0 || w->height <= 0 || w->width <= 0 || w->kernel_h <= 0 || w->kernel_w <= 0 ||
        w->stride_h <= 0 || w->stride_w <= 0 || w->dilation_h <= 0 || w->dilation_w <= 0 || w->out_h <= 0 ||
        w->out_w <= 0 || w->pad_top < 0 || w->pad_bottom < 0 || w->pad_left < 0 || w->pad_right < 0)
        return tl_cuda_fail(TL_CUDA_ERR_INVALID, "%s: invalid window geometry", what);
    return TL_CUDA_OK;
}

int tl_cuda_im2col(const float *x, const tl_window2d *w, size_t images, float *col) {
    int s = check_window(w, "tl_cuda_im2col");
    if (s || images == 0) return s;
    TL_DEVICE(d);
    unsigned long long im = images;
    unsigned long long n = im * (unsigned long long)w->channels * w->kernel_h * w->kernel_w * w->out_h * w->out_w;
    void *args[] = {&x, (void *)w, &im, &col};
    return launch(d, TLK_tl_k_im2col, grid_for(d, n), 1, TL_BLOCK, 1, args);
}

int tl_cuda_col2im(const float *col, const tl_window2d *w, size_t images, float *x) {
    int s = check_window(w, "tl_cuda_col2im");
    if (s || images == 0) return s;
    TL_DEVICE(d);
    unsigned long long im = images;
    unsigned long long n = im * (unsigned long long)w->channels * w->height * w->width;
    void *args[] = {&col, (void *)w, &im, &x};
    return launch(d, TLK_tl_k_col2im, grid_for(d, n), 1, TL_BLOCK, 1, args);
}

int tl_cuda_channel_bias_add(float *out, const float *bias, size_t batch, size_t channels, size_t plane) {
    unsigned long long n = (unsigned long long)batch * channels * plane, c = channels, p = plane;
    if (n == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    void *args[] = {&out, &bias, &n, &c, &p};
    return launch(d, TLK_tl_k_channel_bias, grid_for(d, n), 1, TL_BLOCK, 1, args);
}

int tl_cuda_maxpool2d_forward(const float *x, const tl_window2d *w, size_t planes, float *out, float *argmax) {
    int s = check_window(w, "tl_cuda_maxpool2d_forward");
    if (s || planes == 0) return s;
    TL_DEVICE(d);
    unsigned long long p = planes, n = p * (unsigned long long)w->out_h * w->out_w;
    void *args[] = {&x, (void *)w, &p, &out, &argmax};
    return launch(d, TLK_tl_k_maxpool_fwd, grid_for(d, n), 1, TL_BLOCK, 1, args);
}

int tl_cuda_maxpool2d_backward(const float *g, const float *argmax, const tl_window2d *w, size_t planes, float *dx) {
    int s = check_window(w, "tl_cuda_maxpool2d_backward");
    if (s || planes == 0) return s;
    TL_DEVICE(d);
    unsigned long long p = planes, n = p * (unsigned long long)w->height * w->width;
    void *args[] = {&g, &argmax, (void *)w, &p, &dx};
    return launch(d, TLK_tl_k_maxpool_bwd, grid_for(d, n), 1, TL_BLOCK, 1, args);
}

int tl_cuda_avgpool2d_forward(const float *x, const tl_window2d *w, size_t planes, int include_pad, float *out) {
    int s = check_window(w, "tl_cuda_avgpool2d_forward");
    if (s || planes == 0) return s;
    TL_DEVICE(d);
    unsigned long long p = planes, n = p * (unsigned long long)w->out_h * w->out_w;
    void *args[] = {&x, (void *)w, &p, &include_pad, &out};
    return launch(d, TLK_tl_k_avgpool_fwd, grid_for(d, n), 1, TL_BLOCK, 1, args);
}

int tl_cuda_avgpool2d_backward(const float *g, const tl_window2d *w, size_t planes, int include_pad, float *dx) {
    int s = check_window(w, "tl_cuda_avgpool2d_backward");
    if (s || planes == 0) return s;
    TL_DEVICE(d);
    unsigned long long p = planes, n = p * (unsigned long long)w->height * w->width;
    void *args[] = {&g, (void *)w, &p, &include_pad, &dx};
    return launch(d, TLK_tl_k_avgpool_bwd, grid_for(d, n), 1, TL_BLOCK, 1, args);
}

int tl_cuda_batchnorm_stats(const float *x, size_t n, size_t c, size_t s, float *mean, float *var) {
    if (c == 0) return TL_CUDA_OK;
    if (n == 0 || s == 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_batchnorm_stats: no values per channel");
    TL_DEVICE(d);
    unsigned long long nn = n, cc = c, ss = s;
    void *args[] = {&x, &nn, &cc, &ss, &mean, &var};
    return launch(d, TLK_tl_k_bn_stats, row_grid(d, c), 1, row_threads(n * s), 1, args);
}

int tl_cuda_batchnorm_forward(const float *x, size_t n, size_t c, size_t s, const float *mean, const float *var,
                              float eps, const float *weight, const float *bias, float *y) {
    unsigned long long nn = n, cc = c, ss = s, total = nn * cc * ss;
    if (total == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    void *args[] = {&x, &nn, &cc, &ss, &mean, &var, &eps, &weight, &bias, &y};
    return launch(d, TLK_tl_k_bn_forward, grid_for(d, total), 1, TL_BLOCK, 1, args);
}

int tl_cuda_batchnorm_backward(const float *g, const float *x, size_t n, size_t c, size_t s, const float *mean,
                               const float *var, float eps, const float *weight, int batch_stats, float *dx,
                               float *dweight, float *dbias) {
    if (c == 0) return TL_CUDA_OK;
    if (n == 0 || s == 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_batchnorm_backward: no values per channel");
    TL_DEVICE(d);
    unsigned long long nn = n, cc = c, ss = s;
    void *args[] = {&g, &x, &nn, &cc, &ss, &mean, &var, &eps, &weight, &batch_stats, &dx, &dweight, &dbias};
    return launch(d, TLK_tl_k_bn_backward, row_grid(d, c), 1, row_threads(n * s), 1, args);
}

int tl_cuda_max_mid(const float *x, size_t outer, size_t mid, size_t inner, float *out, int32_t *idx) {
    unsigned long long o = outer, m = mid, i = inner, n = o * i;
    if (n == 0) return TL_CUDA_OK;
    if (mid == 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_max_mid: empty axis");
    TL_DEVICE(d);
    void *didx = NULL;
    int s = TL_CUDA_OK;
    if (idx && (s = tl_cuda_malloc(n * sizeof(int32_t), &didx))) return s;
    void *args[] = {&x, &out, &didx, &o, &m, &i};
    s = launch(d, TLK_tl_k_max_mid, grid_for(d, n), 1, TL_BLOCK, 1, args);
    if (!s && idx) s = tl_cuda_memcpy_dtoh(idx, didx, n * sizeof(int32_t));
    tl_cuda_free(didx);
    return s;
}

// tl_k_permute's parameter block, passed by value.
typedef struct tl_perm_args {
    unsigned long long shape[8], stride[8];
} tl_perm_args;

int tl_cuda_permute(int rank, const int64_t *outshape, const float *x, const int64_t *xstride, float *out) {
    if (rank < 0 || rank > 8) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_permute: rank %d is not in 0...8", rank);
    tl_perm_args p;
    memset(&p, 0, sizeof p);
    unsigned long long n = 1;
    for (int k = 0; k < rank; k++) {
        if (outshape[k] < 0 || xstride[k] < 0) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "tl_cuda_permute: negative size or stride");
        p.shape[k] = (unsigned long long)outshape[k];
        p.stride[k] = (unsigned long long)xstride[k];
        n *= p.shape[k];
    }
    if (n == 0) return TL_CUDA_OK;
    TL_DEVICE(d);
    void *args[] = {&x, &out, &n, &rank, &p};
    return launch(d, TLK_tl_k_permute, grid_for(d, n), 1, TL_BLOCK, 1, args);
}

#endif // TL_CUDA_ENABLED
