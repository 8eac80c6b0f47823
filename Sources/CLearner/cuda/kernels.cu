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
// target (1 − eps)·onehot + eps/cols. A row whose label is outside [0, cols) (for instance −1
// or −100, "ignore") gets loss 0.
extern "C" __global__ void tl_k_xent_forward(const float *logits, const float *labels, float *loss,
                                             u64 rows, u64 cols, float eps) {
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
            if (lab >= 0.0f && lab < (float)cols) {
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
// scale = 1/rows. Ignored rows (label outside [0, cols)) get 0. dlogits may alias logits.
extern "C" __global__ void tl_k_xent_backward(const float *logits, const float *labels, const float *gloss,
                                              float scale, float *dlogits, u64 rows, u64 cols, float eps) {
    const float off = eps / (float)cols, on = 1.0f - eps;
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *src = logits + r * cols;
        float *dst = dlogits + r * cols;
        float m, s;
        tl_row_lse(src, cols, m, s);
        float lab = labels[r];
        bool valid = lab >= 0.0f && lab < (float)cols;
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

// ------------------------------------------------------------------------------------------
// Optimizers (in place, fused), PyTorch semantics, as tl_sgd_update / tl_adam_update /
// tl_rmsprop_update in kernels.c. w, g and the state buffers are [n].

// SGD with momentum / Nesterov / L2 weight decay. buf is unused (may be NULL) when momentum == 0.
__device__ __forceinline__ void tl_sgd_one(float &w, float g, float &b, float lr, float momentum,
                                           float dampening, float wd, int nesterov, int first) {
    float d = g + wd * w;
    if (momentum != 0.0f) {
        float nb = first ? d : momentum * b + (1.0f - dampening) * d;
        b = nb;
        d = nesterov ? d + momentum * nb : nb;
    }
    w -= lr * d;
}

extern "C" __global__ void tl_k_sgd(float *w, const float *g, float *buf, u64 n, float lr, float momentum,
                                    float dampening, float wd, int nesterov, int first, int vec) {
    u64 start = 0;
    bool hasbuf = momentum != 0.0f;
    if (vec) {
        u64 n4 = n >> 2;
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) {
            float4 wv = ((float4 *)w)[i], gv = ((const float4 *)g)[i];
            float4 bv = hasbuf ? ((float4 *)buf)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
            tl_sgd_one(wv.x, gv.x, bv.x, lr, momentum, dampening, wd, nesterov, first);
            tl_sgd_one(wv.y, gv.y, bv.y, lr, momentum, dampening, wd, nesterov, first);
            tl_sgd_one(wv.z, gv.z, bv.z, lr, momentum, dampening, wd, nesterov, first);
            tl_sgd_one(wv.w, gv.w, bv.w, lr, momentum, dampening, wd, nesterov, first);
            ((float4 *)w)[i] = wv;
            if (hasbuf) ((float4 *)buf)[i] = bv;
        }
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) {
        float wi = w[i], bi = hasbuf ? buf[i] : 0.0f;
        tl_sgd_one(wi, g[i], bi, lr, momentum, dampening, wd, nesterov, first);
        w[i] = wi;
        if (hasbuf) buf[i] = bi;
    }
}

// Adam / AdamW (decoupled weight decay when adamw != 0). bc1 = 1 - beta1^t, bc2 = 1 - beta2^t.
// The host passes step = lr / bc1, inv_sqrt_bc2 = 1 / sqrt(bc2), decay = 1 - lr*wd (AdamW) or 1,
// l2 = wd (Adam) or 0, computed as tl_adam_update computes them.
__device__ __forceinline__ void tl_adam_one(float &w, float g, float &m, float &v, float beta1, float beta2,
                                            float eps, float step, float inv_sqrt_bc2, float decay, float l2) {
    float gi = g + l2 * w;
    float mi = beta1 * m + (1.0f - beta1) * gi;
    float vi = beta2 * v + (1.0f - beta2) * gi * gi;
    m = mi;
    v = vi;
    w = w * decay - step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
}

extern "C" __global__ void tl_k_adam(float *w, const float *g, float *m, float *v, u64 n, float beta1,
                                     float beta2, float eps, float step, float inv_sqrt_bc2, float decay,
                                     float l2, int vec) {
    u64 start = 0;
    if (vec) {
        u64 n4 = n >> 2;
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) {
            float4 wv = ((float4 *)w)[i], gv = ((const float4 *)g)[i];
            float4 mv = ((float4 *)m)[i], vv = ((float4 *)v)[i];
            tl_adam_one(wv.x, gv.x, mv.x, vv.x, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
            tl_adam_one(wv.y, gv.y, mv.y, vv.y, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
            tl_adam_one(wv.z, gv.z, mv.z, vv.z, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
            tl_adam_one(wv.w, gv.w, mv.w, vv.w, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
            ((float4 *)w)[i] = wv;
            ((float4 *)m)[i] = mv;
            ((float4 *)v)[i] = vv;
        }
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) {
        float wi = w[i], mi = m[i], vi = v[i];
        tl_adam_one(wi, g[i], mi, vi, beta1, beta2, eps, step, inv_sqrt_bc2, decay, l2);
        w[i] = wi;
        m[i] = mi;
        v[i] = vi;
    }
}

// RMSProp (optional momentum, centered). mom may be NULL when momentum == 0, gavg when !centered.
extern "C" __global__ void tl_k_rmsprop(float *w, const float *g, float *sq, float *mom, float *gavg, u64 n,
                                        float lr, float alpha, float eps, float wd, float momentum,
                                        int centered) {
    for (u64 i = tl_tid(); i < n; i += tl_nthreads()) {
        float gi = g[i] + wd * w[i];
        float s = alpha * sq[i] + (1.0f - alpha) * gi * gi;
        sq[i] = s;
        float denom;
        if (centered) {
            float a = alpha * gavg[i] + (1.0f - alpha) * gi;
            gavg[i] = a;
            denom = sqrtf(s - a * a) + eps;
        } else {
            denom = sqrtf(s) + eps;
        }
        if (momentum > 0.0f) {
            float b = momentum * mom[i] + gi / denom;
            mom[i] = b;
            w[i] -= lr * b;
        } else {
            w[i] -= lr * gi / denom;
        }
    }
}

// ------------------------------------------------------------------------------------------
// Dropout mask. out[n]: scale where u >= rate, else 0, with u = hashed_uniform(key, step, i),
// the counter-based draw of Random.swift (`hashedUniform`): SplitMix64 of
// key ^ step*K1 ^ i*K2, top 24 bits. Integer arithmetic and exact float conversions, so the
// mask is bit-identical to the CPU's for the same (key, step).
extern "C" __global__ void tl_k_dropout_mask(float *out, u64 n, u64 key, u64 step, float rate, float scale) {
    for (u64 i = tl_tid(); i < n; i += tl_nthreads()) {
        u64 x = key ^ (step * 0xD6E8FEB86659FD93ULL) ^ (i * 0xA0761D6478BD642FULL);
        x += 0x9E3779B97F4A7C15ULL;
        u64 z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        float u = (float)(z >> 40) * (1.0f / 16777216.0f);
        out[i] = u >= rate ? scale : 0.0f;
    }
}

// ------------------------------------------------------------------------------------------
// Row gather. x[rows, row], idx[count] (int32, already range-checked by the host):
// out[i, :] = x[idx[i], :]. One grid-stride loop over count * row elements.
extern "C" __global__ void tl_k_gather_rows(const float *x, const int *idx, u64 count, u64 row, float *out) {
    u64 n = count * row;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 i = e / row, c = e - i * row;
        out[e] = x[(u64)idx[i] * row + c];
    }
}

// Row scatter-add, the gather's gradient: out[idx[i], :] += g[i, :] over a zeroed out.
// Repeated indices meet in atomicAdd, so their sum's rounding order is not fixed.
extern "C" __global__ void tl_k_scatter_add_rows(const float *g, const int *idx, u64 count, u64 row, float *out) {
    u64 n = count * row;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 i = e / row, c = e - i * row;
        atomicAdd(&out[(u64)idx[i] * row + c], g[e]);
    }
}

// ------------------------------------------------------------------------------------------
// Convolution, pooling and batch normalisation over NCHW activations, as conv.c.
//
// tl_win is clearner.h's tl_window2d, field for field (15 int32, passed by value): one image
// [channels, height, width], the kernel, stride, per-side padding, dilation and the output
// [out_h, out_w]. Input row of output row oy and kernel row i: iy = oy·sh − pad_top + i·dh
// (outside [0, height): padding, reads as 0). Likewise columns.
struct tl_win {
    int channels, height, width;
    int kernel_h, kernel_w, stride_h, stride_w;
    int pad_top, pad_bottom, pad_left, pad_right;
    int dilation_h, dilation_w;
    int out_h, out_w;
};

// im2col of `images` consecutive images x [images, C, H, W] into col [images, C·kH·kW, OH·OW]
// (row (c·kH + i)·kW + j, column oy·OW + ox; as tl_im2col per image). One thread per column
// element, grid-stride; zeros where the window reads padding.
extern "C" __global__ void tl_k_im2col(const float *x, tl_win w, u64 images, float *col) {
    const u64 OH = w.out_h, OW = w.out_w, KH = w.kernel_h, KW = w.kernel_w, C = w.channels;
    const u64 n = images * C * KH * KW * OH * OW;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 t = e;
        const int ox = (int)(t % OW); t /= OW;
        const int oy = (int)(t % OH); t /= OH;
        const int j = (int)(t % KW); t /= KW;
        const int i = (int)(t % KH); t /= KH;
        const u64 plane = t; // img·C + c
        const int iy = oy * w.stride_h - w.pad_top + i * w.dilation_h;
        const int ix = ox * w.stride_w - w.pad_left + j * w.dilation_w;
        float v = 0.0f;
        if (iy >= 0 && iy < w.height && ix >= 0 && ix < w.width)
            v = x[(plane * (u64)w.height + (u64)iy) * (u64)w.width + (u64)ix];
        col[e] = v;
    }
}

// col2im, the adjoint of tl_k_im2col, as a gather: x [images, C, H, W] = Σ over the column
// entries that read each pixel, so every pixel is written by one thread (no atomics, a fixed
// order). OVERWRITES x (tl_col2im accumulates into x; the caller zeroes x first there). The
// terms are added in tl_col2im's order: kernel row i, then column j, ascending.
extern "C" __global__ void tl_k_col2im(const float *col, tl_win w, u64 images, float *x) {
    const u64 H = w.height, W = w.width, C = w.channels, OH = w.out_h, OW = w.out_w;
    const u64 KH = w.kernel_h, KW = w.kernel_w;
    const u64 n = images * C * H * W;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 t = e;
        const int ix = (int)(t % W); t /= W;
        const int iy = (int)(t % H); t /= H;
        const u64 plane = t; // img·C + c; its rows in col start at plane·kH·kW
        float s = 0.0f;
        for (int i = 0; i < (int)KH; i++) {
            const int ty = iy + w.pad_top - i * w.dilation_h; // = oy·sh
            if (ty < 0 || ty % w.stride_h != 0) continue;
            const int oy = ty / w.stride_h;
            if (oy >= (int)OH) continue;
            for (int j = 0; j < (int)KW; j++) {
                const int tx = ix + w.pad_left - j * w.dilation_w;
                if (tx < 0 || tx % w.stride_w != 0) continue;
                const int ox = tx / w.stride_w;
                if (ox >= (int)OW) continue;
                s += col[((plane * KH + (u64)i) * KW + (u64)j) * OH * OW + (u64)oy * OW + (u64)ox];
            }
        }
        x[e] = s;
    }
}

// Per-channel bias add in place: out [batch, channels, plane] += bias[channel]; n = batch·channels·plane.
extern "C" __global__ void tl_k_channel_bias(float *out, const float *bias, u64 n, u64 channels, u64 plane) {
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) out[e] += bias[(e / plane) % channels];
}

