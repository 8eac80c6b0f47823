// CLearner's CUDA layer: NVIDIA GPUs through the driver API, NVRTC and cuBLAS, all loaded at
// run time with dlopen, so one binary runs on CPU-only machines and on GPU machines.
//
// Always built: the layer needs no CUDA toolkit header (cuda_api.h declares what it calls).
//
// Conventions
// - Every function returning `int` returns a status: 0 (TL_CUDA_OK) or a TL_CUDA_ERR_* code.
//   On failure the calling thread's message is available from tl_cuda_last_error(); functions
//   that take (err, errlen) also copy it there.
// - Device pointers are plain `void *` / `float *` values that the host must never dereference.
// - Work goes to one stream per device and is asynchronous: a call returns once the work is
//   queued. The host waits only in tl_cuda_synchronize, tl_cuda_memcpy_dtoh and
//   tl_cuda_timer_stop. A block freed with tl_cuda_free may be reused by the next allocation at
//   once: reuse is ordered after every queued use because all work shares that stream.
// - The current device is per thread (like the CUDA runtime): tl_cuda_set_device(i) picks it
//   for the calling thread; it is 0 until set. All calls below act on the current device.
// - Shapes: matrices are row-major [rows, cols], contiguous; counts are element counts.
//
// Environment
//   TEFLA_LIBCUDA, TEFLA_LIBNVRTC, TEFLA_LIBCUBLAS  path or soname to dlopen instead of searching
//   TEFLA_KERNEL_CACHE   directory for compiled kernels, or "off" to disable the disk cache
//                        (default $XDG_CACHE_HOME/tefla/kernels, else ~/.cache/tefla/kernels)
#ifndef CLEARNER_CUDA_H
#define CLEARNER_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "clearner.h" // tl_window2d

