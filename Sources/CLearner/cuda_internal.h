// Private to the CUDA part of CLearner (the cuda_*.c files): the
// run-time-loaded driver, NVRTC and cuBLAS entry points, per-device state and error helpers.
// Never included by the public headers, so Swift never sees a toolkit type.
#ifndef CLEARNER_CUDA_INTERNAL_H
#define CLEARNER_CUDA_INTERNAL_H

#include "clearner_cuda.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

// The calling thread's last status and message.
int tl_cuda_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl_cuda_copy_message(char *dst, size_t len, const char *src);

// ------------------------------------------------------------------ kernels
// Every kernel in cuda/kernels.cu, in one list: the enum index and the name looked up.
#define TL_CUDA_KERNELS(X)                                                                      \
    X(tl_k_fill) X(tl_k_binary) X(tl_k_binary_bcast) X(tl_k_unary) X(tl_k_unary_backward)       \
    X(tl_k_affine) X(tl_k_softmax_rows) X(tl_k_xent_forward) X(tl_k_xent_backward)              \
    X(tl_k_sum_mid) X(tl_k_sum_inner1) X(tl_k_sgd) X(tl_k_adam) X(tl_k_rmsprop)                 \
    X(tl_k_dropout_mask) X(tl_k_gather_rows) X(tl_k_scatter_add_rows) X(tl_k_im2col)               \
    X(tl_k_col2im) X(tl_k_channel_bias) X(tl_k_maxpool_fwd) X(tl_k_maxpool_bwd) X(tl_k_avgpool_fwd) \
    X(tl_k_avgpool_bwd) X(tl_k_bn_stats) X(tl_k_bn_forward) X(tl_k_bn_backward) X(tl_k_max_mid)     \
    X(tl_k_bn_stats_finish) X(tl_k_bn_backward_finish) X(tl_k_bn_backward_dx)     \
    X(tl_k_permute) X(tl_k_sigmoid_xent) X(tl_k_binary_strided)

enum {
#define TL_K_ENUM(name) TLK_##name,
    TL_CUDA_KERNELS(TL_K_ENUM)
#undef TL_K_ENUM
    TLK_COUNT
};
extern const char *const tl_cuda_kernel_names[TLK_COUNT];

// ------------------------------------------------------------------ launches (cuda_launch.c)
// The op launchers (cuda_ops.c, cuda_conv_ops.c) reach the GPU only through these and the
// public allocator and copy calls, after their argument checks. `args` points at each kernel argument, with exactly the types the kernel declares.
#define TL_BLOCK 256u
/// A grid-stride kernel over `work` items on the current device: blocks of TL_BLOCK threads,
/// enough to fill the GPU and never more than the work needs.
int tl_cuda_launch_items(int kernel, unsigned long long work, void **args);
/// A kernel with one block per row (grid-stride over `rows`), whose threads, a power of two in
/// [32, 512], cover `cols`.
int tl_cuda_launch_rows(int kernel, size_t rows, size_t cols, void **args);
/// A kernel with the given grid and block.
int tl_cuda_launch(int kernel, unsigned gx, unsigned gy, unsigned bx, unsigned by, void **args);


#include "cuda_api.h"

// ------------------------------------------------------------------ driver API
// Every driver function we call. The struct member for X has X's type as cuda_api.h declares
// it (checked against cuda.h by Scripts/cuda-abi-check), its name expanded by the toolkit's
// renamings (cuMemAlloc -> cuMemAlloc_v2). cuGetProcAddress is asked for the ABI of
// TL_CUDA_ABI_VERSION; without it (drivers before 11.3) dlsym looks up the versioned name.
#define TL_CU_FUNCS(X)                                                                          \
    X(cuGetErrorString) X(cuGetErrorName) X(cuInit) X(cuDriverGetVersion) X(cuDeviceGet)        \
    X(cuDeviceGetCount) X(cuDeviceGetName) X(cuDeviceGetAttribute) X(cuDeviceTotalMem)          \
    X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease) X(cuCtxSetCurrent)                 \
    X(cuCtxGetCurrent) X(cuCtxSynchronize) X(cuStreamCreate) X(cuStreamDestroy)                 \
    X(cuStreamSynchronize) X(cuMemAlloc) X(cuMemFree) X(cuMemGetInfo) X(cuMemcpyHtoDAsync)      \
    X(cuMemcpyDtoHAsync) X(cuMemcpyDtoDAsync) X(cuModuleLoadData) X(cuModuleLoadDataEx)         \
    X(cuModuleGetFunction) X(cuModuleUnload) X(cuLaunchKernel) X(cuEventCreate)                 \
    X(cuEventRecord) X(cuEventSynchronize) X(cuEventElapsedTime) X(cuEventDestroy)              \
    X(cuMemHostAlloc) X(cuMemHostGetDevicePointer) X(cuMemFreeHost)