// Max pooling of `planes` planes x [planes, H, W] -> out, argmax [planes, OH, OW], one thread
// per output (grid-stride). argmax is the flat input index iy·W + ix of the first maximum in
// window order, as a float; −1 (and −inf) for a window wholly in padding. NaN wins and stops
// the scan, as tl_maxpool2d_forward (PyTorch).
extern "C" __global__ void tl_k_maxpool_fwd(const float *x, tl_win w, u64 planes, float *out, float *argmax) {
    const u64 OH = w.out_h, OW = w.out_w, H = w.height, W = w.width;
    const u64 n = planes * OH * OW;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const int ox = (int)(e % OW), oy = (int)((e / OW) % OH);
        const float *xp = x + (e / (OH * OW)) * H * W;
        float best = TL_NEG_INF;
        int where = -1;
        bool stop = false;
        for (int i = 0; i < w.kernel_h && !stop; i++) {
            const int iy = oy * w.stride_h - w.pad_top + i * w.dilation_h;
            if (iy < 0 || iy >= w.height) continue;
            for (int j = 0; j < w.kernel_w; j++) {
                const int ix = ox * w.stride_w - w.pad_left + j * w.dilation_w;
                if (ix < 0 || ix >= w.width) continue;
                const float v = xp[iy * w.width + ix];
                const bool isnan_v = v != v;
                if (v > best || isnan_v || where < 0) {
                    best = v;
                    where = iy * w.width + ix;
                    if (isnan_v) { stop = true; break; }
                }
            }
        }
        out[e] = best;
        argmax[e] = (float)where;
    }
}

