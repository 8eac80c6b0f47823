// Tefla CUDA kernels.
//
// This file is CUDA C++ compiled at run time by NVRTC (see cuda_compile.c); SwiftPM never
// compiles it. `Scripts/embed-kernels` turns it into the C string in cuda_kernels.inc, which
// is what the binary carries, so edit this file and rerun that script.
//
// Rules for this file:
// - No system #include: NVRTC has no C library headers. Use CUDA built-ins only (expf, tanhf,
//   float4, __shfl_xor_sync, ...). The one include, elementwise.h (with the op table tl_ops.h),
//   is shared with the CPU kernels; Scripts/embed-kernels inlines it into the embedded source.
// - Every kernel is `extern "C"` (unmangled names, looked up by cuModuleGetFunction) and is
//   listed in TL_CUDA_KERNELS in cuda_internal.h; tl_cuda_compile_check verifies that every
//   listed name is present in the compiled PTX.
// - Each kernel's semantics match the CPU reference in kernels.c (tl_unary, tl_softmax_rows,
//   tl_sgd_update, ...), which the check program compares against.
// - Arguments: device pointers, `u64` element counts, `int` flags, `float` scalars; the host
//   passes exactly these types (cuLaunchKernel copies them by size).
// - Elementwise kernels use a grid-stride loop, so any grid size is correct; the host picks a
//   grid of at most a few blocks per SM. Where `vec` is non-zero, every pointer argument is
//   16-byte aligned (checked by the host) and the body runs on float4 with a scalar tail.
// - Nothing here is fast-math: results stay within a few ulp of the CPU reference.

#include "elementwise.h"

typedef unsigned long long u64;

#define TL_NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ u64 tl_tid() { return (u64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ u64 tl_nthreads() { return (u64)blockDim.x * gridDim.x; }

// ------------------------------------------------------------------------------------------
// Fill. out[n] = value.
extern "C" __global__ void tl_k_fill(float *out, float value, u64 n, int vec) {
    u64 start = 0;
    if (vec) {
        u64 n4 = n >> 2;
        float4 v = make_float4(value, value, value, value);
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) ((float4 *)out)[i] = v;
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) out[i] = value;
}

// ------------------------------------------------------------------------------------------
// Binary ops: tl_binary_apply, the op table's formulas (tl_ops.h), as tl_binary_strided.

// Contiguous binary op: a[n], b[n] -> out[n]. out may alias a or b.
extern "C" __global__ void tl_k_binary(int op, const float *a, const float *b, float *out, u64 n, int vec) {
    u64 start = 0;
    if (vec) {
        u64 n4 = n >> 2;
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) {
            float4 x = ((const float4 *)a)[i], y = ((const float4 *)b)[i], r;
            r.x = tl_binary_apply(op, x.x, y.x);
            r.y = tl_binary_apply(op, x.y, y.y);
            r.z = tl_binary_apply(op, x.z, y.z);
            r.w = tl_binary_apply(op, x.w, y.w);
            ((float4 *)out)[i] = r;
        }
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) out[i] = tl_binary_apply(op, a[i], b[i]);
}

// Broadcast binary op over the trailing axis: out[i] = a[i % an] op b[i % bn] for i < n,
// where an and bn each divide n. Covers bias add ([rows, cols] + [cols]: an = n, bn = cols),
// a scalar on either side (an or bn = 1) and a vector on the left.
extern "C" __global__ void tl_k_binary_bcast(int op, const float *a, u64 an, const float *b, u64 bn,
                                             float *out, u64 n) {
    for (u64 i = tl_tid(); i < n; i += tl_nthreads()) {
        float x = a[an == n ? i : i % an];
        float y = b[bn == n ? i : i % bn];
        out[i] = tl_binary_apply(op, x, y);
    }
}