typedef struct tl_cu_api {
#define TL_CU_MEMBER(name) __typeof__(name) *name;
    TL_CU_FUNCS(TL_CU_MEMBER)
#undef TL_CU_MEMBER
} tl_cu_api;

// ------------------------------------------------------------------ NVRTC and cuBLAS
// Types taken from the declarations in cuda_api.h with __typeof__. `optional` entries may be
// missing in old library versions.
#define TL_NVRTC_FUNCS(X, OPT)                                                                  \
    X(nvrtcGetErrorString) X(nvrtcVersion) X(nvrtcCreateProgram) X(nvrtcDestroyProgram)         \
    X(nvrtcCompileProgram) X(nvrtcGetProgramLogSize) X(nvrtcGetProgramLog) X(nvrtcGetPTXSize)   \
    X(nvrtcGetPTX) OPT(nvrtcGetCUBINSize) OPT(nvrtcGetCUBIN) OPT(nvrtcGetNumSupportedArchs)     \
    OPT(nvrtcGetSupportedArchs)

#define TL_CUBLAS_FUNCS(X, OPT)                                                                 \
    X(cublasCreate) X(cublasDestroy) X(cublasSetStream) X(cublasSetMathMode) X(cublasSgemm)     \
    OPT(cublasGetStatusString) OPT(cublasGetProperty) OPT(cublasSgemmStridedBatched)

typedef struct tl_nvrtc_api {
#define TL_FN_MEMBER(name) __typeof__(name) *name;
    TL_NVRTC_FUNCS(TL_FN_MEMBER, TL_FN_MEMBER)
} tl_nvrtc_api;

typedef struct tl_cublas_api {
    TL_CUBLAS_FUNCS(TL_FN_MEMBER, TL_FN_MEMBER)
#undef TL_FN_MEMBER
} tl_cublas_api;

extern tl_cu_api tl_cu;
extern tl_nvrtc_api tl_nvrtc;
extern tl_cublas_api tl_cublas;

// ------------------------------------------------------------------ caching allocator state
// One pool per device. Blocks come from cuMemAlloc in size classes (8 per power of two, so a
// block wastes at most 1/8 of its size) and go back to their class's free list on free.
#define TL_POOL_CLASSES 320

typedef struct tl_pool_entry {
    CUdeviceptr ptr; // 0 = empty slot
    uint32_t cls;    // size class index
    uint32_t in_use; // 1 while handed out
} tl_pool_entry;

typedef struct tl_pool {
    pthread_mutex_t lock;
    // Free lists: free_list[c] holds free_count[c] cached blocks of class c.
    CUdeviceptr *free_list[TL_POOL_CLASSES];
    size_t free_count[TL_POOL_CLASSES], free_cap[TL_POOL_CLASSES];
    // Every block held from the driver (in use or cached), open addressing on the pointer.
    tl_pool_entry *table;
    size_t table_cap, table_count;
    tl_cuda_mem_stats stats;
} tl_pool;

// ------------------------------------------------------------------ per-device state
typedef struct tl_cuda_device {
    int ready;          // context, stream and pool set up
    int index;          // device ordinal
    CUdevice dev;
    CUcontext ctx;      // the primary context (retained)
    CUstream stream;    // the one work stream: all kernels, copies and cuBLAS calls
    int cc_major, cc_minor, sm_count;
    size_t total_mem;
    char name[256];
    pthread_mutex_t lock; // guards lazy kernel/cuBLAS/event setup
    CUmodule module;
    CUfunction fn[TLK_COUNT];
    int kernels_ready;
    int kernels_cache_hit;
    double kernels_ms;
    char kernels_path[1024];
    cublasHandle_t cublas;
    int cublas_tf32;      // math mode the handle is in
    CUevent ev_start, ev_stop;
    // Two words of host memory the loss kernels write when they meet a bad label (see
    // tl_k_xent_forward); NULL (no reports) when mapped host memory is unavailable.
    volatile unsigned long long *label_fault;
    CUdeviceptr label_fault_dev;
    tl_pool pool;
} tl_cuda_device;

#define TL_CUDA_MAX_DEVICES 64