// Visits the outputs (oy, ox) whose window covers input pixel (iy, ix), in ascending output
// order (oy, then ox), as the CPU's scatter loops add them. For a fixed output the pixel is
// at most one kernel position, so each output is visited once. Kernel row i maps to
// oy = (iy + pad_top − i·dh) / sh, decreasing in i: walk i (and j) downwards.
#define TL_FOR_COVERING_OUTPUTS(w, iy, ix, BODY)                                        \
    for (int i_ = (w).kernel_h - 1; i_ >= 0; i_--) {                                    \
        const int ty_ = (iy) + (w).pad_top - i_ * (w).dilation_h;                       \
        if (ty_ < 0 || ty_ % (w).stride_h != 0) continue;                               \
        const int oy = ty_ / (w).stride_h;                                              \
        if (oy >= (w).out_h) continue;                                                  \
        for (int j_ = (w).kernel_w - 1; j_ >= 0; j_--) {                                \
            const int tx_ = (ix) + (w).pad_left - j_ * (w).dilation_w;                  \
            if (tx_ < 0 || tx_ % (w).stride_w != 0) continue;                           \
            const int ox = tx_ / (w).stride_w;                                          \
            if (ox >= (w).out_w) continue;                                              \
            BODY                                                                        \
        }                                                                               \
    }