#ifdef __cplusplus
extern "C" {
#endif

enum tl_cuda_status {
    TL_CUDA_OK = 0,
    TL_CUDA_ERR_NOT_BUILT = 1,     ///< reserved: builds before the layer was always compiled in
    TL_CUDA_ERR_LIBRARY = 2,       ///< a CUDA library could not be loaded or lacks a symbol
    TL_CUDA_ERR_NO_DEVICE = 3,     ///< cuInit failed or no such device
    TL_CUDA_ERR_DRIVER = 4,        ///< a driver API call failed (message has its error string)
    TL_CUDA_ERR_OUT_OF_MEMORY = 5, ///< allocation failed or would pass the memory cap
    TL_CUDA_ERR_NVRTC = 6,         ///< kernel compilation failed (message has the NVRTC log)
    TL_CUDA_ERR_CUBLAS = 7,        ///< a cuBLAS call failed
    TL_CUDA_ERR_INVALID = 8,       ///< bad argument (unknown op, shape mismatch, double free...)
    TL_CUDA_ERR_NOT_INITIALIZED = 9, ///< tl_cuda_init has not succeeded
    TL_CUDA_ERR_UNSUPPORTED = 10,   ///< cuDNN cannot take this geometry: use the built-in kernels
    TL_CUDA_ERR_CUDNN = 11,         ///< a cuDNN call failed (message has its error string)
    TL_CUDA_ERR_LABEL = 12          ///< a loss kernel met a label outside the classes
};

// ---------------------------------------------------------------- loading and devices
/// 1: the CUDA layer is in every build (kept for callers of earlier versions).
int tl_cuda_built_in(void);
/// Loads libcuda.so.1 (required), libnvrtc and libcublas (searched newest first among those
/// whose CUDA major version the driver supports) and calls cuInit. Safe to call again: later
/// calls return the first result. On failure copies the message into err (may be NULL).
int tl_cuda_init(char *err, size_t errlen);
/// Copies the calling thread's last error message into buf; returns that error's status.
int tl_cuda_last_error(char *buf, size_t len);
/// Number of CUDA devices, 0 when CUDA is unavailable (never fails).
int tl_cuda_device_count(void);
/// Device name (NUL-terminated, truncated to len).
int tl_cuda_device_name(int device, char *name, size_t len);
/// Compute capability, e.g. 9.0 for H100/H200.
int tl_cuda_device_capability(int device, int *major, int *minor);
/// Total device memory in bytes, and the number of multiprocessors.
int tl_cuda_device_total_memory(int device, size_t *bytes);
int tl_cuda_device_multiprocessors(int device, int *count);
/// Makes `device` current for the calling thread: retains its primary context, makes it
/// current, creates its stream and memory pool on first use.
int tl_cuda_set_device(int device);
/// The calling thread's current device index.
int tl_cuda_get_device(void);
/// Versions: driver as 1000*major + 10*minor (13000 = CUDA 13.0), NVRTC major/minor,
/// cuBLAS as reported by cublasGetVersion (-1 when not loaded yet); NULL pointers are skipped.
int tl_cuda_versions(int *driver, int *nvrtc_major, int *nvrtc_minor, int *cublas);
/// The file names that were loaded: which = 0 libcuda, 1 libnvrtc, 2 libcublas. "" when not loaded.
const char *tl_cuda_library(int which);

// ---------------------------------------------------------------- caching allocator
/// Counters of the current device's pool, in bytes unless named a count.
typedef struct tl_cuda_mem_stats {
    uint64_t in_use;          ///< bytes in blocks handed out (rounded to their size class)
    uint64_t cached;          ///< bytes in free blocks kept for reuse
    uint64_t reserved;        ///< in_use + cached: what the pool holds from the driver
    uint64_t peak_in_use;     ///< highest in_use so far
    uint64_t peak_reserved;   ///< highest reserved so far
    uint64_t limit;           ///< cap on reserved: memory fraction * total device memory
    uint64_t alloc_count;     ///< tl_cuda_malloc calls that succeeded
    uint64_t cache_hits;      ///< of those, served from a free list
    uint64_t driver_allocs;   ///< cuMemAlloc calls
    uint64_t driver_frees;    ///< cuMemFree calls (cache releases)
    uint64_t oom_count;       ///< allocations refused
} tl_cuda_mem_stats;

/// Allocates at least `size` bytes of device memory (512-byte aligned); size 0 gives NULL.
/// Reuses a cached block of the same size class when one is free; otherwise asks the driver,
/// and when that fails or would pass the cap, releases the cache and tries once more. Out of
/// memory gives TL_CUDA_ERR_OUT_OF_MEMORY with a message saying how much was asked for, held
/// and cached.
int tl_cuda_malloc(size_t size, void **ptr);
/// Returns a block to its size class's free list (NULL is a no-op). Stream-ordered: queued work
/// that still reads the block runs before any later work that reuses it.
int tl_cuda_free(void *ptr);
/// Caps the pool of every device at fraction * total memory (0 < fraction <= 1; default 1).
int tl_cuda_set_memory_fraction(float fraction);
/// Gives every cached (free) block of the current device back to the driver.
int tl_cuda_empty_cache(void);
int tl_cuda_memory_stats(tl_cuda_mem_stats *out);
/// Starts the peaks of tl_cuda_memory_stats afresh from what the current device holds now
/// (as torch.cuda.reset_peak_memory_stats).
int tl_cuda_reset_peak_memory(void);

// ---------------------------------------------------------------- copies and sync
/// Host to device. Queued on the stream; the host buffer may be reused on return (pageable
/// memory is staged by the driver before the call returns).
int tl_cuda_memcpy_htod(void *dst, const void *src, size_t bytes);
/// Device to host: waits for queued work and the copy.
int tl_cuda_memcpy_dtoh(void *dst, const void *src, size_t bytes);
/// Device to device, queued.
int tl_cuda_memcpy_dtod(void *dst, const void *src, size_t bytes);
/// Waits for all work queued on the current device's stream; reports asynchronous errors.
int tl_cuda_synchronize(void);
/// Event timing on the stream: start records an event; stop records another, waits for it and
/// gives the milliseconds between them.
int tl_cuda_timer_start(void);
int tl_cuda_timer_stop(float *ms);

// ---------------------------------------------------------------- kernels (NVRTC)
/// The CUDA C source of every kernel, as embedded in the binary (cuda/kernels.cu).
const char *tl_cuda_kernel_source(void);
/// Compiles every kernel with NVRTC for `arch` ("sm_90", "compute_80", or "90"), without a GPU,
/// and checks that every kernel the shim launches is in the result. Loads libnvrtc when needed.
/// The NVRTC log (or the error) goes to log. For CI.
int tl_cuda_compile_check(const char *arch, char *log, size_t loglen);
/// Loads libnvrtc only (no driver needed): 0 when available. Message in err.
int tl_cuda_nvrtc_available(char *err, size_t errlen);
/// Compiles (or loads from the disk cache) and loads the kernels on the current device; happens
/// on first launch anyway. Reports whether the cache was hit, the milliseconds taken and the
/// cache file (any output pointer may be NULL).
int tl_cuda_prepare_kernels(int *cache_hit, double *millis, char *path, size_t pathlen);
/// The kernel cache directory in use ("" when disabled).
int tl_cuda_kernel_cache_dir(char *buf, size_t len);

// ---------------------------------------------------------------- cuBLAS
/// Row-major C = alpha * op(A) * op(B) + beta * C on device pointers, same arguments as
/// tl_sgemm (op(X) = X^T when trans != 0; A is M x K after op, B K x N, C M x N). FP32 math:
/// TF32 tensor cores stay off unless tl_cuda_set_tf32(1).
int tl_cuda_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
/// Allows (1) or forbids (0, the default) TF32 tensor-core math in tl_cuda_sgemm.
int tl_cuda_set_tf32(int enabled);

// ---------------------------------------------------------------- elementwise
/// out[n] = value.
int tl_cuda_fill(float *out, float value, size_t n);
/// out[i] = a[i % an] op b[i % bn], i < n; an and bn must divide n (an = bn = n: contiguous;
/// bn = cols: bias add over [rows, cols]; 1: a scalar). op a tl_binary_op (tl_ops.h). out may
/// alias a or b when that side is not broadcast.
int tl_cuda_binary(int op, const float *a, size_t an, const float *b, size_t bn, float *out, size_t n);
/// As tl_binary_strided (rank <= 8): out, contiguous of shape `shape`, = a op b with a and b read
/// at element strides astride / bstride (0 on broadcast axes). shape and strides are host arrays.
int tl_cuda_binary_strided(int op, int rank, const int64_t *shape, const float *a, const int64_t *astride,
                           const float *b, const int64_t *bstride, float *out);
/// out[n] = f(x[n]); op a tl_unary_op (tl_ops.h), as tl_unary. out may alias x.
int tl_cuda_unary(int op, const float *x, float *out, size_t n);
/// out[n] = g * f'(x) from x, y = f(x) and upstream g, as tl_unary_backward: x or y may be NULL
/// when the op's backward does not read it (TL_READS_X / TL_READS_Y in tl_ops.h).
int tl_cuda_unary_backward(int op, const float *x, const float *y, const float *g, float *out, size_t n);
/// out[n] = x * s + t.
int tl_cuda_affine(const float *x, float s, float t, float *out, size_t n);

/// Whether a loss kernel on the current device met a label that is not a class index in
/// [0, classes) since the last call: 1 with the first such row, its label and the class count
/// (then the report is cleared), else 0. Reads what the kernels wrote so far without waiting:
/// call it after a synchronisation to see everything queued before it.
int tl_cuda_take_label_fault(long long *row, float *label, long long *classes);

// ---------------------------------------------------------------- rows and reductions
/// Softmax (log != 0: log-softmax) along each row of x[rows, cols] into out (may alias x).
int tl_cuda_softmax_rows(const float *x, float *out, size_t rows, size_t cols, int log);
/// Fused softmax cross-entropy: loss[r] = logsumexp(logits[r]) - logits[r, labels[r]], labels
/// being class indices stored as float; rows with a label outside [0, cols) get 0 (ignored).
int tl_cuda_softmax_xent_forward(const float *logits, const float *labels, float *loss, size_t rows,
                                 size_t cols);
/// Its gradient: dlogits[r, c] = scale * (gloss ? gloss[r] : 1) * (softmax(logits[r])[c] -
/// [c == labels[r]]); 0 on ignored rows. For a batch mean pass scale = 1/rows, gloss = NULL.
int tl_cuda_softmax_xent_backward(const float *logits, const float *labels, const float *gloss,
                                  float scale, float *dlogits, size_t rows, size_t cols);
/// Both with label smoothing eps (the target is (1 − eps)·onehot + eps/cols; eps = 0 is the
/// plain pair above): loss[r] = (1 − eps)·(lse − logits[r, label]) + eps·(lse − mean(logits[r])),
/// dlogits[r, c] = scale·gr·(softmax[c] − eps/cols − (1 − eps)·[c == label]). Ignored rows give 0.
int tl_cuda_softmax_xent_smooth_forward(const float *logits, const float *labels, float *loss, size_t rows,
                                        size_t cols, float eps);
int tl_cuda_softmax_xent_smooth_backward(const float *logits, const float *labels, const float *gloss,
                                         float scale, float eps, float *dlogits, size_t rows, size_t cols);
/// Sigmoid cross-entropy over logits x and targets t [n] with per-row weights w [n / per_row]
/// (NULL: 1). backward == 0: out[i] = (max(x, 0) − x·t + log1p(exp(−|x|)))·w (sum it for the
/// loss); else out[i] = (sigmoid(x) − t)·scale·w.
int tl_cuda_sigmoid_xent(const float *x, const float *t, const float *w, size_t per_row, float *out, size_t n,
                         int backward, float scale);
/// Sum over the middle axis of x viewed as [outer, mid, inner] into out[outer, inner]
/// (as tl_reduce_mid with op 0).
int tl_cuda_sum_mid(const float *x, size_t outer, size_t mid, size_t inner, float *out);
/// x[rows, cols] summed over rows into out[cols] (bias gradient).
int tl_cuda_sum_rows(const float *x, size_t rows, size_t cols, float *out);
/// x[rows, cols] summed over columns into out[rows].
int tl_cuda_sum_cols(const float *x, size_t rows, size_t cols, float *out);

// ---------------------------------------------------------------- random masks and rows
/// Inverted-dropout mask: out[i] = scale when hashed_uniform(key, step, i) >= rate, else 0;
/// bit-identical to the CPU's mask for the same key and step (Random.swift's hashedUniform).
int tl_cuda_dropout_mask(float *out, size_t n, uint64_t key, uint64_t step, float rate, float scale);
/// out[i, :] = x[idx[i], :] for x [rows, row]; idx is a host array of count indices, each
/// checked against rows (copied to the device by the call).
int tl_cuda_gather_rows(const float *x, size_t rows, size_t row, const int32_t *idx, size_t count, float *out);
/// out[rows, row] = 0, then out[idx[i], :] += g[i, :] (the gather's gradient); idx on the host.
int tl_cuda_scatter_add_rows(const float *g, size_t row, const int32_t *idx, size_t count, size_t rows, float *out);

// ---------------------------------------------------------------- optimizers (in place, fused)
/// As tl_sgd_update (PyTorch SGD: momentum, dampening, Nesterov, L2 weight decay); buf may be
/// NULL when momentum == 0.
int tl_cuda_sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum,
                       float dampening, float weight_decay, int nesterov, int first_step);
