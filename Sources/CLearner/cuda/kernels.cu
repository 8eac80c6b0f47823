// Tefla CUDA kernels.
//
// This file is CUDA C++ compiled at run time by NVRTC (see cuda_ops.c); SwiftPM never
// compiles it. `Scripts/embed-kernels` turns it into the C string in cuda_kernels.inc, which
// is what the binary carries, so edit this file and rerun that script.
//
// Rules for this file:
// - No #include: NVRTC has no C library headers. Use CUDA built-ins only (expf, tanhf,
//   float4, __shfl_xor_sync, ...).
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
// Binary ops; op codes as tl_binary_strided: 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min,
// 6 pow, 7 eq, 8 gt, 9 lt, 10 ge, 11 le (comparisons give 1.0 or 0.0).
__device__ __forceinline__ float tl_binop(int op, float x, float y) {
    switch (op) {
    case 0: return x + y;
    case 1: return x - y;
    case 2: return x * y;
    case 3: return x / y;
    case 4: return x > y ? x : y;
    case 5: return x < y ? x : y;
    case 6: return powf(x, y);
    case 7: return x == y ? 1.0f : 0.0f;
    case 8: return x > y ? 1.0f : 0.0f;
    case 9: return x < y ? 1.0f : 0.0f;
    case 10: return x >= y ? 1.0f : 0.0f;
    default: return x <= y ? 1.0f : 0.0f;
    }
}

// Contiguous binary op: a[n], b[n] -> out[n]. out may alias a or b.
extern "C" __global__ void tl_k_binary(int op, const float *a, const float *b, float *out, u64 n, int vec) {
    u64 start = 0;
    if (vec) {
        u64 n4 = n >> 2;
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) {
            float4 x = ((const float4 *)a)[i], y = ((const float4 *)b)[i], r;
            r.x = tl_binop(op, x.x, y.x);
            r.y = tl_binop(op, x.y, y.y);
            r.z = tl_binop(op, x.z, y.z);
            r.w = tl_binop(op, x.w, y.w);
            ((float4 *)out)[i] = r;
        }
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) out[i] = tl_binop(op, a[i], b[i]);
}

// Broadcast binary op over the trailing axis: out[i] = a[i % an] op b[i % bn] for i < n,
// where an and bn each divide n. Covers bias add ([rows, cols] + [cols]: an = n, bn = cols),
// a scalar on either side (an or bn = 1) and a vector on the left.
extern "C" __global__ void tl_k_binary_bcast(int op, const float *a, u64 an, const float *b, u64 bn,
                                             float *out, u64 n) {
    for (u64 i = tl_tid(); i < n; i += tl_nthreads()) {
        float x = a[an == n ? i : i % an];
        float y = b[bn == n ? i : i % bn];
        out[i] = tl_binop(op, x, y);
    }
}