// Max pooling backward as a gather: dx [planes, H, W] (overwritten) = Σ g[o] over the outputs o
// whose argmax is this pixel. One thread per input pixel: no atomics, deterministic.
extern "C" __global__ void tl_k_maxpool_bwd(const float *g, const float *argmax, tl_win w, u64 planes, float *dx) {
    const u64 OH = w.out_h, OW = w.out_w, H = w.height, W = w.width;
    const u64 n = planes * H * W;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const int ix = (int)(e % W), iy = (int)((e / W) % H);
        const u64 p = e / (H * W);
        const float *gp = g + p * OH * OW, *ap = argmax + p * OH * OW;
        const int me = iy * w.width + ix;
        float s = 0.0f;
        TL_FOR_COVERING_OUTPUTS(w, iy, ix, {
            const u64 o = (u64)oy * OW + (u64)ox;
            if ((int)ap[o] == me) s += gp[o];
        })
        dx[e] = s;
    }
}

// The divisor of one average-pooling window, as avg_divisor in conv.c: with include_pad the
// window clipped to the padded input, else only its part inside the input.
__device__ __forceinline__ int tl_avg_divisor(const tl_win &w, int oy, int ox, int include_pad) {
    const int y0 = oy * w.stride_h - w.pad_top, x0 = ox * w.stride_w - w.pad_left;
    int ny = 0, nx = 0;
    if (include_pad) {
        const int y1 = y0 + (w.kernel_h - 1) * w.dilation_h + 1, x1 = x0 + (w.kernel_w - 1) * w.dilation_w + 1;
        const int ph = w.height + w.pad_bottom, pw = w.width + w.pad_right;
        const int ylim = y1 < ph ? y1 : ph, xlim = x1 < pw ? x1 : pw;
        for (int y = y0; y < ylim; y += w.dilation_h) ny++;
        for (int x = x0; x < xlim; x += w.dilation_w) nx++;
        return ny * nx;
    }
    for (int i = 0; i < w.kernel_h; i++) { const int y = y0 + i * w.dilation_h; if (y >= 0 && y < w.height) ny++; }
    for (int j = 0; j < w.kernel_w; j++) { const int x = x0 + j * w.dilation_w; if (x >= 0 && x < w.width) nx++; }
    return ny * nx;
}