/// As tl_adam_update (Adam, or AdamW when adamw != 0); bc1 = 1 - beta1^t, bc2 = 1 - beta2^t.
int tl_cuda_adam_update(float *w, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                        float beta2, float eps, float weight_decay, int adamw, float bc1, float bc2);
/// As tl_rmsprop_update; mom may be NULL when momentum == 0, gavg when centered == 0.
int tl_cuda_rmsprop_update(float *w, const float *g, float *sq, float *mom, float *gavg, size_t n,
                           float lr, float alpha, float eps, float weight_decay, float momentum,
                           int centered);

// ---------------------------------------------------------------- convolution, pooling, batch norm
// NCHW activations and tl_window2d geometry, with the semantics of conv.c's CPU kernels.
/// Row-major strided-batched sgemm: for b < batch, C + b·strideC = alpha · op(A + b·strideA) ·
/// op(B + b·strideB) + beta · (C + b·strideC), arguments otherwise as tl_cuda_sgemm. A stride
/// may be 0 (the same matrix for every b). Falls back to one sgemm per b when the cuBLAS
/// library lacks cublasSgemmStridedBatched.
int tl_cuda_sgemm_strided_batched(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                                  int lda, long long strideA, const float *B, int ldb, long long strideB,
                                  float beta, float *C, int ldc, long long strideC, int batch);