// ------------------------------------------------------------------------------------------
// Unary ops: tl_unary_apply, the op table's formulas (tl_ops.h), as tl_unary.
// x[n] -> out[n]; out may alias x.
extern "C" __global__ void tl_k_unary(int op, const float *x, float *out, u64 n, int vec) {
    u64 start = 0;
    if (vec) {
        u64 n4 = n >> 2;
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) {
            float4 v = ((const float4 *)x)[i];
            v.x = tl_unary_apply(op, v.x);
            v.y = tl_unary_apply(op, v.y);
            v.z = tl_unary_apply(op, v.z);
            v.w = tl_unary_apply(op, v.w);
            ((float4 *)out)[i] = v;
        }
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) out[i] = tl_unary_apply(op, x[i]);
}

// Backward of a unary op: out = g * f'(x), given x, y = f(x) and upstream g, all [n]; the
// table's backward formulas (tl_unary_backward_apply), as tl_unary_backward.
// x, y, g [n] -> out[n]. x or y may be NULL for ops that do not read it (tl_unary_backward_reads).
extern "C" __global__ void tl_k_unary_backward(int op, const float *x, const float *y, const float *g,
                                               float *out, u64 n) {
    for (u64 i = tl_tid(); i < n; i += tl_nthreads()) {
        float yi = y ? y[i] : 0.0f;
        float xi = x ? x[i] : 0.0f;
        out[i] = tl_unary_backward_apply(op, xi, yi, g[i]);
    }
}

// ------------------------------------------------------------------------------------------
// Affine: out[n] = x[n] * s + t.
extern "C" __global__ void tl_k_affine(const float *x, float s, float t, float *out, u64 n, int vec) {
    u64 start = 0;
    if (vec) {
        u64 n4 = n >> 2;
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) {
            float4 v = ((const float4 *)x)[i];
            v.x = v.x * s + t;
            v.y = v.y * s + t;
            v.z = v.z * s + t;
            v.w = v.w * s + t;
            ((float4 *)out)[i] = v;
        }
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) out[i] = x[i] * s + t;
}

// ------------------------------------------------------------------------------------------
// Block reductions. blockDim.x is a power of two between 32 and 1024; `sh` has 32 slots.

__device__ __forceinline__ float tl_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Online (max, sum of exp(x - max)) pair, merged exactly as in the two-pass formula.
__device__ __forceinline__ void tl_lse_merge(float &m, float &s, float m2, float s2) {
    if (m2 == TL_NEG_INF) return;
    if (m == TL_NEG_INF) { m = m2; s = s2; return; }
    if (m2 > m) { s = s * expf(m - m2) + s2; m = m2; }
    else s = s + s2 * expf(m2 - m);
}

__device__ __forceinline__ void tl_warp_lse(float &m, float &s) {
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        tl_lse_merge(m, s, m2, s2);
    }
}

// Reduces (m, s) over the block; every thread gets the result.
__device__ void tl_block_lse(float &m, float &s) {
    __shared__ float shm[32], shs[32];
    tl_warp_lse(m, s);
    int nwarps = blockDim.x >> 5;
    if (nwarps == 1) return;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    __syncthreads(); // shm/shs may still be read by a previous call
    if (lane == 0) { shm[w] = m; shs[w] = s; }
    __syncthreads();
    m = lane < nwarps ? shm[lane] : TL_NEG_INF;
    s = lane < nwarps ? shs[lane] : 0.0f;
    tl_warp_lse(m, s);
}

__device__ float tl_block_sum(float v) {
    __shared__ float sh[32];
    v = tl_warp_sum(v);
    int nwarps = blockDim.x >> 5;
    if (nwarps == 1) return v;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nwarps ? sh[lane] : 0.0f;
    return tl_warp_sum(v);
}

// Max and log of the sum of exp over row x[cols], by the whole block.
__device__ __forceinline__ void tl_row_lse(const float *x, u64 cols, float &m, float &s) {
    m = TL_NEG_INF;
    s = 0.0f;
    for (u64 c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = x[c];
        if (v > m) { s = (m == TL_NEG_INF ? 0.0f : s * expf(m - v)) + 1.0f; m = v; }
        else if (v != TL_NEG_INF) s += expf(v - m); // -inf entries (masks) add nothing
    }
    tl_block_lse(m, s);
}