// Loader (cuda_loader.c).
int tl_cuda_ensure_init(void);
// dlopen of `env`'s path when set, else of the first of `candidates` (NULL-terminated) that
// loads, skipping CUDA majors above `max_major` (0: none skipped); what was opened goes to
// `name`, each failure is appended to `why`. NULL when none loads.
void *tl_cuda_open_library(const char *env, const char *const *candidates, int max_major, char *name, size_t namelen,
                           char *why, size_t whylen);
int tl_cuda_ensure_nvrtc(void);
int tl_cuda_ensure_cublas(void);
// The calling thread's current device, set up and with its context current on this thread.
int tl_cuda_current(tl_cuda_device **out);
// Device i when it has been set up (some thread used it), else NULL.
tl_cuda_device *tl_cuda_device_at(int i);
int tl_cuda_check_cu(CUresult r, const char *what, const char *file, int line);
int tl_cuda_check_nvrtc(nvrtcResult r, const char *what, const char *file, int line);
int tl_cuda_check_cublas(cublasStatus_t r, const char *what, const char *file, int line);
#ifdef __FILE_NAME__
#define TL_FILE __FILE_NAME__ // the base name: messages need no build paths
#else
#define TL_FILE __FILE__
#endif
#define TL_CU(call) tl_cuda_check_cu((call), #call, TL_FILE, __LINE__)
#define TL_NVRTC(call) tl_cuda_check_nvrtc((call), #call, TL_FILE, __LINE__)
#define TL_CUBLAS(call) tl_cuda_check_cublas((call), #call, TL_FILE, __LINE__)
// Declares `d`, the calling thread's current device, or returns the status of finding it.
#define TL_DEVICE(d)                  \
    tl_cuda_device *d;                \
    do {                              \
        int s_ = tl_cuda_current(&d); \
        if (s_) return s_;            \
    } while (0)
extern float tl_cuda_memory_fraction_value;
extern int tl_nvrtc_major, tl_nvrtc_minor; // -1 until NVRTC is loaded

// Allocator (cuda_alloc.c).
int tl_pool_setup(tl_cuda_device *d);
void tl_format_bytes(char *buf, size_t len, double bytes);

// Kernel compilation (cuda_compile.c): the embedded source compiled by NVRTC.
typedef struct tl_compiled {
    char *image;     // cubin (ELF) or PTX text, malloc'ed
    size_t size;
    int is_cubin;
    char arch[32];   // as passed to NVRTC: sm_90 or compute_90
} tl_compiled;
// NVRTC's options for an arch; `opts` must hold 4 pointers, `archopt` 64 bytes. Returns the count.
int tl_nvrtc_options(const char *arch, char *archopt, const char **opts);
// Compiles the embedded source for `arch`. On failure the NVRTC log is in the error message and,
// when log != NULL, in log.
int tl_nvrtc_compile(const char *arch, tl_compiled *out, char *log, size_t loglen);
// The NVRTC target for a device of compute capability cc (e.g. 90).
int tl_nvrtc_choose_arch(int cc, char *arch, size_t len);

// The on-disk kernel cache (cuda_kernel_cache.c). The file for a compiled image, keyed by the
// source, NVRTC's options, the arch and NVRTC's version: 0 with dir and path set, 1 when the
// cache is off or its directory unusable.
int tl_kernel_cache_path(const char *arch, const char *const *opts, int nopts, int is_cubin, char *dir, size_t dirlen,
                         char *path, size_t pathlen);
// The file's contents, NUL-terminated (PTX is loaded as a C string), or NULL; free() them.
char *tl_kernel_cache_read(const char *path, size_t *size);
// Writes atomically (a 0600 temporary file, fsync, rename); 0 on success.
int tl_kernel_cache_write(const char *dir, const char *path, const void *data, size_t size);

// The device-time profile (cuda_launch.c): while on, each kernel, cuBLAS and cuDNN call is
// bracketed by events and waited for, and its time added to its slot: the kernels' own slots
// (0..TLK_COUNT-1), then these library slots.
enum {
    TLP_SGEMM = TLK_COUNT, TLP_SGEMM_BATCHED, TLP_CUDNN_FORWARD, TLP_CUDNN_BACKWARD_DATA, TLP_CUDNN_BACKWARD_FILTER,
    TLP_COUNT
};
extern int tl_profile_on;
// Starts timing a call on d's stream; returns whether it is being timed (then call tl_profile_end).
int tl_profile_begin(tl_cuda_device *d);
void tl_profile_end(tl_cuda_device *d, int slot);

// Module loading (cuda_launch.c): compiles or loads the kernels for device d once.
int tl_cuda_ensure_kernels(tl_cuda_device *d);
// Milliseconds on the monotonic clock.
double tl_now_ms(void);

#endif