// ------------------------------------------------------------------------------------------
// Unary ops; op codes as tl_unary: 0 neg, 1 exp, 2 log, 3 sqrt, 4 relu, 5 sigmoid, 6 tanh,
// 7 gelu (tanh approximation), 8 abs, 9 sign, 10 square, 11 reciprocal.
__device__ __forceinline__ float tl_gelu(float x) {
    const float c = 0.7978845608028654f; // sqrt(2/pi)
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ float tl_unop(int op, float x) {
    switch (op) {
    case 0: return -x;
    case 1: return expf(x);
    case 2: return logf(x);
    case 3: return sqrtf(x);
    case 4: return x > 0.0f ? x : 0.0f;
    case 5: return 1.0f / (1.0f + expf(-x));
    case 6: return tanhf(x);
    case 7: return tl_gelu(x);
    case 8: return fabsf(x);
    case 9: return (float)((x > 0.0f) - (x < 0.0f));
    case 10: return x * x;
    default: return 1.0f / x;
    }
}

// x[n] -> out[n]; out may alias x.
extern "C" __global__ void tl_k_unary(int op, const float *x, float *out, u64 n, int vec) {
    u64 start = 0;
    if (vec) {
        u64 n4 = n >> 2;
        for (u64 i = tl_tid(); i < n4; i += tl_nthreads()) {
            float4 v = ((const float4 *)x)[i];
            v.x = tl_unop(op, v.x);
            v.y = tl_unop(op, v.y);
            v.z = tl_unop(op, v.z);
            v.w = tl_unop(op, v.w);
            ((float4 *)out)[i] = v;
        }
        start = n4 << 2;
    }
    for (u64 i = start + tl_tid(); i < n; i += tl_nthreads()) out[i] = tl_unop(op, x[i]);
}

// Backward of a unary op: out = g * f'(x), given x, y = f(x) and upstream g, all [n].
// Ops 4..7 match tl_unary_backward; the others are the exact derivatives
// (0 neg: -g, 1 exp: g*y, 2 log: g/x, 3 sqrt: g/(2y), 8 abs: g*sign(x), 9 sign: 0,
// 10 square: 2xg, 11 reciprocal: -g*y*y).
__device__ __forceinline__ float tl_unop_grad(int op, float x, float y, float g) {
    switch (op) {
    case 0: return -g;
    case 1: return g * y;
    case 2: return g / x;
    case 3: return g * 0.5f / y;
    case 4: return x > 0.0f ? g : 0.0f;
    case 5: return g * y * (1.0f - y);
    case 6: return g * (1.0f - y * y);
    case 7: {
        const float c = 0.7978845608028654f;
        float u = c * (x + 0.044715f * x * x * x), t = tanhf(u);
        float du = c * (1.0f + 3.0f * 0.044715f * x * x);
        return g * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
    case 8: return g * (float)((x > 0.0f) - (x < 0.0f));
    case 9: return 0.0f;
    case 10: return 2.0f * x * g;
    default: return -g * y * y;
    }
}

// x, y, g [n] -> out[n]. y may be NULL for ops that do not read it (0, 2, 4, 7, 8, 9, 10).
extern "C" __global__ void tl_k_unary_backward(int op, const float *x, const float *y, const float *g,
                                               float *out, u64 n) {
    for (u64 i = tl_tid(); i < n; i += tl_nthreads()) {
        float yi = y ? y[i] : 0.0f;
        float xi = x ? x[i] : 0.0f;
        out[i] = tl_unop_grad(op, xi, yi, g[i]);
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

// Fused softmax cross-entropy, forward. logits[rows, cols], labels[rows] (class indices stored
// as float) -> loss[rows] = logsumexp(logits[r]) - logits[r, label[r]]. A row whose label is
// outside [0, cols) (for instance -1 or -100, "ignore") gets loss 0.
extern "C" __global__ void tl_k_xent_forward(const float *logits, const float *labels, float *loss,
                                             u64 rows, u64 cols) {
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *src = logits + r * cols;
        float m, s;
        tl_row_lse(src, cols, m, s);
        if (threadIdx.x == 0) {
            float lab = labels[r];
            float l = 0.0f;
            if (lab >= 0.0f && lab < (float)cols) l = logf(s) + m - src[(u64)lab];
            loss[r] = l;
        }
    }
}

// Fused softmax cross-entropy, backward. dlogits[r, c] = scale * gr * (softmax(logits[r])[c] -
// (c == label[r])), with gr = gloss[r] (per-row upstream gradient) or 1 when gloss is NULL.
// For a mean over the batch pass scale = 1/rows. Ignored rows (label outside [0, cols)) get 0.
// dlogits may alias logits.
extern "C" __global__ void tl_k_xent_backward(const float *logits, const float *labels, const float *gloss,
                                              float scale, float *dlogits, u64 rows, u64 cols) {
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
            dst[c] = k * (p - (c == target ? 1.0f : 0.0f));
        }
        __syncthreads();
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