// ------------------------------------------------------------------------------------------
// Row softmax / log-softmax of x[rows, cols] (row-major) into out[rows, cols]; out may alias x.
// One block per row (grid-stride over rows); blockDim.x = power of two in [32, 1024].
extern "C" __global__ void tl_k_softmax_rows(const float *x, float *out, u64 rows, u64 cols, int log) {
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *src = x + r * cols;
        float *dst = out + r * cols;
        float m, s;
        tl_row_lse(src, cols, m, s);
        if (log) {
            float ls = logf(s) + m;
            for (u64 c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = src[c] - ls;
        } else {
            float inv = 1.0f / s;
            for (u64 c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = expf(src[c] - m) * inv;
        }
        __syncthreads(); // when out aliases x, finish the row before the next one's reads
    }
}

// Fused softmax cross-entropy, forward, with label smoothing eps (0: none). logits[rows, cols],
// labels[rows] (class indices stored as float) -> loss[rows] = (1 − eps)·(lse − logits[r, label])
// + eps·(lse − mean_c logits[r, c]), lse = logsumexp(logits[r]): the cross-entropy against the
// target (1 − eps)·onehot + eps/cols.
// A label is a class index: an integer in [0, cols). A row whose label is not gets loss and
// gradient 0 and, when `fault` is set (two words of host-mapped memory), is reported there:
// fault[0] keeps the smallest (row << 32 | label bits) met, fault[1] the class count, so the
// host can name the first bad row and its label after any synchronisation.
__device__ __forceinline__ bool tl_label_valid(float lab, u64 cols) {
    return lab >= 0.0f && lab < (float)cols && floorf(lab) == lab;
}

__device__ __forceinline__ void tl_label_report(u64 *fault, u64 row, float lab, u64 cols) {
    if (!fault) return;
    atomicMin(fault, (row << 32) | (u64)__float_as_uint(lab));
    fault[1] = cols;
}

extern "C" __global__ void tl_k_xent_forward(const float *logits, const float *labels, float *loss,
                                             u64 rows, u64 cols, float eps, u64 *fault) {
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *src = logits + r * cols;
        float m, s;
        tl_row_lse(src, cols, m, s);
        float sx = 0.0f;
        if (eps != 0.0f) { // uniform over the block
            for (u64 c = threadIdx.x; c < cols; c += blockDim.x) sx += src[c];
            sx = tl_block_sum(sx);
        }
        if (threadIdx.x == 0) {
            float lab = labels[r];
            float l = 0.0f;
            if (!tl_label_valid(lab, cols)) {
                tl_label_report(fault, r, lab, cols);
            } else {
                float lse = logf(s) + m;
                l = lse - src[(u64)lab];
                if (eps != 0.0f) l = (1.0f - eps) * l + eps * (lse - sx / (float)cols);
            }
            loss[r] = l;
        }
    }
}

// Fused softmax cross-entropy, backward, with label smoothing eps. dlogits[r, c] = scale · gr ·
// (softmax(logits[r])[c] − eps/cols − (1 − eps)·(c == label[r])), with gr = gloss[r] (per-row
// upstream gradient or sample weight) or 1 when gloss is NULL. For a mean over the batch pass
// scale = 1/rows. Rows with an invalid label get 0 (and are reported). dlogits may alias logits.
extern "C" __global__ void tl_k_xent_backward(const float *logits, const float *labels, const float *gloss,
                                              float scale, float *dlogits, u64 rows, u64 cols, float eps,
                                              u64 *fault) {
    const float off = eps / (float)cols, on = 1.0f - eps;
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *src = logits + r * cols;
        float *dst = dlogits + r * cols;
        float m, s;
        tl_row_lse(src, cols, m, s);
        float lab = labels[r];
        bool valid = tl_label_valid(lab, cols);
        if (!valid && threadIdx.x == 0) tl_label_report(fault, r, lab, cols);
        u64 target = valid ? (u64)lab : 0;
        float k = valid ? scale * (gloss ? gloss[r] : 1.0f) : 0.0f;
        float inv = 1.0f / s;
        for (u64 c = threadIdx.x; c < cols; c += blockDim.x) {
            float p = expf(src[c] - m) * inv;
            dst[c] = k * (p - off - (c == target ? on : 0.0f));
        }
        __syncthreads();
    }
}