// Average pooling x [planes, H, W] -> out [planes, OH, OW], one thread per output.
extern "C" __global__ void tl_k_avgpool_fwd(const float *x, tl_win w, u64 planes, int include_pad, float *out) {
    const u64 OH = w.out_h, OW = w.out_w, H = w.height, W = w.width;
    const u64 n = planes * OH * OW;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const int ox = (int)(e % OW), oy = (int)((e / OW) % OH);
        const float *xp = x + (e / (OH * OW)) * H * W;
        float s = 0.0f;
        for (int i = 0; i < w.kernel_h; i++) {
            const int iy = oy * w.stride_h - w.pad_top + i * w.dilation_h;
            if (iy < 0 || iy >= w.height) continue;
            for (int j = 0; j < w.kernel_w; j++) {
                const int ix = ox * w.stride_w - w.pad_left + j * w.dilation_w;
                if (ix >= 0 && ix < w.width) s += xp[iy * w.width + ix];
            }
        }
        const int d = tl_avg_divisor(w, oy, ox, include_pad);
        out[e] = d > 0 ? s / (float)d : 0.0f;
    }
}

// Average pooling backward as a gather: dx [planes, H, W] (overwritten) = Σ g[o] / divisor(o)
// over the outputs o whose window covers the pixel (inside the input). One thread per pixel.
extern "C" __global__ void tl_k_avgpool_bwd(const float *g, tl_win w, u64 planes, int include_pad, float *dx) {
    const u64 OH = w.out_h, OW = w.out_w, H = w.height, W = w.width;
    const u64 n = planes * H * W;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const int ix = (int)(e % W), iy = (int)((e / W) % H);
        const float *gp = g + (e / (H * W)) * OH * OW;
        float s = 0.0f;
        TL_FOR_COVERING_OUTPUTS(w, iy, ix, {
            const int d = tl_avg_divisor(w, oy, ox, include_pad);
            if (d > 0) s += gp[(u64)oy * OW + (u64)ox] / (float)d;
        })
        dx[e] = s;
    }
}