/// im2col of `images` consecutive images x [images, C, H, W] into col [images, C·kH·kW, OH·OW],
/// each image as tl_im2col.
int tl_cuda_im2col(const float *x, const tl_window2d *w, size_t images, float *col);
/// The adjoint: x [images, C, H, W] = col2im(col) per image. OVERWRITES x (tl_col2im adds to it).
int tl_cuda_col2im(const float *col, const tl_window2d *w, size_t images, float *x);
/// out [batch, channels, plane] += bias[channel], in place.
int tl_cuda_channel_bias_add(float *out, const float *bias, size_t batch, size_t channels, size_t plane);
/// As tl_maxpool2d_forward over `planes` planes: out and argmax [planes, OH, OW] (argmax as floats).
int tl_cuda_maxpool2d_forward(const float *x, const tl_window2d *w, size_t planes, float *out, float *argmax);
/// As tl_maxpool2d_backward: dx [planes, H, W] (overwritten) from g and argmax [planes, OH, OW].
int tl_cuda_maxpool2d_backward(const float *g, const float *argmax, const tl_window2d *w, size_t planes, float *dx);
/// As tl_avgpool2d_forward / tl_avgpool2d_backward (dx overwritten).
int tl_cuda_avgpool2d_forward(const float *x, const tl_window2d *w, size_t planes, int include_pad, float *out);
int tl_cuda_avgpool2d_backward(const float *g, const tl_window2d *w, size_t planes, int include_pad, float *dx);
/// As tl_batchnorm_stats over all channels: mean and biased variance [c] of x [n, c, s].
int tl_cuda_batchnorm_stats(const float *x, size_t n, size_t c, size_t s, float *mean, float *var);
/// As tl_batchnorm_forward over all channels.
int tl_cuda_batchnorm_forward(const float *x, size_t n, size_t c, size_t s, const float *mean, const float *var,
                              float eps, const float *weight, const float *bias, float *y);
