// Loading the compiled kernels into a device's module (from the disk cache or NVRTC) and
// launching them on the device's stream; the op launchers call tl_cuda_launch*.
#include "cuda_internal.h"


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const tl_cuda_kernel_names[TLK_COUNT] = {
#define TL_K_NAME(name) #name,
    TL_CUDA_KERNELS(TL_K_NAME)
#undef TL_K_NAME
};

double tl_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

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
    double t0 = tl_now_ms();
    if ((s = tl_cuda_ensure_nvrtc())) goto done;
    char arch[32];
    if ((s = tl_nvrtc_choose_arch(d->cc_major * 10 + d->cc_minor, arch, sizeof arch))) goto done;
    int is_cubin = strncmp(arch, "sm_", 3) == 0 && tl_nvrtc.nvrtcGetCUBIN != NULL;

    char archopt[64], path[1024] = "", dir[1024] = "";
    const char *opts[4];
    int nopts = tl_nvrtc_options(arch, archopt, opts);
    int use_cache = tl_kernel_cache_path(arch, opts, nopts, is_cubin, dir, sizeof dir, path, sizeof path) == 0;

    // 1. The disk cache. A file that does not load (truncated, other driver) is recompiled.
    if (use_cache) {
        size_t size = 0;
        char *image = tl_kernel_cache_read(path, &size);
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
    tl_compiled c;
    if ((s = tl_nvrtc_compile(arch, &c, NULL, 0))) goto done;
    s = load_module(d, c.image, c.is_cubin);
    if (s == TL_CUDA_OK && use_cache && tl_kernel_cache_write(dir, path, c.image, c.size) != 0) path[0] = '\0';
    free(c.image);
    if (s) goto done;
    d->kernels_cache_hit = 0;
loaded:
    d->kernels_ms = tl_now_ms() - t0;
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

// ------------------------------------------------------------------ device-time profile
int tl_profile_on;
static pthread_mutex_t profile_lock = PTHREAD_MUTEX_INITIALIZER;
static double profile_ms[TLP_COUNT];
static long long profile_calls[TLP_COUNT];
static CUevent profile_events[TL_CUDA_MAX_DEVICES][2];

int tl_profile_begin(tl_cuda_device *d) {
    if (!__atomic_load_n(&tl_profile_on, __ATOMIC_RELAXED)) return 0;
    CUevent *ev = profile_events[d->index];
    if (!ev[0] && (tl_cu.cuEventCreate(&ev[0], CU_EVENT_DEFAULT) || tl_cu.cuEventCreate(&ev[1], CU_EVENT_DEFAULT)))
        return 0;
    return tl_cu.cuEventRecord(ev[0], d->stream) == CUDA_SUCCESS;
}

void tl_profile_end(tl_cuda_device *d, int slot) {
    CUevent *ev = profile_events[d->index];
    float ms = 0;
    if (tl_cu.cuEventRecord(ev[1], d->stream) || tl_cu.cuEventSynchronize(ev[1]) ||
        tl_cu.cuEventElapsedTime(&ms, ev[0], ev[1]))
        return;
    pthread_mutex_lock(&profile_lock);
    profile_ms[slot] += ms;
    profile_calls[slot]++;
    pthread_mutex_unlock(&profile_lock);
}

int tl_cuda_profile(int on) {
    pthread_mutex_lock(&profile_lock);
    if (on) {
        memset(profile_ms, 0, sizeof profile_ms);
        memset(profile_calls, 0, sizeof profile_calls);
    }
    __atomic_store_n(&tl_profile_on, on ? 1 : 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&profile_lock);
    return TL_CUDA_OK;
}

int tl_cuda_profile_slots(void) { return TLP_COUNT; }

const char *tl_cuda_profile_name(int slot) {
    static const char *const library[] = {"cublas sgemm", "cublas sgemm (strided batched)", "cudnn convolution",
                                          "cudnn convolution backward data", "cudnn convolution backward filter"};
    if (slot < 0 || slot >= TLP_COUNT) return "";
    return slot < TLK_COUNT ? tl_cuda_kernel_names[slot] : library[slot - TLK_COUNT];
}

int tl_cuda_profile_read(int slot, double *ms, long long *calls) {
    if (slot < 0 || slot >= TLP_COUNT) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "no profile slot %d", slot);
    pthread_mutex_lock(&profile_lock);
    if (ms) *ms = profile_ms[slot];
    if (calls) *calls = profile_calls[slot];
    pthread_mutex_unlock(&profile_lock);
    return TL_CUDA_OK;
}

// Launches kernel k on device d's stream, compiling or loading the kernels first.
static int launch(tl_cuda_device *d, int k, unsigned gx, unsigned gy, unsigned bx, unsigned by, void **args) {
    if (k < 0 || k >= TLK_COUNT) return tl_cuda_fail(TL_CUDA_ERR_INVALID, "no kernel %d", k);
    int s = tl_cuda_ensure_kernels(d);
    if (s) return s;
    int timed = tl_profile_begin(d);
    CUresult r = tl_cu.cuLaunchKernel(d->fn[k], gx, gy, 1, bx, by, 1, 0, d->stream, args, NULL);
    if (timed) tl_profile_end(d, k);
    if (r != CUDA_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "cuLaunchKernel(%s)", tl_cuda_kernel_names[k]);
        return tl_cuda_check_cu(r, what, TL_FILE, __LINE__);
    }
    return TL_CUDA_OK;
}

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

int tl_cuda_launch(int kernel, unsigned gx, unsigned gy, unsigned bx, unsigned by, void **args) {
    tl_cuda_device *d;
    int s = tl_cuda_current(&d);
    return s ? s : launch(d, kernel, gx, gy, bx, by, args);
}

int tl_cuda_launch_items(int kernel, unsigned long long work, void **args) {
    tl_cuda_device *d;
    int s = tl_cuda_current(&d);
    return s ? s : launch(d, kernel, grid_for(d, work), 1, TL_BLOCK, 1, args);
}

int tl_cuda_launch_rows(int kernel, size_t rows, size_t cols, void **args) {
    tl_cuda_device *d;
    int s = tl_cuda_current(&d);
    return s ? s : launch(d, kernel, row_grid(d, rows), 1, row_threads(cols), 1, args);
}