// Sigmoid (binary) cross-entropy, elementwise over logits x and targets t [n], with per-row
// weights w [n / per_row] (NULL: 1). backward == 0: out = (max(x, 0) − x·t + log1p(exp(−|x|)))·w,
// the stable per-element loss (the caller sums and divides by n); backward != 0:
// out = (sigmoid(x) − t)·scale·w, as CPUBackend's sigmoidCrossEntropy(Backward).
extern "C" __global__ void tl_k_sigmoid_xent(const float *x, const float *t, const float *w, u64 per_row, float *out,
                                             u64 n, int backward, float scale) {
    for (u64 i = tl_tid(); i < n; i += tl_nthreads()) {
        const float xi = x[i], ti = t[i], wi = w ? w[i / per_row] : 1.0f;
        if (backward) {
            const float sg = 1.0f / (1.0f + expf(-xi));
            out[i] = (sg - ti) * scale * wi;
        } else {
            const float l = (xi > 0.0f ? xi : 0.0f) - xi * ti + log1pf(expf(-fabsf(xi)));
            out[i] = l * wi;
        }
    }
}

// General broadcast binary op over rank <= 8, as tl_binary_strided: out [n] is contiguous with
// shape p.shape[0..rank); a and b are read with element strides p.astride / p.bstride (0 on
// broadcast axes). One thread per output element.
struct tl_bcast { u64 shape[8]; u64 astride[8]; u64 bstride[8]; };

extern "C" __global__ void tl_k_binary_strided(int op, const float *a, const float *b, float *out, u64 n, int rank,
                                               tl_bcast p) {
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 t = e, oa = 0, ob = 0;
        for (int d = rank - 1; d >= 0; d--) {
            const u64 q = t / p.shape[d], k = t - q * p.shape[d];
            oa += k * p.astride[d];
            ob += k * p.bstride[d];
            t = q;
        }
        out[e] = tl_binary_apply(op, a[oa], b[ob]);
    }
}

// ------------------------------------------------------------------------------------------
// Sum over the middle axis of x viewed as [outer, mid, inner] (row-major) -> out[outer, inner].
// Bias gradient of [rows, cols]: outer = 1, mid = rows, inner = cols. Row sums: outer = rows,
// mid = cols, inner = 1 (use tl_k_sum_inner1 then).
// Block (32, 8): threadIdx.x walks inner (coalesced), threadIdx.y strides over mid, then the 8
// partial sums are added in shared memory. grid = (ceil(inner/32), min(outer, 65535)).
extern "C" __global__ void tl_k_sum_mid(const float *x, float *out, u64 outer, u64 mid, u64 inner) {
    __shared__ float sh[8][33];
    u64 i = (u64)blockIdx.x * 32 + threadIdx.x;
    for (u64 o = blockIdx.y; o < outer; o += gridDim.y) {
        float acc = 0.0f;
        if (i < inner) {
            const float *src = x + o * mid * inner + i;
            for (u64 m = threadIdx.y; m < mid; m += 8) acc += src[m * inner];
        }
        sh[threadIdx.y][threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.y == 0 && i < inner) {
            float s = 0.0f;
            for (int k = 0; k < 8; k++) s += sh[k][threadIdx.x];
            out[o * inner + i] = s;
        }
        __syncthreads();
    }
}

// Same reduction for inner == 1: x[outer, mid] -> out[outer], one block per row (grid-stride),
// blockDim.x = power of two in [32, 1024].
extern "C" __global__ void tl_k_sum_inner1(const float *x, float *out, u64 outer, u64 mid) {
    for (u64 o = blockIdx.x; o < outer; o += gridDim.x) {
        const float *src = x + o * mid;
        float acc = 0.0f;
        for (u64 m = threadIdx.x; m < mid; m += blockDim.x) acc += src[m];
        acc = tl_block_sum(acc);
        if (threadIdx.x == 0) out[o] = acc;
    }
}

// The optimizers, dropout masks and row gathers; then the convolution, pooling and batch-norm
// kernels (Scripts/embed-kernels inlines both into the one source NVRTC compiles).
#include "optimizer_kernels.cuh"
#include "conv_kernels.cuh"