/// As tl_batchnorm_backward over all channels (dx, dweight, dbias may each be NULL).
int tl_cuda_batchnorm_backward(const float *g, const float *x, size_t n, size_t c, size_t s, const float *mean,
                               const float *var, float eps, const float *weight, int batch_stats, float *dx,
                               float *dweight, float *dbias);

// ---------------------------------------------------------------- device-time profile
/// Turns the profile on (clearing it) or off. While on, every kernel, cuBLAS and cuDNN call is
/// timed with events and waited for (slow: for finding where a step's device time goes).
int tl_cuda_profile(int on);
/// Slots: one per kernel, then the cuBLAS and cuDNN calls; each with a name, ms and calls.
int tl_cuda_profile_slots(void);
const char *tl_cuda_profile_name(int slot);
int tl_cuda_profile_read(int slot, double *ms, long long *calls);

// ---------------------------------------------------------------- cuDNN convolutions
/// Loads cuDNN (libcudnn.so.9, then .so.8; TEFLA_LIBCUDNN overrides) once; needs no GPU. 0 with
/// its version (e.g. 90100) in *version, or TL_CUDA_ERR_LIBRARY with the reason copied to err.
int tl_cudnn_load(int *version, char *err, size_t errlen);
/// The cuDNN library loaded ("" before tl_cudnn_load succeeds).
const char *tl_cudnn_library(void);
/// One convolution's geometry for cuDNN: x [batch, channels, height, width], w [out_channels,
/// channels/groups, kernel_h, kernel_w], y [batch, out_channels, out_h, out_w]; symmetric padding.
typedef struct tl_cudnn_conv {
    int32_t batch, channels, height, width;
    int32_t out_channels, kernel_h, kernel_w;
    int32_t pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w, groups;
    int32_t out_h, out_w;
    int32_t fma_only; ///< 1: plain fp32 FMA math; 0: TF32 tensor cores allowed (PyTorch's default)
} tl_cudnn_conv;
enum { TL_CUDNN_FORWARD = 0, TL_CUDNN_BACKWARD_DATA = 1, TL_CUDNN_BACKWARD_FILTER = 2 };
/// One pass on the current device, overwriting out: FORWARD y = conv(a = x, b = w);
/// BACKWARD_DATA dx from a = dy, b = w; BACKWARD_FILTER dw from a = x, b = dy. The first call of
/// each geometry and pass searches the fastest algorithm using at most workspace_limit bytes of
/// workspace (less when the memory cap allows less) and keeps it. TL_CUDA_ERR_UNSUPPORTED when
/// cuDNN cannot take the geometry (the caller uses the built-in kernels).
int tl_cudnn_convolution(int pass, const tl_cudnn_conv *g, const float *a, const float *b, float *out,
                         size_t workspace_limit);
/// Plans (geometry, pass) searched so far on the current device.
int tl_cudnn_plan_count(void);

// ---------------------------------------------------------------- max and permute
/// Max over the middle axis of x [outer, mid, inner] into out [outer, inner], as tl_reduce_mid
/// with op 1. idx, when not NULL, is a HOST array of outer·inner arg-max indices: the call then
/// waits for the kernel and copies them back.
int tl_cuda_max_mid(const float *x, size_t outer, size_t mid, size_t inner, float *out, int32_t *idx);
/// As tl_permute (rank <= 8): out, contiguous of shape outshape, from x read with xstride (x's
/// strides in output-axis order). outshape and xstride are host arrays.
int tl_cuda_permute(int rank, const int64_t *outshape, const float *x, const int64_t *xstride, float *out);

#ifdef __cplusplus
}
#endif
#endif