// Block sum in double; every thread gets the result. blockDim.x is a power of two in [32, 1024].
__device__ double tl_block_sum_d(double v) {
    __shared__ double shd[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int nwarps = blockDim.x >> 5;
    if (nwarps == 1) return v;
    int lane = threadIdx.x & 31, wp = threadIdx.x >> 5;
    __syncthreads(); // shd may still be read by a previous call
    if (lane == 0) shd[wp] = v;
    __syncthreads();
    v = lane < nwarps ? shd[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Batch-norm statistics of x [n, c, s]: per channel the mean and the biased variance over its
// n·s values, two passes as tl_batchnorm_stats (variance of x − (float)mean, sums in double).
// One block per channel (grid-stride over channels); blockDim.x = power of two in [32, 1024].
extern "C" __global__ void tl_k_bn_stats(const float *x, u64 n, u64 c, u64 s, float *mean, float *var) {
    const u64 m = n * s;
    for (u64 ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double sum = 0.0;
        for (u64 e = threadIdx.x; e < m; e += blockDim.x) {
            const u64 i = e / s, k = e - i * s;
            sum += (double)x[(i * c + ch) * s + k];
        }
        const double mu = tl_block_sum_d(sum) / (double)m;
        const float fm = (float)mu;
        double sq = 0.0;
        for (u64 e = threadIdx.x; e < m; e += blockDim.x) {
            const u64 i = e / s, k = e - i * s;
            const float d = x[(i * c + ch) * s + k] - fm;
            sq += (double)(d * d);
        }
        sq = tl_block_sum_d(sq);
        if (threadIdx.x == 0) {
            mean[ch] = (float)mu;
            var[ch] = (float)(sq / (double)m);
        }
    }
}

// Batch-norm forward: y = x·scale + shift per channel of x [n, c, s] with
// scale = weight/√(var + eps), shift = bias − mean·scale (as tl_batchnorm_forward). Elementwise.
extern "C" __global__ void tl_k_bn_forward(const float *x, u64 n, u64 c, u64 s, const float *mean, const float *var,
                                           float eps, const float *weight, const float *bias, float *y) {
    const u64 total = n * c * s;
    for (u64 e = tl_tid(); e < total; e += tl_nthreads()) {
        const u64 ch = (e / s) % c;
        const float inv = 1.0f / sqrtf(var[ch] + eps);
        const float scale = weight[ch] * inv, shift = bias[ch] - mean[ch] * scale;
        y[e] = x[e] * scale + shift;
    }
}

// Batch-norm backward, as tl_batchnorm_backward. g, x, dx [n, c, s]; dweight, dbias [c].
// Per channel: dbias = Σ g, dweight = Σ g·(x − μ) / √(var + eps) (sums in double); dx = g·k1 when
// the statistics are constants (batch_stats == 0), else k1·(g − Σg/m − x̂·dweight/m) with
// k1 = weight/√(var + eps). One block per channel (grid-stride); each block writes its own
// channel's dx, so no two blocks touch the same element.
extern "C" __global__ void tl_k_bn_backward(const float *g, const float *x, u64 n, u64 c, u64 s, const float *mean,
                                            const float *var, float eps, const float *weight, int batch_stats,
                                            float *dx, float *dweight, float *dbias) {
    const u64 m = n * s;
    for (u64 ch = blockIdx.x; ch < c; ch += gridDim.x) {
        const float inv = 1.0f / sqrtf(var[ch] + eps), mu = mean[ch];
        double sg = 0.0, sgx = 0.0;
        for (u64 e = threadIdx.x; e < m; e += blockDim.x) {
            const u64 i = e / s, k = e - i * s, at = (i * c + ch) * s + k;
            const float gv = g[at];
            sg += (double)gv;
            sgx += (double)(gv * (x[at] - mu));
        }
        sg = tl_block_sum_d(sg);
        sgx = tl_block_sum_d(sgx);
        const float dbeta = (float)sg, dgamma = (float)(sgx * (double)inv);
        if (threadIdx.x == 0) {
            if (dweight) dweight[ch] = dgamma;
            if (dbias) dbias[ch] = dbeta;
        }
        if (!dx) continue;
        const float k1 = weight[ch] * inv;
        const float mg = dbeta / (float)m, mgx = dgamma / (float)m;
        for (u64 e = threadIdx.x; e < m; e += blockDim.x) {
            const u64 i = e / s, k = e - i * s, at = (i * c + ch) * s + k;
            dx[at] = batch_stats ? k1 * (g[at] - mg - (x[at] - mu) * inv * mgx) : g[at] * k1;
        }
    }
}

// ------------------------------------------------------------------------------------------
// Max over the middle axis of x viewed as [outer, mid, inner] -> out [outer, inner] and the
// arg-max idx [outer, inner] (int32, first maximum; a NaN first element stays), as
// tl_reduce_mid with op 1. One thread per output, coalesced along inner.
extern "C" __global__ void tl_k_max_mid(const float *x, float *out, int *idx, u64 outer, u64 mid, u64 inner) {
    const u64 n = outer * inner;
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        const u64 o = e / inner, i = e - o * inner;
        const float *src = x + o * mid * inner + i;
        float best = src[0];
        int where = 0;
        for (u64 k = 1; k < mid; k++) {
            const float v = src[k * inner];
            if (v > best) { best = v; where = (int)k; }
        }
        out[e] = best;
        if (idx) idx[e] = where;
    }
}

// General permute (rank <= 8), as tl_permute: out is contiguous with shape p.shape[0..rank),
// out[i0, ..., i_{r-1}] = x[Σ i_d · p.stride[d]], p.stride being x's strides in output-axis
// order. One thread per output element.
struct tl_perm { u64 shape[8]; u64 stride[8]; };

extern "C" __global__ void tl_k_permute(const float *x, float *out, u64 n, int rank, tl_perm p) {
    for (u64 e = tl_tid(); e < n; e += tl_nthreads()) {
        u64 t = e, off = 0;
        for (int d = rank - 1; d >= 0; d--) {
            const u64 q = t / p.shape[d];
            off += (t - q * p.shape[d]) * p.stride[d];
            t = q;
        }
        out[e] = x[off];
    }
}
